"""Controls of an evaluation: the same benchmark scored on inputs that remove what the model should depend on.

A score means something only beside what a model gets without the thing being tested. Two controls:

- `shuffled_video`: the same checkpoint, every sample's visual input (LLM frames, region masks and their key frames,
  SAM frames) taken from another sample of the same kind by a seeded derangement, so no sample keeps its own video;
  the text and the ground truth stay the sample's own. A model that reads the video must drop here.
- `blind_prior`: no model; every sample is answered with the benchmark's prior (for the synthetic set the most frequent
  training answer of its task). A model that only learned the answer distribution scores the same.

Why here and not in a side script: a laptop loop that cannot tell "learned to look" from "learned the answer
distribution" cannot guide anyone; every evaluation can carry its controls (`eval.controls`), and the report and
MLflow show them beside the real run.
"""

from __future__ import annotations

import dataclasses
import inspect
import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import numpy as np

from ufvideo.eval.types import Prediction, Sample

log = logging.getLogger(__name__)

NONE, SHUFFLED_VIDEO, BLIND_PRIOR = "none", "shuffled_video", "blind_prior"
CONTROLS = (NONE, SHUFFLED_VIDEO, BLIND_PRIOR)
VISUAL_FIELDS = ("video", "clip", "fps", "regions", "sam_frames")

PredictFn = Callable[..., Iterable[Prediction]]


def derangement(n: int, rng: np.random.Generator) -> list[int]:
    """A uniformly random permutation of range(n) with no fixed point (n >= 2), by rejection: about e draws."""
    if n < 2:
        raise ValueError(f"a derangement needs at least 2 items, got {n}")
    while True:
        order = rng.permutation(n)
        if not np.any(order == np.arange(n)):
            return [int(i) for i in order]


def visual_group(sample: Sample) -> tuple[Any, ...]:
    """Samples that may lend each other their visual input: same task, same decoding mode, same number of regions
    (the prompt's `<region>` count must match) and SAM frames wanted or not."""
    return (
        sample.task,
        sample.teacher_forced,
        sample.region_mode,
        len(sample.regions or []),
        bool(sample.sam_frames),
    )


def _resample(frames: Sequence[int], count: int) -> list[int]:
    """`count` indices spread over the donor's SAM frames, so the track length stays the sample's own."""
    if count == len(frames):
        return list(frames)
    if count == 1:
        return [frames[0]]
    return [frames[round(i * (len(frames) - 1) / (count - 1))] for i in range(count)]


def lend_visual(sample: Sample, donor: Sample) -> Sample:
    """`sample` with the donor's video, clip, regions and SAM frames; its own id, text and ground truth."""
    changes: dict[str, Any] = {name: getattr(donor, name) for name in VISUAL_FIELDS}
    if sample.sam_frames and donor.sam_frames:
        changes["sam_frames"] = _resample(donor.sam_frames, len(sample.sam_frames))
    meta = {**sample.meta, "control_donor": donor.id}
    return dataclasses.replace(sample, **changes, meta=meta)


def video_key(sample: Sample) -> tuple[Any, ...]:
    """What makes two samples' visual input the same: the video (file or frame list) and the clip within it."""
    video = tuple(sample.video) if isinstance(sample.video, list) else str(sample.video)
    return video, tuple(sample.clip) if sample.clip else None


