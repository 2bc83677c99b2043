"""`ufvideo.eval.run` end to end with a fake `predict` (ground-truth-derived answers): metrics.json contract,
predictions JSONL, mask PNGs, report, MLflow logging, resuming, the judge over HTTP, and a server split's zip."""

from __future__ import annotations

import json
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.eval.benchmarks.helpers import MEVIS_H as H
from tests.eval.benchmarks.helpers import MEVIS_W as W
from tests.eval.benchmarks.helpers import mevis_fixture, oracle_prediction
from tests.eval.test_judge import FakeEndpoint, serving
from ufvideo.config import ConfigError
from ufvideo.data.synthetic import SynthConfig
from ufvideo.data.synthetic import generate as synth_run
from ufvideo.eval.run import EvalConfig, run
from ufvideo.eval.types import Prediction, Sample

CONTRACT_KEYS = {
    "benchmark",
    "checkpoint",
    "metrics",
    "aggregation",
    "compat",
    "num_samples",
    "published",
    "notes",
    "control",
    "headline",
}


@pytest.fixture(scope="module")
def synth_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("synth")
    synth_run(SynthConfig(out=str(out), videos=8, width=64, height=64, num_frames=16, fps=8))
    return out


@pytest.fixture
def checkpoint(tmp_path: Path) -> Path:
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    (ckpt / "model.safetensors").write_bytes(b"weights")
    return ckpt


class FakeInference:
    """Stands in for `ufvideo.eval.inference.predict`; records what it was asked and can fail midway."""

    def __init__(self, fail_after: int | None = None) -> None:
        self.seen: list[str] = []
        self.batch_sizes: list[int] = []
        self.kwargs: dict[str, Any] = {}
        self.fail_after = fail_after

    def __call__(
        self, model: Any, processor: Any, samples: list[Sample], batch_size: int, mask_mode: str | None = None
    ) -> Iterator[Prediction]:
        assert (model, processor) == ("model", "processor")
        self.kwargs = {"mask_mode": mask_mode}
        for start in range(0, len(samples), batch_size):
            batch = samples[start : start + batch_size]
            self.batch_sizes.append(len(batch))
            for sample in batch:
                if self.fail_after is not None and len(self.seen) == self.fail_after:
                    raise RuntimeError("simulated crash")
                self.seen.append(sample.id)
                yield oracle_prediction(sample)


def _loader(cfg: EvalConfig) -> tuple[str, str]:
    return "model", "processor"


def _cfg(synth: Path, ckpt: Path, out: Path, **kw: Any) -> EvalConfig:
    return EvalConfig(benchmark="synthetic", checkpoint=str(ckpt), data_root=str(synth), out=str(out), **kw)


