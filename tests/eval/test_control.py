"""Evaluation controls (`ufvideo.eval.control`): the shuffled-video derangement, the blind prior from the training
split only, and both run beside a real evaluation (metrics.json, report, MLflow)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.eval.benchmarks.helpers import oracle_prediction
from ufvideo.data.shards import CuratedWriter, iter_records
from ufvideo.data.synthetic import SynthConfig
from ufvideo.data.synthetic import generate as synth_run
from ufvideo.eval.benchmarks import get_benchmark
from ufvideo.eval.control import (
    derangement,
    lend_visual,
    own_frame_size,
    resize_track,
    shuffle_visual,
    summary_rows,
    video_key,
    visual_group,
)
from ufvideo.eval.run import EvalConfig, run
from ufvideo.eval.types import Prediction, Sample


@pytest.fixture(scope="module")
def synth_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("synth")
    cfg = SynthConfig(out=str(out), videos=12, width=64, height=64, num_frames=16, fps=8, extra_questions=2)
    synth_run(cfg)
    return out


@pytest.fixture(scope="module")
def samples(synth_dir: Path) -> list[Sample]:
    return list(get_benchmark("synthetic").samples(synth_dir))


@pytest.mark.parametrize("n", [2, 3, 5, 17])
def test_derangement_moves_every_item_and_is_seeded(n: int) -> None:
    for seed in range(20):
        order = derangement(n, np.random.default_rng(seed))
        assert sorted(order) == list(range(n)) and all(order[i] != i for i in range(n))
        assert order == derangement(n, np.random.default_rng(seed))
    with pytest.raises(ValueError, match="at least 2"):
        derangement(1, np.random.default_rng(0))


def test_no_sample_keeps_its_own_video_and_donors_share_its_task(samples: list[Sample]) -> None:
    controlled, left_out = shuffle_visual(samples, seed=0)
    by_id = {s.id: s for s in samples}
    for sample_id in left_out:  # only where no other video has a sample of the same kind
        own = by_id[sample_id]
        assert {video_key(s) for s in samples if visual_group(s) == visual_group(own)} == {video_key(own)}
    assert [s.id for s in controlled] == [s.id for s in samples if s.id not in left_out]
    assert len(controlled) >= len(samples) - 2
    assert any(Counter(video_key(s) for s in samples if s.task == "qa").values())  # several qa per video
    for shuffled in controlled:
        own, donor = by_id[shuffled.id], by_id[shuffled.meta["control_donor"]]
        assert video_key(shuffled) != video_key(own) and video_key(shuffled) == video_key(donor)
        assert donor.task == own.task and shuffled.conversation == own.conversation
        assert shuffled.ground_truth == own.ground_truth and shuffled.regions == donor.regions
        assert len(shuffled.sam_frames or []) == len(own.sam_frames or [])
    again, _ = shuffle_visual(samples, seed=0)
    other, _ = shuffle_visual(samples, seed=1)
    donors = [s.meta["control_donor"] for s in controlled]
    assert donors == [s.meta["control_donor"] for s in again]
    assert donors != [s.meta["control_donor"] for s in other]


def test_a_kind_with_one_video_is_left_out(samples: list[Sample]) -> None:
    first_video = video_key(samples[0])
    one_video = [s for s in samples if video_key(s) == first_video]
    controlled, left_out = shuffle_visual(one_video + [s for s in samples if s.task == "qa"], seed=0)
    assert set(left_out) == {s.id for s in one_video if s.task != "qa"}
    assert {s.task for s in controlled} == {"qa"}


def test_donor_masks_come_back_at_the_samples_own_size(samples: list[Sample]) -> None:
    own = next(s for s in samples if s.sam_frames)
    donor = Sample(id="d", benchmark="x", task=own.task, video="v.mp4", conversation=[], sam_frames=[0, 2, 4, 6, 8])
    lent = lend_visual(own, donor)
    assert lent.sam_frames == [0, 2, 4, 6, 8][: len(own.sam_frames)] or len(lent.sam_frames) == len(own.sam_frames)
    assert lent.sam_frames[0] == 0 and lent.sam_frames[-1] == 8
    track = np.zeros((2, 4, 6), dtype=bool)
    track[:, :2, :3] = True
    big = resize_track(track, (8, 12))
    assert big.shape == (2, 8, 12) and big[:, :4, :6].all() and not big[:, 4:, :].any() and not big[:, :, 6:].any()
    # a [SEG] generated where the sample has no SAM frame gives an empty track: it stays empty at the new size
    assert resize_track(np.zeros((0, 0, 0), dtype=bool), (8, 12)).shape == (0, 8, 12)
    assert own_frame_size(own) == (64, 64)


def test_prior_comes_from_the_training_split_only(synth_dir: Path, tmp_path: Path) -> None:
    """Test-split answers are rewritten to one answer that outnumbers any training answer: the prior ignores it."""
    edited = tmp_path / "edited"
    with CuratedWriter(edited, data_root=str(synth_dir), recipe={"test": "prior"}) as writer:
        for split in ("train", "test"):
            for record in iter_records(synth_dir, split=split):
                if split == "test" and record["task"] == "mcqa":
                    record["conversations"][1]["value"] = "D"
                writer.write(record, split=split)
    train_answers = Counter(
        r["conversations"][1]["value"] for r in iter_records(synth_dir, split="train") if r["task"] == "mcqa"
    )
    prior = get_benchmark("synthetic").prior(edited)
    mcqa = next(s for s in get_benchmark("synthetic").samples(edited) if s.task == "mcqa")
    assert prior(mcqa) == train_answers.most_common(1)[0][0]
    assert train_answers["D"] < train_answers.most_common(1)[0][1] or prior(mcqa) == "D"


class VideoReader:
    """Answers from the video it is shown: the reference answer of the sample that owns that video (same task and
    prompt where one exists). Stands in for a model that reads its input; a shuffled video must hurt it."""

    def __init__(self, samples: list[Sample]) -> None:
        self.answers: dict[tuple[Any, ...], Sample] = {}
        for s in samples:
            self.answers.setdefault((video_key(s), s.task), s)
            self.answers[(video_key(s), s.task, s.prompt)] = s
        self.seen: list[tuple[str, Any]] = []

    def __call__(self, model: Any, processor: Any, samples: list[Sample], batch_size: int) -> Iterator[Prediction]:
        for sample in samples:
            self.seen.append((sample.id, video_key(sample)))
            key = (video_key(sample), sample.task)
            owner = self.answers.get((*key, sample.prompt)) or self.answers[key]
            perfect = oracle_prediction(owner)
            yield Prediction(id=sample.id, text=perfect.text, masks=[_at(owner, t, sample) for t in perfect.masks])


def _at(owner: Sample, track: np.ndarray, shown: Sample) -> np.ndarray:
    """The owner's true mask on each SAM frame `shown` asks for (empty where the owner has none)."""
    position = {frame: k for k, frame in enumerate(owner.sam_frames or [])}
    empty = np.zeros(track.shape[1:], dtype=bool)
    return np.stack([track[position[f]] if f in position else empty for f in shown.sam_frames or []])


