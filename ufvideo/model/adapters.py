"""LoRA adapters on the LLM of UFVideo (PEFT): settings, injection (optionally over 4-bit NF4 base weights, QLoRA),
the adapter state a checkpoint holds, loading it back, and merging the adapters into the base weights.

Why PEFT injection into `language_model.model` rather than a `PeftModel` wrapper: the model keeps its own class,
forward and `generate`, so training, evaluation and the pyfunc run the same code for adapted and plain models; only
the attention and MLP projections of the decoder layers are replaced (never the LM head or the embeddings, whose
added token rows train through the row mask of `ufvideo.train.stages`).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from ufvideo.config import ConfigError
from ufvideo.errors import UFVideoError
from ufvideo.files import umask_mode

ADAPTER_WEIGHTS = "adapter_model.safetensors"
ADAPTER_CONFIG = "adapter_config.json"
ROWS = ":rows"  # suffix of a row-masked matrix's trained rows in the adapter file
ROW_IDS = ":row_ids"  # suffix of the ids of those rows
LLM_PROJECTIONS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


class AdapterError(UFVideoError):
    """Adapter settings that cannot run here, or an adapter file that does not fit the model it is loaded into."""


@dataclass
class AdapterConfig:
    """LoRA on the LLM's projections (`freeze_policy: lora`): W x + (alpha / rank) B A x, A and B trained."""

    rank: int = 16
    alpha: float = 32.0
    dropout: float = 0.05
    targets: list[str] = field(default_factory=lambda: list(LLM_PROJECTIONS))  # module names in the decoder layers
    # QLoRA: "nf4" stores the frozen LLM projections in 4 bits (bitsandbytes, CUDA only); "none" keeps their dtype.
    quantize: Literal["none", "nf4"] = "none"

    def __post_init__(self) -> None:
        if self.rank < 1:
            raise ConfigError(f"lora.rank: must be >= 1, got {self.rank}")
        if not self.alpha > 0:
            raise ConfigError(f"lora.alpha: must be > 0, got {self.alpha}")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"lora.dropout: must lie in [0, 1), got {self.dropout}")
        if not self.targets:
            raise ConfigError("lora.targets: name at least one projection, e.g. [q_proj, v_proj]")


def add_lora(model: nn.Module, cfg: AdapterConfig, trainable: bool = True, seed: int = 0) -> nn.Module:
    """Inject LoRA layers into the decoder layers of `model.language_model` in place; returns the model.

    Only the adapter matrices of the LLM are left trainable inside the LLM (PEFT freezes the rest of it); the caller's
    freeze policy decides about every other part. `trainable=False` builds the layers for loading saved weights.
    The A matrices are drawn from `seed` on a forked generator: a run and its resumption (and two runs of one
    recipe) start from the same adapters whatever the global RNG has done before.
    """
    from peft import LoraConfig, inject_adapter_in_model

    decoder = model.language_model.model
    if cfg.quantize == "nf4":
        quantize_nf4(decoder, cfg.targets)
    peft_cfg = LoraConfig(
        r=cfg.rank,
        lora_alpha=cfg.alpha,
        lora_dropout=cfg.dropout,
        target_modules=list(cfg.targets),
        bias="none",
    )
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            inject_adapter_in_model(peft_cfg, decoder)
    except ValueError as err:  # PEFT's "Target modules {...} not found in the base model"
        raise AdapterError(f"lora.targets={list(cfg.targets)}: {err}") from err
    if not trainable:
        for name, param in decoder.named_parameters():
            if ".lora_" in name:
                param.requires_grad_(False)
    return model


def quantize_nf4(decoder: nn.Module, targets: list[str]) -> None:
    """Replace the targeted `nn.Linear`s of the decoder by bitsandbytes 4-bit NF4 layers (QLoRA's frozen base).

    Quantisation happens when the weights move to the GPU, so this needs CUDA and bitsandbytes; on a CPU it fails
    in one line before anything changes.
    """
    if not torch.cuda.is_available():
        raise AdapterError(
            "lora.quantize=nf4 (QLoRA) needs a CUDA GPU: bitsandbytes quantises the base weights on the device; "
            "this machine has none. Use lora.quantize=none (plain LoRA) here."
        )
    try:
        import bitsandbytes as bnb
    except ImportError as err:
        raise AdapterError(
            "lora.quantize=nf4 (QLoRA) needs bitsandbytes: pip install 'ufvideo[gpu]' (or bitsandbytes)"
        ) from err
    device = torch.device("cuda", torch.cuda.current_device())
    for name, module in list(decoder.named_modules()):
        if not isinstance(module, nn.Linear) or name.rsplit(".", 1)[-1] not in targets:
            continue
        weight = module.weight
        layer = bnb.nn.Linear4bit(
            module.in_features,
            module.out_features,
            bias=module.bias is not None,
            compute_dtype=weight.dtype if weight.dtype != torch.float32 else torch.bfloat16,
            quant_type="nf4",
            device=device if weight.device.type != "meta" else None,
        )
        layer.weight = bnb.nn.Params4bit(weight.data.to("cpu"), requires_grad=False, quant_type="nf4")
        if module.bias is not None:
            layer.bias = nn.Parameter(module.bias.data.clone(), requires_grad=False)
        layer.to(device)  # Params4bit quantises here
        _replace(decoder, name, layer)