def test_run_end_to_end(synth_dir: Path, checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.delenv("UFVIDEO_JUDGE_BASE_URL", raising=False)
    fake = FakeInference()
    out = tmp_path / "out"
    result = run(_cfg(synth_dir, checkpoint, out, batch_size=4, mask_mode="per_frame"), fake, _loader)
    doc = json.loads((out / "metrics.json").read_text())
    assert set(doc) == CONTRACT_KEYS
    assert doc["benchmark"] == "synthetic" and doc["num_samples"] == 22 and doc["aggregation"] == "per_expression"
    assert doc["checkpoint"]["uri"] == str(checkpoint) and len(doc["checkpoint"]["digest"]) == 64
    assert doc["metrics"]["qa_accuracy"] == 100.0 and doc["metrics"]["rvos_jf"] == pytest.approx(100.0)
    assert doc["metrics"]["tvg_miou"] == pytest.approx(100.0) and doc["metrics"]["caption_score_avg"] is None
    assert any("no judge configured" in n for n in doc["notes"])
    assert fake.batch_sizes == [4, 4, 4, 4, 4, 2] and fake.kwargs == {"mask_mode": "per_frame"}
    rows = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert [r["id"] for r in rows] == fake.seen and all("output" in r for r in rows)
    rvos = next(r for r in rows if r["task"] == "rvos")
    pngs = sorted((out / "masks" / rvos["id"] / "0").glob("*.png"))
    assert [p.name for p in pngs] == [f"{i:05d}.png" for i in range(16)]
    assert Path(result["files"]["report_html"]).is_file() and Path(result["files"]["report_md"]).is_file()
    assert result["predicted"] == 22

    from mlflow import MlflowClient

    (mlrun,) = MlflowClient().search_runs(
        [e.experiment_id for e in MlflowClient().search_experiments()], "attributes.run_name = 'evaluate'"
    )
    assert mlrun.data.metrics["synthetic.qa_accuracy"] == 100.0
    assert mlrun.data.metrics["eval_num_samples"] == 22
    assert mlrun.data.metrics["eval_samples_per_s"] > 0
    assert "synthetic.caption_score_avg" not in mlrun.data.metrics  # not computed: not logged as a number
    assert mlrun.data.params["benchmark"] == "synthetic"


def test_resume_after_a_crash(synth_dir: Path, checkpoint: Path, tmp_path: Path) -> None:
    cfg = _cfg(synth_dir, checkpoint, tmp_path / "out", track=False, report=False, batch_size=2)
    with pytest.raises(RuntimeError, match="simulated crash"):
        run(cfg, FakeInference(fail_after=5), _loader)
    with open(tmp_path / "out/predictions.jsonl", "a") as handle:
        handle.write('{"id": "synthetic/cut-by-the-cra')  # a row cut mid-write
    second = FakeInference()
    result = run(cfg, second, _loader)
    assert len(second.seen) == 17 and result["predicted"] == 17 and result["num_samples"] == 22
    assert result["metrics"]["mcqa_accuracy"] == 100.0
    lines = (tmp_path / "out/predictions.jsonl").read_text().splitlines()
    assert len(lines) == 22 and len({json.loads(x)["id"] for x in lines}) == 22
    third = FakeInference()
    run(cfg, third, lambda c: pytest.fail("nothing left to predict: the model must not load"))
    assert third.seen == []
    # A different parser mode is a different evaluation: nothing is reused.
    fourth = FakeInference()
    run(EvalConfig(**{**cfg.__dict__, "strict_parsing": True}), fourth, _loader)
    assert len(fourth.seen) == 22
    # Generation settings change predictions: rows made under others are never reused (they used to be).
    for change in ({"max_new_tokens": 7}, {"mask_mode": "propagate"}):
        again = FakeInference()
        run(EvalConfig(**{**cfg.__dict__, "strict_parsing": True, **change}), again, _loader)
        assert len(again.seen) == 22, change
    # Rows parsed by another version of the benchmark's parser module are predicted again, not rescored.
    progress = tmp_path / "out/progress.json"
    key = json.loads(progress.read_text())
    progress.write_text(json.dumps({**key, "parser": "0" * 16}))
    fifth = FakeInference()
    run(EvalConfig(**{**cfg.__dict__, "strict_parsing": True}), fifth, _loader)
    assert len(fifth.seen) == 22


def test_judge_over_http_with_cache(synth_dir: Path, checkpoint: Path, tmp_path: Path) -> None:
    endpoint = FakeEndpoint()
    endpoint.always_good = True
    with serving(endpoint) as url:
        cfg = _cfg(
            synth_dir,
            checkpoint,
            tmp_path / "out",
            track=False,
            report=False,
            judge_base_url=url,
            judge_model="judge-1",
        )
        result = run(cfg, FakeInference(), _loader)
        calls = endpoint.calls
        rows = [json.loads(line) for line in (tmp_path / "out/predictions.jsonl").read_text().splitlines()]
        judged = [r for r in rows if "reference" in r]
        assert len(judged) == 14  # caption, 2 referring, dvc, pixrqa, pixhqa, pixtrqa for each of 2 test videos
        assert calls == len({(r["reference"], r["pred_text"]) for r in judged})  # repeated pairs hit the cache
        assert result["metrics"]["caption_sc"] == 5.0 and result["metrics"]["pixtrqa_score_avg"] == 3.5
        assert result["metrics"]["referring_score_avg_no_td"] == pytest.approx(11 / 3)
        run(EvalConfig(**{**cfg.__dict__, "resume": False}), FakeInference(), _loader)
        assert endpoint.calls == calls  # every judgment came from the on-disk cache


def test_server_split_writes_the_submission_zip(checkpoint: Path, tmp_path: Path) -> None:
    data = mevis_fixture(tmp_path / "data", "valid")

    def predict(model: Any, processor: Any, samples: list[Sample], batch_size: int) -> Iterator[Prediction]:
        for s in samples:
            yield (
                Prediction(s.id, masks=[np.ones((len(s.sam_frames), H, W), bool)])
                if s.id.endswith("0")
                else (Prediction(s.id))
            )

    cfg = EvalConfig(
        benchmark="mevis_valid", checkpoint=str(checkpoint), data_root=str(data), out=str(tmp_path / "out"), track=False
    )
    result = run(cfg, predict, _loader)
    assert result["metrics"] == {"j": None, "f": None, "jf": None}
    assert result["published"] == {"jf": 55.1, "j": 52.3, "f": 57.8}
    with zipfile.ZipFile(result["files"]["submission"]) as archive:
        assert len(archive.namelist()) == 9 and "0ab4afe7fb46/2/00002.png" in archive.namelist()


def test_errors_name_the_problem(synth_dir: Path, checkpoint: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="eval.aggregation must be one of per_expression, frame_pooled"):
        EvalConfig(aggregation="pooled")
    with pytest.raises(ValueError, match="eval.compat must be one of ours, upstream, got 'paper'"):
        EvalConfig(compat="paper")
    with pytest.raises(ValueError, match="judge prompt version 'v0' not found"):  # before any inference
        run(
            _cfg(
                synth_dir,
                checkpoint,
                tmp_path / "j",
                track=False,
                judge_base_url="http://127.0.0.1:9/v1",
                judge_model="m",
                judge_prompt="v0",
            ),
            FakeInference(fail_after=0),
            _loader,
        )
    with pytest.raises(ConfigError, match="unknown benchmark 'nope'"):
        run(EvalConfig(benchmark="nope", out=str(tmp_path), track=False), FakeInference(), _loader)

    def drops_one(model: Any, processor: Any, samples: list[Sample], batch_size: int) -> Iterator[Prediction]:
        yield from (oracle_prediction(s) for s in samples[1:])

    with pytest.raises(RuntimeError, match="no prediction for 1 sample"):
        run(_cfg(synth_dir, checkpoint, tmp_path / "o", track=False, max_samples=3), drops_one, _loader)


def test_upstream_compat_reaches_inference_and_the_report(synth_dir: Path, checkpoint: Path, tmp_path: Path) -> None:
    seen: dict[str, Any] = {}

    def predict(model: Any, processor: Any, samples: list[Sample], batch_size: int, compat: str = "ours"):
        seen["compat"] = compat
        yield from (oracle_prediction(s) for s in samples)

    out = tmp_path / "out"
    run(_cfg(synth_dir, checkpoint, out, track=False, compat="upstream", aggregation="frame_pooled"), predict, _loader)
    doc = json.loads((out / "metrics.json").read_text())
    assert seen == {"compat": "upstream"} and doc["compat"] == "upstream" and doc["aggregation"] == "frame_pooled"
    assert "mode: upstream (the public inference code's [SEG] quirks)" in (out / "report.md").read_text()


def test_run_with_the_tiny_model(synth_dir: Path, tmp_path: Path) -> None:
    """The real path: a saved tiny checkpoint, the default loader and `ufvideo.eval.inference.predict`."""
    from ufvideo.data.synthetic import corpus_texts
    from ufvideo.model import ufvideo_tiny

    model, processor = ufvideo_tiny(seed=0, corpus=corpus_texts())
    model.save_pretrained(tmp_path / "ckpt", processor=processor)
    cfg = EvalConfig(
        benchmark="synthetic",
        checkpoint=str(tmp_path / "ckpt"),
        data_root=str(synth_dir),
        out=str(tmp_path / "out"),
        batch_size=4,
        max_new_tokens=16,
        max_samples=11,
        track=False,
        report=False,
    )
    result = run(cfg)  # the first test video: one sample of every task kind
    assert result["num_samples"] == result["predicted"] == 11
    for name in ("qa_accuracy", "mcqa_accuracy", "rvos_jf", "tvg_miou", "pixtrqa_jf"):
        assert 0.0 <= result["metrics"][name] <= 100.0, name
    assert result["metrics"]["caption_score_avg"] is None
    rvos = [json.loads(x) for x in (tmp_path / "out/predictions.jsonl").read_text().splitlines()]
    rvos = [r for r in rvos if r["task"] == "rvos"]
    assert all(r["objects"][0]["j"] is not None and len(r["objects"][0]["j"]) == 16 for r in rvos)


def test_torchrun_ranks_split_the_samples_and_rank0_merges(
    synth_dir: Path, checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = _cfg(synth_dir, checkpoint, tmp_path / "out", track=False, report=False, rank_timeout=5.0)
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    with pytest.raises(TimeoutError, match=r"done\.rank1\.json"):
        run(cfg, FakeInference(), _loader)  # rank 1 has not finished
    monkeypatch.setenv("RANK", "1")
    second = FakeInference()
    partial = run(cfg, second, _loader)
    assert partial == {
        "benchmark": "synthetic",
        "rank": 1,
        "predicted": 11,
        "inference_seconds": pytest.approx(partial["inference_seconds"]),
    }
    monkeypatch.setenv("RANK", "0")
    first = FakeInference()
    result = run(cfg, first, _loader)  # resumes its own finished slice, merges rank 1's rows
    assert first.seen == [] and result["num_samples"] == 22
    assert not set(first.seen) & set(second.seen)
    lines = (tmp_path / "out/predictions.jsonl").read_text().splitlines()
    assert len({json.loads(x)["id"] for x in lines}) == 22
    monkeypatch.setenv("WORLD_SIZE", "1")
    monkeypatch.setenv("RANK", "0")
    single = run(_cfg(synth_dir, checkpoint, tmp_path / "single", track=False, report=False), FakeInference(), _loader)
    assert single["metrics"] == result["metrics"]