class Blind:
    """Answers from the prompt alone: the same text whatever the video."""

    def __call__(self, model: Any, processor: Any, samples: list[Sample], batch_size: int) -> Iterator[Prediction]:
        for sample in samples:
            yield Prediction(id=sample.id, text=f"{sample.prompt} A")


def _loader(cfg: EvalConfig) -> tuple[str, str]:
    return "model", "processor"


def _cfg(synth_dir: Path, out: Path, **kw: Any) -> EvalConfig:
    return EvalConfig(benchmark="synthetic", data_root=str(synth_dir), out=str(out), **kw)


def test_controls_run_beside_the_evaluation(
    synth_dir: Path, samples: list[Sample], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.delenv("UFVIDEO_JUDGE_BASE_URL", raising=False)
    reader = VideoReader(samples)
    out = tmp_path / "reader"
    result = run(_cfg(synth_dir, out, controls=["shuffled_video", "blind_prior"]), reader, _loader)
    metrics, controls = result["metrics"], result["controls"]
    assert metrics["mcqa_accuracy"] == 100.0 and metrics["rvos_jf"] == pytest.approx(100.0)
    shuffled = controls["shuffled_video"]
    assert shuffled["mcqa_accuracy"] < 60.0 and shuffled["rvos_jf"] < 80.0 and shuffled["tvg_miou"] < 80.0
    assert result["video_dependence"]["mcqa_accuracy"] == pytest.approx(100.0 - shuffled["mcqa_accuracy"])
    own_video = {s.id: video_key(s) for s in samples}
    shown = reader.seen[len(samples) :]  # the control's pass
    left_out = shuffle_visual(samples, 0)[1]
    assert len(shown) == len(samples) - len(left_out) and all(video != own_video[i] for i, video in shown)
    assert controls["blind_prior"]["qa_accuracy"] < 20.0  # the commonest training answer of a free-form question
    doc = json.loads((out / "metrics.json").read_text())
    assert doc["controls"] == controls and doc["control"] == "none"
    assert (out / "controls" / "shuffled_video" / "metrics.json").is_file()
    report = (out / "report.md").read_text()
    assert "## Controls" in report and "| mcqa_accuracy | 100.00 |" in report
    rows = {row[0]: row for row in summary_rows(doc)}
    assert rows["qa_accuracy"][1:4] == (100.0, controls["blind_prior"]["qa_accuracy"], shuffled["qa_accuracy"])

    from mlflow import MlflowClient

    client = MlflowClient()
    (mlrun,) = client.search_runs([e.experiment_id for e in client.search_experiments()], "")
    assert mlrun.data.metrics["synthetic.control.shuffled_video.mcqa_accuracy"] == shuffled["mcqa_accuracy"]
    assert "synthetic.video_dependence.mcqa_accuracy" in mlrun.data.metrics
    assert "synthetic.control.blind_prior.qa_accuracy" in mlrun.data.metrics


def test_a_blind_model_has_no_video_dependence(synth_dir: Path, tmp_path: Path) -> None:
    result = run(_cfg(synth_dir, tmp_path / "blind", controls=["shuffled_video"], track=False), Blind(), _loader)
    assert all(v == 0.0 for v in result["video_dependence"].values())


def test_control_settings_are_checked_and_key_the_resume(synth_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="eval.control must be one of"):
        EvalConfig(control="mirror")
    with pytest.raises(ValueError, match="unknown control"):
        EvalConfig(controls=["none"])
    out = tmp_path / "o"
    reader = VideoReader(list(get_benchmark("synthetic").samples(synth_dir)))
    real = run(_cfg(synth_dir, out, track=False, report=False), reader, _loader)
    shuffled = run(_cfg(synth_dir, out, track=False, report=False, control="shuffled_video"), reader, _loader)
    assert shuffled["predicted"] == shuffled["num_samples"] > 0  # nothing resumed from the real run's rows
    assert shuffled["metrics"]["mcqa_accuracy"] < real["metrics"]["mcqa_accuracy"]


def test_a_control_without_any_pair_is_reported_not_crashed(synth_dir: Path, tmp_path: Path) -> None:
    """Two samples of different tasks: the shuffled control has nobody to swap with (a smoke run's max_samples)."""
    cfg = _cfg(synth_dir, tmp_path / "two", controls=["shuffled_video", "blind_prior"], track=False, max_samples=2)
    result = run(cfg, Blind(), _loader)
    assert "shuffled_video" not in result["controls"] and "video_dependence" not in result
    assert "blind_prior" in result["controls"]
    assert any("shuffled_video: no sample" in note for note in result["notes"])