def _replace(root: nn.Module, name: str, module: nn.Module) -> None:
    parent, _, child = name.rpartition(".")
    setattr(root.get_submodule(parent) if parent else root, child, module)


def has_lora(model: nn.Module) -> bool:
    from peft.tuners.lora import LoraLayer

    return any(isinstance(module, LoraLayer) for module in model.modules())


def adapter_state(model: nn.Module, row_masked: dict[str, torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
    """What an adapter checkpoint holds: every trainable parameter (LoRA matrices, connector, region encoder, `[SEG]`
    head, mask decoder), only the trained rows of row-masked matrices (with their ids), and the running statistics of
    normalisation layers (the visual-token standardisation updates them in training). The frozen base is never
    copied."""
    row_masked = row_masked or {}
    state: dict[str, torch.Tensor] = {}
    for name, param in model.named_parameters():
        if name in row_masked:
            ids = row_masked[name].to(param.device)
            state[name + ROWS] = param.detach()[ids]
            state[name + ROW_IDS] = row_masked[name].clone()
        elif param.requires_grad:
            state[name] = param.detach()
    persistent = set(model.state_dict(keep_vars=True))
    for prefix, module in model.named_modules():
        if isinstance(module, nn.modules.batchnorm._NormBase):  # the only buffers training updates
            for name, buffer in module.named_buffers(prefix=prefix, recurse=False):
                if name in persistent:
                    state[name] = buffer.detach()
    return {name: tensor.to("cpu", copy=True).contiguous() for name, tensor in state.items()}


def save_adapter(
    model: nn.Module,
    directory: str | os.PathLike[str],
    settings: AdapterConfig,
    base: dict[str, str],
    row_masked: dict[str, torch.Tensor] | None = None,
) -> None:
    """`config.json`, `adapter_model.safetensors` and `adapter_config.json` (LoRA settings + the base checkpoint's
    URI and digest): enough, with the base, to rebuild the trained model exactly."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    model.config.save_pretrained(str(directory))
    save_file(adapter_state(model, row_masked), str(directory / ADAPTER_WEIGHTS), metadata={"format": "pt"})
    umask_mode(directory / ADAPTER_WEIGHTS)
    document = {"peft_type": "LORA", "lora": asdict(settings), "base": dict(base)}
    (directory / ADAPTER_CONFIG).write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")
    umask_mode(directory / ADAPTER_CONFIG)


def read_adapter_config(directory: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The adapter document of a checkpoint directory, or None for a full checkpoint (no adapter files)."""
    path = Path(directory) / ADAPTER_CONFIG
    if not path.is_file():
        return None
    try:
        document = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise AdapterError(f"{path}: invalid JSON: {err}") from err
    base = document.get("base") if isinstance(document, dict) else None
    if not isinstance(base, dict) or not base.get("uri") or not base.get("digest"):
        raise AdapterError(f"{path}: field 'base' must name the base checkpoint's 'uri' and 'digest'")
    if not isinstance(document.get("lora"), dict):
        raise AdapterError(f"{path}: field 'lora' (the adapter's settings) is missing")
    return document


def settings_of(document: dict[str, Any], where: str = ADAPTER_CONFIG) -> AdapterConfig:
    from ufvideo.config import ConfigError, from_dict

    try:
        return from_dict(AdapterConfig, document["lora"], "lora")
    except ConfigError as err:
        raise AdapterError(f"{where}: {err}") from err


def load_adapter_state(model: nn.Module, directory: str | os.PathLike[str]) -> None:
    """Copy an adapter file into a model that has the same LoRA layers; every tensor must find its place, with its
    shape (a file of another rank, other targets or another architecture is refused by name)."""
    path = Path(directory) / ADAPTER_WEIGHTS
    state = load_file(str(path))
    params = dict(model.named_parameters())
    targets = {**params, **dict(model.named_buffers())}
    with torch.no_grad():
        for key, tensor in state.items():
            if key.endswith(ROW_IDS):
                continue
            if key.endswith(ROWS):
                name = key[: -len(ROWS)]
                ids = state.get(name + ROW_IDS)
                if name not in params or ids is None:
                    raise AdapterError(f"{path}: {key} has no matrix or no {ROW_IDS} in this model")
                params[name][ids.to(params[name].device)] = tensor.to(params[name].device, params[name].dtype)
                continue
            if key not in targets:
                raise AdapterError(f"{path}: tensor {key} has no place in this model (other targets or architecture)")
            if targets[key].shape != tensor.shape:
                raise AdapterError(
                    f"{path}: {key} has shape {tuple(tensor.shape)}, the model expects {tuple(targets[key].shape)}"
                )
            targets[key].copy_(tensor.to(targets[key].device, targets[key].dtype))


def merge_lora(model: nn.Module) -> nn.Module:
    """Fold every LoRA layer into its base weight (W + alpha/rank B A) and put the plain layer back: the result is a
    model of the original architecture whose forward equals the adapted one."""
    from peft.tuners.lora import LoraLayer

    for name, module in list(model.named_modules()):
        if isinstance(module, LoraLayer):
            module.merge(safe_merge=True)
            _replace(model, name, module.get_base_layer())
    decoder = model.language_model.model
    if hasattr(decoder, "peft_config"):
        del decoder.peft_config
    return model
