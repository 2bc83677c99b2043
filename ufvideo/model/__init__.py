"""The UFVideo model: config, modules, processor, builders of the tiny and 7B profiles, checkpoint conversion."""

from __future__ import annotations

from pathlib import Path

import torch

from ufvideo.model.builders import ufvideo_7b, ufvideo_tiny
from ufvideo.model.configuration import UFVideoConfig
from ufvideo.model.generation import Generation
from ufvideo.model.modeling import UFVideoForConditionalGeneration, UFVideoOutput
from ufvideo.model.processing import UFVideoProcessor


def load_pretrained(
    directory: str | Path, device: str = "cpu", dtype: torch.dtype | None = None
) -> tuple[UFVideoForConditionalGeneration, UFVideoProcessor]:
    """Model (in `dtype`, default the checkpoint's own) and processor from one checkpoint directory."""
    model = UFVideoForConditionalGeneration.from_pretrained(directory, device=device, dtype=dtype)
    return model, UFVideoProcessor.from_pretrained(directory)


__all__ = [
    "Generation",
    "UFVideoConfig",
    "UFVideoForConditionalGeneration",
    "UFVideoOutput",
    "UFVideoProcessor",
    "load_pretrained",
    "ufvideo_7b",
    "ufvideo_tiny",
]
