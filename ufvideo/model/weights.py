"""Safetensors checkpoints read tensor by tensor, straight into a target dtype and device, and written shard by
shard: a 7B model loads in about its checkpoint's bytes of RAM, not a float32 copy plus a state dict.

Files are read with plain `readinto` into the tensor's own memory rather than through a memory map: mapped pages
of a file stay in the process's resident set until it is unmapped, which would double the peak for a
single-file checkpoint.
"""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Iterable, Iterator
from pathlib import Path

import torch
from safetensors.torch import save_file

WEIGHTS_NAME = "model.safetensors"
INDEX_NAME = "model.safetensors.index.json"
SAFETENSORS_DTYPES = {
    "F64": torch.float64,
    "F32": torch.float32,
    "F16": torch.float16,
    "BF16": torch.bfloat16,
    "I64": torch.int64,
    "I32": torch.int32,
    "I16": torch.int16,
    "I8": torch.int8,
    "U8": torch.uint8,
    "BOOL": torch.bool,
}


def weight_files(directory: str | Path) -> list[Path]:
    """The shards of a checkpoint directory: those named by `model.safetensors.index.json`, else the single file."""
    directory = Path(directory)
    index = directory / INDEX_NAME
    if index.is_file():
        weight_map = json.loads(index.read_text()).get("weight_map")
        if not isinstance(weight_map, dict) or not weight_map:
            raise ValueError(f"{index}: no 'weight_map' object naming the shards")
        files = [directory / name for name in sorted(set(weight_map.values()))]
    else:
        files = [directory / WEIGHTS_NAME]
    absent = [str(f) for f in files if not f.is_file()]
    if absent:
        raise FileNotFoundError(f"{directory}: missing weight file(s) {absent[:3]}")
    return files


def read_header(path: str | Path) -> tuple[dict[str, dict], int]:
    """(tensor entries {name: {dtype, shape, data_offsets}}, byte offset of the data section)."""
    with open(path, "rb") as handle:
        raw = handle.read(8)
        if len(raw) != 8:
            raise ValueError(f"{path}: not a safetensors file (shorter than its 8-byte header length)")
        (length,) = struct.unpack("<Q", raw)
        try:
            header = json.loads(handle.read(length))
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise ValueError(f"{path}: unreadable safetensors header ({err})") from err
    header.pop("__metadata__", None)
    return header, 8 + length


def iter_tensors(path: str | Path, names: Iterable[str] | None = None) -> Iterator[tuple[str, torch.Tensor]]:
    """(name, CPU tensor) for every tensor of one file (or only `names`), each read into fresh memory."""
    header, data_start = read_header(path)
    wanted = header.keys() if names is None else [n for n in names if n in header]
    with open(path, "rb", buffering=0) as handle:
        for name in sorted(wanted, key=lambda n: header[n]["data_offsets"][0]):
            entry = header[name]
            dtype = SAFETENSORS_DTYPES.get(entry["dtype"])
            if dtype is None:
                raise ValueError(f"{path}: tensor {name} has unsupported dtype {entry['dtype']}")
            begin, end = entry["data_offsets"]
            buffer = torch.empty(end - begin, dtype=torch.uint8)
            handle.seek(data_start + begin)
            if end > begin and handle.readinto(memoryview(buffer.numpy())) != end - begin:
                raise ValueError(f"{path}: tensor {name} is truncated")
            yield name, buffer.view(dtype).reshape(entry["shape"])


def load_into(
    model: torch.nn.Module,
    files: Iterable[str | Path],
    device: str | torch.device = "cpu",
    dtype: torch.dtype | None = None,
) -> tuple[list[str], list[str]]:
    """Assign every checkpoint tensor to `model` (whose parameters may be on the meta device) on `device`,
    floating ones cast to `dtype` (None: the checkpoint's own); returns (missing, unexpected) keys.

    One tensor is in flight at a time, so the peak is the model's bytes plus the largest tensor.
    """
    own = model.state_dict(keep_vars=True)
    seen: set[str] = set()
    unexpected: list[str] = []
    for path in files:
        for name, tensor in iter_tensors(path):
            if name not in own:
                unexpected.append(name)
                continue
            target = own[name]
            if tuple(tensor.shape) != tuple(target.shape):
                raise ValueError(f"{path}: {name} has shape {tuple(tensor.shape)}, the model {tuple(target.shape)}")
            cast = dtype if dtype is not None and tensor.is_floating_point() else tensor.dtype
            _assign(model, name, tensor.to(device=device, dtype=cast))
            seen.add(name)
    return sorted(set(own) - seen), unexpected


