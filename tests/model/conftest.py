"""Fixtures for the model tests: one tiny model per module and a small mixed batch (regions, [SEG], time)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from ufvideo.model import ufvideo_tiny

H, W = 48, 64


def box(y0: int, x0: int, y1: int, x1: int) -> np.ndarray:
    mask = np.zeros((H, W), bool)
    mask[y0:y1, x0:x1] = True
    return mask


def video(seed: int, frames: int = 8) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (frames, H, W, 3), dtype=np.uint8)


def mixed_samples() -> dict[str, Any]:
    """Two samples: a multi-frame region + one [SEG] + a time span, and two regions + two [SEG]s."""
    conversations = [
        [
            {"from": "human", "value": "<video>\nWhat is [<region>] doing?"},
            {"from": "gpt", "value": "It moves during {<TEMP-010><TEMP-050>}. Sure, [SEG]."},
        ],
        [
            {"from": "human", "value": "Segment <region> and <region>."},
            {"from": "gpt", "value": "[SEG] and [SEG]."},
        ],
    ]
    regions = [
        [
            {
                0: box(5, 5, 20, 20),
                2: box(6, 8, 22, 24),
                4: box(8, 10, 24, 28),
                6: box(9, 12, 25, 30),
                7: box(1, 1, 4, 4),
            }
        ],
        [{1: box(10, 30, 30, 60)}, {2: box(0, 0, 10, 10), 5: box(30, 30, 47, 63)}],
    ]
    targets = [
        [{0: box(5, 5, 20, 20), 3: box(6, 8, 22, 24), 5: None}],
        [{1: box(10, 30, 30, 60), 4: box(12, 30, 32, 60)}, {1: box(0, 0, 10, 10), 6: box(30, 30, 47, 63)}],
    ]
    return {"conversations": conversations, "videos": [video(0), video(1)], "regions": regions, "targets": targets}


@pytest.fixture(scope="module")
def tiny():
    """(model, processor) of the tiny profile, seed 0; tests that train must deep-copy the model."""
    model, processor = ufvideo_tiny(seed=0)
    return model.eval(), processor


@pytest.fixture(scope="module")
def released_tiny():
    """The tiny model in the released layout: none of the tiny-only visual-token modules (for conversion tests)."""
    model, processor = ufvideo_tiny(seed=0, visual_token_norm="none")
    return model.eval(), processor


@pytest.fixture()
def samples() -> dict[str, Any]:
    return mixed_samples()
