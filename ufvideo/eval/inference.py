"""Batched inference on benchmark samples: frames and region masks in, text, spans and mask tracks out.

Samples are decoded with the same `gather_inputs` as training, batched through the processor and the model's
KV-cache greedy `generate`. Teacher-forced samples (the public RVOS protocol feeds "Sure, [SEG]." as the answer)
take one forward pass instead: their masks come from the state that predicts the given `[SEG]`.
`compat="upstream"` reproduces the public scripts: the generated-`[SEG]` off-by-one (see `generation.py`) and,
for teacher-forced prompts with several `[SEG]`, only the first one's mask per sample.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ufvideo.data.dataset import gather_inputs
from ufvideo.eval.types import Prediction, Sample
from ufvideo.model.generation import check_compat, to_device
from ufvideo.model.propagation import teacher_forced_masks
from ufvideo.model.segmentation import upsample_logits

log = logging.getLogger(__name__)


def _inputs(sample: Sample, root: str | Path | None, num_frames: int) -> dict[str, Any]:
    return gather_inputs(
        sample.video,
        root,
        num_frames,
        record_id=sample.id,
        clip=sample.clip,
        fps=sample.fps,
        regions=sample.regions,
        sam_frame_indices=sample.sam_frames or [],
    )


def _batches(samples: Sequence[Sample], batch_size: int) -> Iterator[list[Sample]]:
    """Consecutive runs that share a decoding mode (generate vs teacher-forced, region mode), cut to batch_size."""

    def mode(sample: Sample) -> tuple[bool, str]:
        return sample.teacher_forced, sample.region_mode or "multi"

    for _, group in itertools.groupby(samples, key=mode):
        run = list(group)
        for start in range(0, len(run), batch_size):
            yield run[start : start + batch_size]


def _processor_batch(processor: Any, batch: list[Sample], examples: list[dict[str, Any]]) -> dict[str, Any]:
    teacher_forced = batch[0].teacher_forced
    return processor(
        conversations=[s.conversation for s in batch],
        videos=[e["video"] for e in examples],
        regions=[e["regions"] for e in examples],
        key_frames=[e["key_frames"] for e in examples],
        sam_frames=[e["sam_frames"] for e in examples],
        region_mode=batch[0].region_mode or "multi",
        add_generation_prompt=not teacher_forced,
    )


@torch.no_grad()
def _teacher_forced(
    model: Any, inputs: dict[str, Any], batch: list[Sample], mask_mode: str | None = None, compat: str = "ours"
) -> list[Prediction]:
    inputs = {k: to_device(v, model.device) for k, v in inputs.items() if k != "labels"}
    pred_masks = teacher_forced_masks(model, inputs, mask_mode)
    predictions = []
    for b, sample in enumerate(batch):
        logits = pred_masks[b] if pred_masks is not None else None
        if logits is not None and compat == "upstream":
            logits = logits[:1]  # the public script keeps `masks[:, 0]`: the first [SEG]'s track only
        masks: list[np.ndarray] = []
        if logits is not None:
            size = tuple(int(v) for v in inputs["sam_sizes"][b].tolist())
            tracks = upsample_logits(logits, size) > model.config.mask_threshold
            masks = [track.cpu().numpy() for track in tracks]
        predictions.append(Prediction(id=sample.id, masks=masks, meta={"teacher_forced": True}))
    return predictions


def _generated(
    model: Any, processor: Any, inputs: dict[str, Any], batch: list[Sample], examples: list[dict[str, Any]], **kw: Any
) -> list[Prediction]:
    durations = [e["duration"] for e in examples]
    generations = model.generate(inputs, processor, durations=durations, **kw)
    predictions = []
    for sample, generation in zip(batch, generations, strict=True):
        masks = [m.numpy() if isinstance(m, torch.Tensor) else np.asarray(m) for m in generation.masks]
        spans = [tuple(span) for span in generation.spans]
        predictions.append(Prediction(id=sample.id, text=generation.text, masks=masks, spans=spans))
    return predictions


def predict(
    model: Any,
    processor: Any,
    samples: Iterable[Sample],
    batch_size: int = 1,
    *,
    data_root: str | Path | None = None,
    max_new_tokens: int = 128,
    mask_mode: str | None = None,
    compat: str = "ours",
) -> Iterator[Prediction]:
    """Yield one `Prediction` per sample, in input order, `batch_size` samples per model call.

    Batching is what makes evaluation fast (one padded prompt, one KV cache per batch); results equal
    one-at-a-time decoding because prompts are left-aligned and padding is masked (tested).
    """
    check_compat(compat)
    model.eval()
    num_frames = processor.settings.num_frames
    samples = list(samples)
    for batch in _batches(samples, max(1, batch_size)):
        examples = [_inputs(sample, data_root, num_frames) for sample in batch]
        inputs = _processor_batch(processor, batch, examples)
        if batch[0].teacher_forced:
            yield from _teacher_forced(model, inputs, batch, mask_mode, compat)
        else:
            yield from _generated(
                model,
                processor,
                inputs,
                batch,
                examples,
                max_new_tokens=max_new_tokens,
                mask_mode=mask_mode,
                compat=compat,
            )