def init_missing(
    model: torch.nn.Module, missing: Iterable[str], device: str | torch.device, dtype: torch.dtype | None
) -> None:
    """Give the `missing` (still meta) parameters a fresh initialisation on `device`: zeros, then the module's
    own `reset_parameters` and the nearest transformers model's `_init_weights`, as a fresh build would.

    Used when a converted VideoRefer checkpoint lacks SAM2 and the `[SEG]` MLP (from_pretrained(strict=False)).
    """
    from transformers import PreTrainedModel

    owners: dict[str, torch.nn.Module] = {}
    for name in missing:
        owner_name, _, leaf = name.rpartition(".")
        owner = model.get_submodule(owner_name)
        old = owner._parameters.get(leaf) if leaf in owner._parameters else owner._buffers.get(leaf)
        if old is None:
            continue
        cast = dtype if dtype is not None and old.is_floating_point() else old.dtype
        _assign(model, name, torch.zeros(old.shape, device=device, dtype=cast))
        owners[owner_name] = owner
    for owner_name, owner in owners.items():
        reset = getattr(owner, "reset_parameters", None)
        if callable(reset):
            reset()
        parts = owner_name.split(".") if owner_name else []
        for depth in range(len(parts), -1, -1):  # the nearest enclosing transformers model knows its init
            ancestor = model.get_submodule(".".join(parts[:depth]))
            if isinstance(ancestor, PreTrainedModel):
                with torch.no_grad():
                    ancestor._init_weights(owner)
                break


def _assign(model: torch.nn.Module, name: str, value: torch.Tensor) -> None:
    """Replace one parameter or buffer by `value`, keeping `requires_grad` (works for meta-device placeholders)."""
    owner_name, _, leaf = name.rpartition(".")
    owner = model.get_submodule(owner_name)
    if leaf in owner._parameters:
        old = owner._parameters[leaf]
        owner._parameters[leaf] = torch.nn.Parameter(value, requires_grad=old is not None and old.requires_grad)
    else:
        owner._buffers[leaf] = value


def save_sharded(
    tensors: Iterable[tuple[str, torch.Tensor]], directory: str | Path, max_shard_bytes: int = 4 << 30
) -> list[Path]:
    """Write tensors (consumed lazily) into shards of at most `max_shard_bytes` plus the index; one shard is in
    memory at a time. A single shard is named `model.safetensors` and gets no index, as transformers does."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    shards: list[tuple[Path, list[str]]] = []
    pending: dict[str, torch.Tensor] = {}
    size = 0

    def flush() -> None:
        nonlocal pending, size
        path = directory / f".shard-{len(shards):05d}.tmp"
        save_file({k: v.contiguous() for k, v in pending.items()}, str(path), metadata={"format": "pt"})
        shards.append((path, list(pending)))
        pending, size = {}, 0

    for name, tensor in tensors:
        nbytes = tensor.numel() * tensor.element_size()
        if pending and size + nbytes > max_shard_bytes:
            flush()
        pending[name] = tensor
        size += nbytes
    if pending or not shards:
        flush()
    return _name_shards(directory, shards)


def _name_shards(directory: Path, shards: list[tuple[Path, list[str]]]) -> list[Path]:
    """Rename the finished temp shards to their final names (a reader never sees a half-written file)."""
    stale = [directory / INDEX_NAME, directory / WEIGHTS_NAME, *directory.glob("model-*-of-*.safetensors")]
    for path in stale:
        path.unlink(missing_ok=True)
    if len(shards) == 1:
        os.replace(shards[0][0], directory / WEIGHTS_NAME)
        return [directory / WEIGHTS_NAME]
    names = [f"model-{i + 1:05d}-of-{len(shards):05d}.safetensors" for i in range(len(shards))]
    weight_map: dict[str, str] = {}
    total = 0
    for (tmp, keys), name in zip(shards, names):
        os.replace(tmp, directory / name)
        weight_map.update(dict.fromkeys(keys, name))
        total += (directory / name).stat().st_size
    index = {"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))}
    tmp_index = directory / (INDEX_NAME + ".tmp")
    tmp_index.write_text(json.dumps(index, indent=2) + "\n")
    os.replace(tmp_index, directory / INDEX_NAME)
    return [directory / n for n in names]
