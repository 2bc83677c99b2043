"""`ufvideo demo` (what `make demo` runs): the repository's DVC pipeline reproduced in a work directory on the tiny
profile, then a metrics table and where to look; a second run reproduces nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from ufvideo import demo
from ufvideo.config import ConfigError

# The smallest run of every stage: 4 videos, 2 optimizer steps per stage, 2 evaluation samples.
TINY = [
    "synth.videos=4",
    "synth.test_every=2",
    *[f"train_stage{n}.{k}" for n in (1, 2) for k in ("max_steps=2", "dataloader_num_workers=0", "logging_steps=1")],
    "eval.max_samples=2",
]


def test_prepare_copies_the_pipeline_with_overrides(tmp_path: Path) -> None:
    assert demo.prepare(tmp_path / "w", ["synth.videos=3", "eval.batch_size=2"]) is True
    params = yaml.safe_load((tmp_path / "w" / "params.yaml").read_text())
    assert params["synth"]["videos"] == 3 and params["eval"]["batch_size"] == 2
    assert params["train_stage2"] == yaml.safe_load((demo.REPO_ROOT / "params.yaml").read_text())["train_stage2"]
    assert (tmp_path / "w" / "dvc.yaml").read_text() == (demo.REPO_ROOT / "dvc.yaml").read_text()
    assert (tmp_path / "w" / ".dvc").is_dir()
    own = tmp_path / "own"
    own.mkdir()
    (own / "dvc.yaml").write_text("stages: {}\n")
    assert demo.prepare(own) is False  # a project of its own is reproduced as it is
    with pytest.raises(ConfigError, match="dvc exp run -S"):
        demo.prepare(own, ["synth.videos=3"])


def test_metrics_table_counts_what_needs_a_judge() -> None:
    table = demo.metrics_table({"qa_accuracy": 50.0, "tvg_miou": 12.345, "caption_sc": None})
    lines = table.splitlines()
    assert lines[2].split() == ["qa_accuracy", "50.00"] and lines[3].split() == ["tvg_miou", "12.35"]
    assert "1 metrics not computed" in lines[-1]


def test_demo_reproduces_the_pipeline_once(
    tmp_path: Path, mlflow_isolated: None, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import mlflow

    # Two training steps cannot pass the tiny gate (thresholds above the blind prior); the mechanism is under test
    # here, so an operator's policy (the environment override) that only asks for evaluated metrics stands in.
    lenient = tmp_path / "lenient.yaml"
    lenient.write_text("description: mechanism only\ntolerance: 100.0\nmin_metrics: 1\nbenchmarks: {}\n")
    monkeypatch.setenv("UFVIDEO_PROMOTION_POLICY", str(lenient))
    workdir = tmp_path / "demo"
    demo.prepare(workdir, TINY)  # as run() would; then keep DVC's site cache out of the system temp directory
    demo._dvc(workdir, "config", "--local", "core.site_cache_dir", str(tmp_path / "dvc-site-cache"))
    result = demo.run(workdir, overrides=TINY)
    printed = capfd.readouterr().out
    assert result["model"] == "ufvideo-tiny" and result["promoted"] and result["champion"] == result["version"]
    assert result["tracking_uri"] == f"sqlite:///{workdir / 'mlflow.db'}"
    assert f"mlflow ui --backend-store-uri {result['tracking_uri']}" in printed
    assert str(workdir / "runs" / "eval" / "synthetic" / "report.html") in printed
    assert "metric" in printed and "registered model: ufvideo-tiny" in printed
    assert Path(result["report"]).is_file()
    assert json.loads((workdir / "runs" / "register.json").read_text())["version"] == result["version"]

    mlflow.set_tracking_uri(result["tracking_uri"])
    runs = mlflow.search_runs(search_all_experiments=True)
    steps = runs[runs["tags.mlflow.runName"].isin(["train_stage1", "train_stage2", "evaluate"])]
    assert len(steps) == 3 and set(steps["tags.mlflow.parentRunId"]) == {result["pipeline_run_id"]}

    again = demo.run(workdir, overrides=TINY)
    captured = capfd.readouterr()
    assert "Running stage" not in captured.out + captured.err and "up to date" in captured.out + captured.err
    assert again["version"] == result["version"]
