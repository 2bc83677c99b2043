"""Batched inference with the tiny model: order, mask shapes at the video size, batched equals one by one."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from ufvideo.data.shards import iter_records
from ufvideo.data.synthetic import SynthConfig, corpus_texts
from ufvideo.data.synthetic import generate as synth
from ufvideo.eval.inference import predict
from ufvideo.eval.types import Sample
from ufvideo.model import ufvideo_tiny


@pytest.fixture(scope="module")
def samples(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Sample]]:
    root = tmp_path_factory.mktemp("synth")
    synth(SynthConfig(out=str(root), videos=4))
    out = []
    for record in iter_records(root, split="test"):
        conversation = record["conversations"][:2]
        targets = record.get("targets") or []
        sam = sorted({int(k) for t in targets for k, v in t.items() if v is not None})[:3]
        out.append(
            Sample(
                id=record["id"],
                benchmark="synthetic",
                task=record["task"],
                video=record["video"],
                conversation=conversation if record["task"] == "rvos" else conversation[:1],
                regions=[{int(k): v for k, v in r.items()} for r in record.get("regions") or []] or None,
                region_mode=record.get("region_mode"),
                sam_frames=sam or None,
                teacher_forced=record["task"] == "rvos",
            )
        )
    return root, out


def test_predict_batched_equals_one_by_one(samples: tuple[Path, list[Sample]]) -> None:
    root, items = samples
    model, processor = ufvideo_tiny(seed=0, corpus=corpus_texts())
    batched = list(predict(model, processor, items, batch_size=4, data_root=root, max_new_tokens=12))
    single = list(predict(model, processor, items, batch_size=1, data_root=root, max_new_tokens=12))
    assert [p.id for p in batched] == [s.id for s in items] == [p.id for p in single]
    for sample, a, b in zip(items, batched, single, strict=True):
        assert a.text == b.text
        assert len(a.masks) == len(b.masks)
        for x, y in zip(a.masks, b.masks, strict=True):
            np.testing.assert_array_equal(x, y)
        if sample.teacher_forced:
            assert a.text == "" and len(a.masks) == 1  # one [SEG] in the given answer
            assert a.masks[0].shape == (len(sample.sam_frames or []), 128, 128)
        for mask in a.masks:
            assert mask.dtype == bool and mask.shape[1:] == (128, 128)
    assert any(not s.teacher_forced for s in items) and any(s.teacher_forced for s in items)


def test_upstream_compat_keeps_the_first_seg_of_a_teacher_forced_prompt(samples: tuple[Path, list[Sample]]) -> None:
    """The public RVOS script keeps `masks[:, 0]`: with two [SEG] given, only the first one's track."""
    root, items = samples
    model, processor = ufvideo_tiny(seed=0, corpus=corpus_texts())
    sample = next(s for s in items if s.teacher_forced)
    answer = sample.conversation[-1]["value"].replace("[SEG]", "[SEG] and [SEG]")
    two = replace(sample, conversation=[*sample.conversation[:-1], {"from": "gpt", "value": answer}])
    ours = next(predict(model, processor, [two], data_root=root))
    upstream = next(predict(model, processor, [two], data_root=root, compat="upstream"))
    assert len(ours.masks) == 2 and len(upstream.masks) == 1
    np.testing.assert_array_equal(upstream.masks[0], ours.masks[0])
