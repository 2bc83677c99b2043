"""The whole pipeline under `kfp.local` (SubprocessRunner, no containers) on the tiny profile: every step runs as
on the cluster, minus the Kubernetes settings, and the model ends registered and promoted."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipelines.local import run_local
from tests.pipeline_env import pipeline_env


def test_run_local_trains_evaluates_and_registers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import mlflow

    pipeline_env(monkeypatch, tmp_path, "kfp-local-test")
    result = run_local(tmp_path / "work", synth_videos=4, max_samples=2)

    run_dir = Path(result["run_dir"])
    registered = result["register"]
    assert registered["name"] == "kfp-local-test" and registered["version"] == "1"
    assert registered["promotion"]["passed"] and registered["promotion"]["champion_after"] == "1"
    stage1 = json.loads((run_dir / "train_stage1" / "final" / "ufvideo.json").read_text())
    stage2 = json.loads((run_dir / "train_stage2" / "final" / "ufvideo.json").read_text())
    assert stage2["init"] == str(run_dir / "train_stage1" / "final")  # stage 2 continued stage 1
    assert stage1["data_digest"] == stage2["data_digest"]
    assert registered["checkpoint"]["uri"] == str(run_dir / "train_stage2" / "final")
    metrics = json.loads((run_dir / "eval" / "synthetic" / "metrics.json").read_text())
    assert metrics["num_samples"] == 2 and metrics["checkpoint"]["digest"] == registered["checkpoint"]["digest"]

    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")  # the steps ran in subprocesses
    runs = mlflow.search_runs(search_all_experiments=True)
    names = set(runs["tags.mlflow.runName"])
    assert {"ufvideo-pipeline", "curate", "train_stage1", "train_stage2", "evaluate"} <= names
    parent = runs[runs["tags.mlflow.runName"] == "ufvideo-pipeline"].run_id.tolist()
    assert len(parent) == 1
    steps = runs[runs["tags.mlflow.runName"].isin(["curate", "train_stage1", "train_stage2", "evaluate"])]
    assert set(steps["tags.mlflow.parentRunId"]) == set(parent)
