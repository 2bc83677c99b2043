"""`ufvideo model merge`: a LoRA adapter checkpoint folded into its base, written as a full contract checkpoint
(safetensors + config + processor + `ufvideo.json` recording the adapter and base it was made from).

Why a merged export besides direct adapter loading: serving stacks and `from_pretrained` readers outside ufvideo
expect plain weights, and a merged checkpoint loads without the base being reachable.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch

from ufvideo import storage
from ufvideo.checkpoint import checkpoint_digest, materialize, publish, read_info, write_info
from ufvideo.files import temp_dir
from ufvideo.model.adapters import AdapterError, read_adapter_config

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


@dataclass
class MergeConfig:
    """The merge-model step: the adapter checkpoint, where the merged one goes, an optional base location."""

    adapter: str  # the adapter checkpoint (local or s3://)
    out: str  # where the merged checkpoint goes (local or s3://)
    base: str | None = None  # where the base is read from instead of the recorded URI (its digest must match)
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"  # auto: the base checkpoint's own


def run(cfg: MergeConfig) -> dict[str, Any]:
    """Merge and write; returns {"checkpoint": {"uri", "digest"}, "merged_from": {"adapter", "base"}}."""
    from ufvideo.model.loader import load_checkpoint

    local = materialize(cfg.adapter)
    document = read_adapter_config(local)
    if document is None:
        raise AdapterError(f"{cfg.adapter}: not an adapter checkpoint (no adapter_config.json); nothing to merge")
    base = {"uri": cfg.base or str(document["base"]["uri"]), "digest": str(document["base"]["digest"])}
    model, processor = load_checkpoint(local, dtype=DTYPES.get(cfg.dtype), base=cfg.base)
    merged_from = {"adapter": {"uri": str(cfg.adapter), "digest": checkpoint_digest(local)}, "base": base}
    info = {k: v for k, v in read_info(local).items() if k not in ("base_checkpoint", "created", "git_commit")}
    parent = Path(cfg.out).parent if not storage.is_s3(cfg.out) else Path(os.environ.get("TMPDIR", "/tmp"))
    parent.mkdir(parents=True, exist_ok=True)
    staging = temp_dir(parent, f".{Path(cfg.out).name}.merge-")
    try:
        model.save_pretrained(staging, processor=processor)
        write_info(staging, **info, merged_from=merged_from)
        digest = publish(staging, cfg.out) if storage.is_s3(cfg.out) else _install(staging, Path(cfg.out))
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return {"checkpoint": {"uri": str(cfg.out), "digest": digest}, "merged_from": merged_from}


def _install(staging: Path, out: Path) -> str:
    """Rename the finished checkpoint into place; an existing `out` is moved aside first and removed last, so a
    crash leaves either the old checkpoint or the new one, never a mix."""
    digest = checkpoint_digest(staging)
    old = out.with_name(f".{out.name}.old-{os.getpid()}")
    if out.exists():
        os.replace(out, old)
    os.replace(staging, out)
    shutil.rmtree(old, ignore_errors=True)
    return digest
