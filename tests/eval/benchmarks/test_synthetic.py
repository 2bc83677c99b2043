"""The synthetic benchmark on a freshly generated curated directory: only the test split is loaded, prompts are
the records' own turns, and ground-truth predictions score perfectly on every task kind (judge metrics null,
CIDEr-D computed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.eval.benchmarks.helpers import oracle_prediction
from ufvideo.data.shards import iter_records
from ufvideo.data.synthetic import SynthConfig
from ufvideo.data.synthetic import generate as synth_run
from ufvideo.eval.benchmarks import get_benchmark
from ufvideo.eval.benchmarks.synthetic import synthetic_parse, synthetic_score
from ufvideo.eval.registry import FRAME_POOLED, ScoreContext
from ufvideo.eval.types import Prediction


@pytest.fixture(scope="module")
def synth_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("synth")
    synth_run(SynthConfig(out=str(out), videos=8, width=64, height=64, num_frames=16, fps=8))
    return out


def test_loads_only_the_test_split(synth_dir: Path, tmp_path: Path) -> None:
    samples = list(get_benchmark("synthetic").samples(synth_dir))
    test_ids = {r["id"] for r in iter_records(synth_dir, split="test")}
    assert {s.id for s in samples} == test_ids and len(samples) == 22  # 2 test videos x 11 records
    assert {s.task for s in samples} == {
        "qa",
        "mcqa",
        "caption",
        "referring",
        "rvos",
        "tvg",
        "dvc",
        "pixrqa",
        "pixhqa",
        "pixtrqa",
    }
    # --data-root may also be the folder holding `synth/`
    (tmp_path / "synth").symlink_to(synth_dir)
    assert len(list(get_benchmark("synthetic").samples(tmp_path))) == 22


def test_prompts_are_the_records_turns(synth_dir: Path) -> None:
    records = {r["id"]: r for r in iter_records(synth_dir, split="test")}
    for sample in get_benchmark("synthetic").samples(synth_dir):
        turns = records[sample.id]["conversations"]
        expected = turns if sample.task == "rvos" else turns[:1]
        assert sample.conversation == expected, sample.id
        assert Path(sample.video).is_file()
        if sample.task in ("rvos", "pixhqa", "pixtrqa"):
            assert sample.sam_frames and len(sample.ground_truth["masks"][0]) == len(sample.sam_frames)


def test_ground_truth_predictions_score_perfectly(synth_dir: Path) -> None:
    samples = list(get_benchmark("synthetic").samples(synth_dir))
    rows = [{"id": s.id, **synthetic_parse(oracle_prediction(s), s)} for s in samples]
    scores = synthetic_score(rows, ScoreContext())
    m = scores.metrics
    assert m["qa_accuracy"] == 100.0 and m["mcqa_accuracy"] == 100.0
    for task in ("tvg", "pixtrqa"):
        assert m[f"{task}_miou"] == pytest.approx(100.0) and m[f"{task}_r_at_0_7"] == 100.0
    for task in ("rvos", "pixrqa", "pixhqa", "pixtrqa"):
        assert m[f"{task}_jf"] == pytest.approx(100.0), task
    assert m["caption_score_avg"] is None and m["referring_sc"] is None
    # CIDEr-D of a candidate equal to its reference: 10 where every n-gram order has a distinctive n-gram (short
    # referring answers may share all their 4-grams with another reference: that order then adds 0, not 10)
    assert m["caption_cider"] == pytest.approx(10.0) and m["dvc_cider"] == pytest.approx(10.0)
    assert m["referring_cider"] >= 9.0
    assert m["dvc_event_precision"] == pytest.approx(100.0) and m["dvc_event_recall"] == pytest.approx(100.0)
    assert scores.details["samples_per_task"]["referring"] == 4
    # the report's details cover every task, not just the last one merged
    per_video = scores.details["jf_per_video"]
    assert {key.split("/")[0] for key in per_video} == {"rvos", "pixrqa", "pixhqa", "pixtrqa"}
    assert all(v == pytest.approx(100.0) for v in per_video.values())
    spans = scores.details["samples_per_task"]["tvg"] + scores.details["samples_per_task"]["pixtrqa"]
    assert len(scores.details["ious"]) == spans


def test_wrong_predictions_score_below_perfect(synth_dir: Path) -> None:
    samples = list(get_benchmark("synthetic").samples(synth_dir))
    rows = []
    for s in samples:
        good = oracle_prediction(s)
        bad = Prediction(s.id, text="no idea", masks=[np.zeros_like(t) for t in good.masks])
        rows.append({"id": s.id, **synthetic_parse(bad, s)})
    m = synthetic_score(rows, ScoreContext(aggregation=FRAME_POOLED)).metrics
    assert m["qa_accuracy"] == 0.0 and m["mcqa_accuracy"] == 0.0 and m["tvg_miou"] == 0.0
    assert m["rvos_j"] < 100.0 and m["pixtrqa_f"] < 100.0
    assert m["caption_cider"] == 0.0 and m["dvc_cider"] == 0.0 and m["dvc_event_f1"] == 0.0


def test_cider_rewards_the_right_content(synth_dir: Path) -> None:
    """A caption naming the other video's objects scores far below the right one, though the template is shared."""
    captions = [s for s in get_benchmark("synthetic").samples(synth_dir) if s.task == "caption"]
    answers = [s.ground_truth["answer"] for s in captions]
    swapped = answers[1:] + answers[:1]
    scores = []
    for texts in (answers, swapped):
        rows = [synthetic_parse(Prediction(s.id, text=t), s) for s, t in zip(captions, texts, strict=True)]
        scores.append(synthetic_score(rows, ScoreContext()).metrics["caption_cider"])
    assert scores[0] == pytest.approx(10.0) and scores[1] < 0.5 * scores[0]


def test_declaration_lists_every_metric_the_scorer_emits(synth_dir: Path) -> None:
    samples = list(get_benchmark("synthetic").samples(synth_dir))
    rows = [{"id": s.id, **synthetic_parse(oracle_prediction(s), s)} for s in samples]
    emitted = set(synthetic_score(rows, ScoreContext()).metrics)
    assert emitted == set(get_benchmark("synthetic").metrics)