def shuffle_visual(samples: Sequence[Sample], seed: int) -> tuple[list[Sample], list[str]]:
    """(controlled samples in input order, ids left out).

    Within each `visual_group`, the distinct videos follow a derangement seeded by (seed, group position), and a
    sample takes its visual input from a sample of its video's image under it, so no sample keeps its own video
    even where one video has several samples of a task (the synthetic set's extra questions). A group with a
    single video has no donor; its samples are left out of the control.
    """
    groups: dict[tuple[Any, ...], dict[tuple[Any, ...], list[int]]] = {}
    for index, sample in enumerate(samples):
        groups.setdefault(visual_group(sample), {}).setdefault(video_key(sample), []).append(index)
    donor_of: dict[int, int] = {}
    left_out: list[str] = []
    for position, by_video in enumerate(groups.values()):
        videos = list(by_video.values())
        if len(videos) < 2:
            left_out += [samples[i].id for members in videos for i in members]
            continue
        rng = np.random.default_rng(np.random.SeedSequence([int(seed), position]))
        for members, image in zip(videos, derangement(len(videos), rng), strict=True):
            donors = videos[image]
            for j, member in enumerate(members):
                donor_of[member] = donors[j % len(donors)]
    controlled = [lend_visual(s, samples[donor_of[i]]) for i, s in enumerate(samples) if i in donor_of]
    if left_out:
        log.warning("shuffled_video: %d sample(s) have no other video of their kind and are left out", len(left_out))
    return controlled, left_out


def own_frame_size(sample: Sample) -> tuple[int, int] | None:
    """The (height, width) the sample's ground-truth masks live at, from the sample or its first RLE."""
    if sample.height and sample.width:
        return int(sample.height), int(sample.width)
    for track in sample.ground_truth.get("masks") or []:
        for rle in track:
            if rle and "size" in rle:
                return int(rle["size"][0]), int(rle["size"][1])
    return None


def resize_track(masks: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resize of an (S, h, w) bool track to (S, H, W): donor videos may differ in size. An empty
    track (a `[SEG]` generated for a sample without SAM frames: shape (0, 0, 0)) stays empty, at the new size."""
    masks = np.asarray(masks)
    if masks.shape[1:] == tuple(size):
        return masks
    if masks.ndim != 3 or 0 in masks.shape:
        return np.zeros((masks.shape[0] if masks.ndim == 3 else 0, *size), dtype=bool)
    rows = (np.arange(size[0]) * masks.shape[1]) // size[0]
    cols = (np.arange(size[1]) * masks.shape[2]) // size[1]
    return masks[:, rows][:, :, cols]


def shuffled_predict(predict: PredictFn, originals: dict[str, Sample]) -> PredictFn:
    """Wrap inference: it sees the donor's visual input, and its masks come back at the sample's own frame size."""

    def run(model: Any, processor: Any, samples: list[Sample], batch_size: int, **kw: Any) -> Iterator[Prediction]:
        for prediction in predict(model, processor, samples, batch_size, **accepted(predict, kw)):
            size = own_frame_size(originals[prediction.id])
            if size is not None and prediction.masks:
                prediction.masks = [resize_track(m, size) for m in prediction.masks]
            yield prediction

    return run


def accepted(fn: Callable[..., Any], kwargs: dict[str, Any]) -> dict[str, Any]:
    """The keyword arguments `fn` takes (all of them when it has **kwargs): the wrapper passes on no more."""
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return {}
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return dict(kwargs)
    return {k: v for k, v in kwargs.items() if k in params}


def prior_predict(answer: Callable[[Sample], str]) -> PredictFn:
    """Inference without a model: the benchmark's prior answer for each sample, no masks."""

    def run(model: Any, processor: Any, samples: list[Sample], batch_size: int, **kw: Any) -> Iterator[Prediction]:
        for sample in samples:
            yield Prediction(id=sample.id, text=answer(sample), meta={"control": BLIND_PRIOR})

    return run


def summary_rows(doc: dict[str, Any]) -> list[tuple[str, float | None, float | None, float | None, float | None]]:
    """(metric, this run, blind prior, shuffled video, video dependence) per headline metric of a metrics.json
    document that carries controls; metrics no column has a value for are left out."""
    controls = doc.get("controls") or {}
    prior, shuffled = controls.get(BLIND_PRIOR) or {}, controls.get(SHUFFLED_VIDEO) or {}
    dependence = doc.get("video_dependence") or {}
    names = doc.get("headline") or list(doc["metrics"])
    rows = []
    for name in names:
        row = (name, doc["metrics"].get(name), prior.get(name), shuffled.get(name), dependence.get(name))
        if any(v is not None for v in row[1:]):
            rows.append(row)
    return rows


def format_value(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"
