"""The tiny vision warm-up: the renderer's labels per LLM video token, what the warm-up trains and leaves alone, and
where a config may ask for it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from ufvideo.config import ConfigError
from ufvideo.data.dataset import CuratedDataset, LoadSettings
from ufvideo.data.synthetic import corpus_texts
from ufvideo.data.synthetic.scene import COLOURS, SHAPES, make_scene
from ufvideo.model import ufvideo_tiny
from ufvideo.train import TrainConfig
from ufvideo.train.run import warm_up_vision
from ufvideo.train.vision_warmup import GROUPS, OFFSETS, PAIRS, WIDTH, VisionWarmup, cell_labels
from ufvideo.train.vision_warmup import run as warm_up

GRID, STRIDE = 4, 2  # the tiny profile: 8x8 patches, 2x2 spatial and 2-frame temporal stride -> 4 x 4 x 4 tokens


def bits(row: np.ndarray, group: str) -> list[int]:
    return np.flatnonzero(row[OFFSETS[group] : OFFSETS[group] + GROUPS[group]]).tolist()


def test_the_cell_under_an_object_names_its_colour_shape_and_pair() -> None:
    scene = make_scene(0, 5)
    labels = cell_labels(scene, list(range(8)), GRID, STRIDE)
    assert labels.shape == (4 * GRID * GRID, WIDTH)
    cell = scene.height // GRID
    for obj in scene.objects:
        if obj.start > 0:
            continue  # visible on frames 0 and 1: its centre cell of the first token slice holds most of it
        x, y = (int(v) for v in obj.path[0])
        row = labels[(y // cell) * GRID + x // cell]
        assert list(COLOURS).index(obj.colour) in bits(row, "colour")
        assert SHAPES.index(obj.shape) in bits(row, "shape")
        assert PAIRS.index((obj.colour, obj.shape)) in bits(row, "pair")


def test_cells_without_visible_pixels_are_empty() -> None:
    scene = make_scene(0, 5)
    labels = cell_labels(scene, list(range(8)), GRID, STRIDE).reshape(4, GRID, GRID, WIDTH)
    cell = scene.height // GRID
    covered = scene.masks[:, :8].reshape(len(scene.objects), 4, STRIDE, GRID, cell, GRID, cell).sum(axis=(0, 2, 4, 6))
    assert (labels[covered == 0] == 0).all()
    assert (labels.sum(-1) > 0).any()


@pytest.fixture(scope="module")
def warmed(synth_dir: Path) -> tuple:
    model, processor = ufvideo_tiny(seed=3, corpus=corpus_texts())
    model.vision_tower.requires_grad_(False)  # as a policy left it: the warm-up must hand this back unchanged
    dataset = CuratedDataset(
        str(synth_dir), "train", LoadSettings(model.config.num_frames, 4, model.config.num_video_tokens())
    )
    before = {k: v.clone() for k, v in model.state_dict().items()}
    metrics = warm_up(model, processor, dataset, VisionWarmup(epochs=8, batch_size=2, seed=1))
    return model, before, metrics


def test_warm_up_trains_only_the_vision_path(warmed: tuple) -> None:
    model, before, _ = warmed
    after = model.state_dict()
    changed = {k.split(".")[0] for k in before if not torch.equal(before[k], after[k])}
    assert changed == {"vision_tower", "connector"}


def test_warm_up_hands_back_the_trainable_flags(warmed: tuple) -> None:
    model, _, _ = warmed
    assert not any(p.requires_grad for p in model.vision_tower.parameters())
    assert all(p.requires_grad for p in model.connector.parameters())


def test_warm_up_reports_held_out_cell_accuracy(warmed: tuple) -> None:
    _, _, metrics = warmed
    for group in ("colour", "shape", "pair", "size"):
        assert 0.0 <= metrics[f"{group}_after"] <= 1.0 and 0.0 <= metrics[f"{group}_before"] <= 1.0
    assert metrics["videos"] == 3 and metrics["steps"] == 12  # 4 videos: 3 train, the last one measures


def test_too_few_synthetic_videos_is_a_config_error(tmp_path: Path) -> None:
    from ufvideo.data.synthetic import SynthConfig, generate

    generate(SynthConfig(out=str(tmp_path / "one"), videos=1, test_every=0))
    model, processor = ufvideo_tiny(seed=3, corpus=corpus_texts())
    dataset = CuratedDataset(
        str(tmp_path / "one"), "train", LoadSettings(model.config.num_frames, 4, model.config.num_video_tokens())
    )
    with pytest.raises(ConfigError, match="vision_warmup: .* 1 synthetic training videos"):
        warm_up(model, processor, dataset, VisionWarmup(epochs=1))


@pytest.mark.parametrize(("fields", "resume"), [({"init": "runs/s1/final"}, None), ({}, "runs/s1/checkpoint-2")])
def test_warm_up_is_skipped_where_a_checkpoint_brings_the_vision_path(fields: dict, resume: str | None) -> None:
    cfg = TrainConfig(stage=1, vision_warmup=VisionWarmup(epochs=1), **fields)
    assert warm_up_vision(cfg, None, None, None, resume) == {}  # touches neither model nor data


def test_negative_epochs_are_refused() -> None:
    with pytest.raises(ConfigError, match="vision_warmup.epochs: must be >= 0"):
        VisionWarmup(epochs=-1)
