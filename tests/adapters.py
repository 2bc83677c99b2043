"""Real tiny checkpoints for the adapter tests: a full base, and a LoRA adapter checkpoint over it whose adapter and
head weights were moved off their initialisation (so merging changes the weights and a wrong load shows)."""

from __future__ import annotations

from pathlib import Path

import torch

from ufvideo.checkpoint import write_info
from ufvideo.data.synthetic import corpus_texts
from ufvideo.model import ufvideo_tiny
from ufvideo.model.adapters import AdapterConfig, save_adapter
from ufvideo.model.loader import base_reference
from ufvideo.train.stages import apply_policy

SETTINGS = AdapterConfig(rank=4, alpha=16.0, dropout=0.0)


def base_checkpoint(directory: Path, seed: int = 0) -> Path:
    model, processor = ufvideo_tiny(seed=seed, corpus=corpus_texts())
    model.save_pretrained(directory, processor=processor)
    write_info(directory, profile="tiny", stage=1, data_digest="synthetic-digest")
    return directory


def adapter_checkpoint(base: Path | str, directory: Path, seed: int = 1, base_uri: str | None = None) -> Path:
    """An adapter checkpoint of `base` (a local directory; `base_uri` is recorded instead when given, e.g. the
    same files in S3) with every trained tensor set to seeded noise, as training would have left them."""
    from ufvideo.model.loader import load_checkpoint

    model, processor = load_checkpoint(base)
    state = apply_policy(model, "lora", adapter=SETTINGS)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if param.requires_grad:
                noise = 0.05 * torch.randn(param.shape, generator=generator)
                if name in state.row_masked:
                    rows = state.row_masked[name]
                    param[rows] += noise[rows]
                else:
                    param += noise
    reference = base_reference(str(base))
    if base_uri is not None:
        reference["uri"] = base_uri
    save_adapter(model, directory, SETTINGS, reference, state.row_masked)
    processor.save_pretrained(directory)
    write_info(
        directory,
        profile="tiny",
        stage=2,
        data_digest="synthetic-digest",
        freeze_policy="lora",
        base_checkpoint=reference,
    )
    state.remove()
    return directory
