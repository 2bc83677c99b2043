"""Supervised warm-up of the tiny profile's random vision path (SigLIP + STC connector) before stage 1.

Why: the released UFVideo starts from a pretrained SigLIP and a pretrained connector; the tiny profile's are random.
Measured through the random connector, a linear probe reads the colour of the object in an LLM video token's cell
in 35 % of the cells (chance 17 %): the LLM gets almost nothing to read (BENCHMARKS.md, "the encoder bottleneck").
This step stands in for that pretraining. The synthetic renderer is the ground truth of every training video, so
the tower and connector learn to say, per LLM video token, which colours, shapes, colour-shape pairs, sizes and
motions are in the token's cell (multi-label BCE through a linear head that is then dropped).

Only training-split records of the stage's own data are used, and only synthetic ones (their scenes are re-derived
from seed and index, exactly as rendered); a held-out tenth of those videos measures the result. `ufvideo-7b`
leaves it off (`epochs: 0`): its vision path is the released one.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ufvideo.config import ConfigError
from ufvideo.data.dataset import CuratedDataset
from ufvideo.data.synthetic.scene import COLOURS, DIRECTIONS, SHAPES, SIZES, Scene, make_scene

log = logging.getLogger(__name__)

MOTIONS = (*DIRECTIONS, "horizontal", "vertical", "")  # SceneObject.direction values
PAIRS = tuple((c, s) for c in COLOURS for s in SHAPES)
GROUPS = {"pair": len(PAIRS), "colour": len(COLOURS), "shape": len(SHAPES), "size": len(SIZES), "motion": len(MOTIONS)}
OFFSETS = dict(zip(GROUPS, np.cumsum([0, *GROUPS.values()])[:-1].tolist()))
WIDTH = sum(GROUPS.values())
MIN_PIXELS = 32  # pixels of the video over a token's frames: a sliver of an object is not "in" the cell
HELD_OUT_EVERY = 10  # every tenth synthetic training video measures the warm-up instead of training it


@dataclass
class VisionWarmup:
    """`train_stage1.vision_warmup`: epochs over the synthetic training videos (0 = off), AdamW rate, batch of videos,
    weight of a positive label (most cells are empty background)."""

    epochs: float = 0.0
    learning_rate: float = 1e-3
    batch_size: int = 16
    positive_weight: float = 5.0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.epochs < 0:
            raise ConfigError(f"vision_warmup.epochs: must be >= 0 (0 = off), got {self.epochs}")
        if self.epochs and (self.learning_rate <= 0 or self.batch_size < 1 or self.positive_weight <= 0):
            raise ConfigError("vision_warmup: learning_rate and positive_weight must be > 0 and batch_size >= 1")


def cell_labels(scene: Scene, frames: list[int], grid: int, stride: int) -> np.ndarray:
    """(tokens, WIDTH) multi-hot per LLM video token in the connector's (t, h, w) order: what the renderer put in
    the token's cell (>= MIN_PIXELS visible pixels over the token's frames)."""
    t_out, ch, cw = len(frames) // stride, scene.height // grid, scene.width // grid
    cells = np.zeros((t_out, grid, grid, WIDTH), dtype=np.float32)
    for obj in scene.objects:
        visible = scene.masks[obj.index][frames[: t_out * stride]]
        pixels = visible[:, : grid * ch, : grid * cw].reshape(t_out, stride, grid, ch, grid, cw).sum(axis=(1, 3, 5))
        hot = {
            "pair": PAIRS.index((obj.colour, obj.shape)),
            "colour": list(COLOURS).index(obj.colour),
            "shape": SHAPES.index(obj.shape),
            "size": SIZES.index(obj.size),
            "motion": MOTIONS.index(obj.direction),
        }
        vec = np.zeros(WIDTH, dtype=np.float32)
        vec[[OFFSETS[g] + i for g, i in hot.items()]] = 1.0
        on = pixels >= MIN_PIXELS
        cells[on] = np.maximum(cells[on], vec)
    return cells.reshape(-1, WIDTH)


def _scene(record: dict[str, Any]) -> Scene:
    meta = record["meta"]
    return make_scene(
        int(meta["seed"]),
        int(meta["video_index"]),
        width=int(record["width"]),
        height=int(record["height"]),
        num_frames=int(record["num_frames"]),
        fps=int(record["fps"]),
    )


def collect(dataset: CuratedDataset, processor: Any, config: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """(pixels (V, T, 3, S, S) float16, labels (V, tokens, WIDTH)) for each distinct synthetic training video, with
    the frames the stage itself samples."""
    grid, stride = config.patch_grid // config.connector_spatial_stride, config.connector_temporal_stride
    seen: set[str] = set()
    pixels, labels = [], []
    for i, task in enumerate(dataset.tasks):
        record = dataset.record(i)
        if record.get("source") != "synthetic" or record["video"] in seen or task not in ("qa", "mcqa", "caption"):
            continue
        seen.add(record["video"])
        example = dataset[i]
        pixels.append(processor._video_pixels(example["video"], 0).to(torch.float16))
        labels.append(torch.from_numpy(cell_labels(_scene(record), list(example["frame_indices"]), grid, stride)))
    if len(pixels) < 2:
        raise ConfigError(
            f"vision_warmup: {dataset.dataset_dir} has {len(pixels)} synthetic training videos with qa, mcqa or "
            "caption records; the warm-up learns from the synthetic renderer's labels and needs at least 2 (one "
            "to train, one to measure), or set vision_warmup.epochs=0"
        )
    return torch.stack(pixels), torch.stack(labels)


def cell_accuracy(logits: torch.Tensor, labels: torch.Tensor, group: str) -> float:
    """Share of the cells holding exactly one value of `group` whose top logit in that group is that value."""
    lo, hi = OFFSETS[group], OFFSETS[group] + GROUPS[group]
    truth = labels[..., lo:hi].reshape(-1, hi - lo)
    single = truth.sum(-1) == 1
    if not bool(single.any()):
        return float("nan")
    guess = logits[..., lo:hi].reshape(-1, hi - lo)[single].argmax(-1)
    return float((guess == truth[single].argmax(-1)).float().mean())


def measure(model: Any, head: torch.nn.Module, pixels: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
    with torch.no_grad():
        logits = torch.cat([_logits(model, head, pixels[k : k + 32]) for k in range(0, len(pixels), 32)])
    return {group: cell_accuracy(logits, labels, group) for group in ("colour", "shape", "pair", "size")}


def _logits(model: Any, head: torch.nn.Module, pixels: torch.Tensor) -> torch.Tensor:
    tokens = model.encode_video(pixels.float())
    return head(F.layer_norm(tokens, tokens.shape[-1:]))


def run(model: Any, processor: Any, dataset: CuratedDataset, cfg: VisionWarmup) -> dict[str, float]:
    """Train `model.vision_tower` and `model.connector` in place; returns held-out per-cell accuracies before and
    after (metrics `vision_warmup.<group>_before/after`) and the seconds taken. Both parts are left trainable as
    they were; the stage's policy and `lr_multipliers` decide what trains next."""
    started = time.perf_counter()
    pixels, labels = collect(dataset, processor, model.config)
    held = torch.arange(len(pixels)) % HELD_OUT_EVERY == HELD_OUT_EVERY - 1
    held[-1] |= not bool(held.any())  # fewer than HELD_OUT_EVERY videos: the last one measures
    train_pixels, train_labels = pixels[~held], labels[~held]
    parts = (model.vision_tower, model.connector)
    flags = [[p.requires_grad for p in part.parameters()] for part in parts]
    generator = torch.Generator().manual_seed(cfg.seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        head = torch.nn.Linear(model.config.text_config.hidden_size, WIDTH)
    before = measure(model, head, pixels[held], labels[held])  # the untrained head: chance-level reference
    for part in parts:
        part.requires_grad_(True)
    params = [p for m in (*parts, head) for p in m.parameters()]
    optimizer = torch.optim.AdamW(params, lr=cfg.learning_rate, weight_decay=0.0)
    weight = torch.full((WIDTH,), cfg.positive_weight)
    steps = max(1, int(cfg.epochs * len(train_pixels) / cfg.batch_size))
    loss = torch.zeros(())
    for _ in range(steps):
        picked = torch.randint(len(train_pixels), (cfg.batch_size,), generator=generator)
        logits = _logits(model, head, train_pixels[picked])
        loss = F.binary_cross_entropy_with_logits(logits, train_labels[picked], pos_weight=weight)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    for part, part_flags in zip(parts, flags):
        for param, flag in zip(part.parameters(), part_flags):
            param.requires_grad_(flag)
    after = measure(model, head, pixels[held], labels[held])
    seconds = time.perf_counter() - started
    log.info(
        "vision warm-up: %d videos, %d steps, BCE %.3f, held-out cell colour %.2f shape %.2f (%.0f s)",
        len(train_pixels),
        steps,
        float(loss.detach()),
        after["colour"],
        after["shape"],
        seconds,
    )
    metrics = {f"{group}_after": value for group, value in after.items()}
    metrics.update({f"{group}_before": value for group, value in before.items()})
    return {**metrics, "steps": float(steps), "videos": float(len(train_pixels)), "seconds": seconds}
