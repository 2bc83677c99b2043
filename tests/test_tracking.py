"""ufvideo.tracking against a real `mlflow server` on loopback, read back through MlflowClient."""

from __future__ import annotations

import dataclasses
import os
import uuid
from pathlib import Path

import pytest

from ufvideo import tracking

# Loaded as a plugin, not imported: registered once even when conftest.py names it too, so each server starts once.


@dataclasses.dataclass
class _Optim:
    lr: float = 1e-4
    betas: tuple[float, float] = (0.9, 0.95)


def _client(uri: str):
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=uri)


def _experiment() -> str:
    return f"test-{uuid.uuid4().hex[:10]}"


def test_flatten_params() -> None:
    flat = tracking.flatten_params(
        {"profile": "tiny", "train": {"optim": _Optim(), "epochs": 2, "freeze": ["vision"]}, "extra": {}}
    )
    assert flat == {
        "profile": "tiny",
        "train.optim.lr": "0.0001",
        "train.optim.betas": "[0.9, 0.95]",
        "train.epochs": "2",
        "train.freeze": '["vision"]',
        "extra": "{}",
    }
    with pytest.raises(TypeError, match="expected a mapping"):
        tracking.flatten_params([1, 2])


def test_tracking_uri_and_git_commit(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)
    assert tracking.tracking_uri() == f"sqlite:///{tmp_path / 'mlflow.db'}"  # absolute: mlflow caches stores per URI
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://tracking:5000")
    assert tracking.tracking_uri() == "http://tracking:5000"

    monkeypatch.setenv("UFVIDEO_GIT_COMMIT", "abc123")
    assert tracking.git_commit() == "abc123"
    monkeypatch.delenv("UFVIDEO_GIT_COMMIT")
    monkeypatch.setenv("PATH", "/nonexistent")  # no git binary: the image case without a baked-in commit
    assert tracking.git_commit() == "unknown"


def test_step_run_logs_params_metrics_tags(mlflow_tracking: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UFVIDEO_GIT_COMMIT", "deadbeef")
    experiment = _experiment()
    params = {"train": {"lr": 2e-5, "stage": 1}, "prompt": "p" * 7000, **{f"k{i}": i for i in range(120)}}
    with tracking.start_run("train", experiment=experiment, params=params, tags={"owner": "ci"}, data_digest="d1"):
        tracking.log_metrics({"loss": 2.5, "eval": {"acc": 0.5}, "empty": float("nan")}, step=3)
        tracking.log_metrics({"loss": 1.5}, step=4)
        assert tracking.log_throughput("train_samples", 64, 2.0) == 32.0
        run_id = os.environ["MLFLOW_RUN_ID"]  # the step run, for child processes

    assert "MLFLOW_RUN_ID" not in os.environ  # restored to unset
    client = _client(mlflow_tracking)
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED" and run.info.run_name == "train"
    assert client.get_experiment(run.info.experiment_id).name == experiment
    assert run.data.params["train.lr"] == "2e-05" and run.data.params["train.stage"] == "1"
    assert run.data.params["k119"] == "119"  # more than one 100-param batch reached the server
    assert len(run.data.params["prompt"]) == tracking.MAX_PARAM_LENGTH
    assert run.data.params["prompt"].endswith("...[truncated]")
    assert run.data.tags[tracking.TRUNCATED_TAG] == "prompt"
    assert run.data.tags["ufvideo.step"] == "train"
    assert run.data.tags["ufvideo.git_commit"] == "deadbeef"
    assert run.data.tags["ufvideo.data_digest"] == "d1"
    assert run.data.tags["owner"] == "ci"
    assert "mlflow.parentRunId" not in run.data.tags
    assert run.data.metrics == {"loss": 1.5, "eval.acc": 0.5, "train_samples_per_s": 32.0}
    assert [(m.step, m.value) for m in client.get_metric_history(run_id, "loss")] == [(3, 2.5), (4, 1.5)]


def test_steps_nest_under_mlflow_run_id(mlflow_tracking: str, monkeypatch: pytest.MonkeyPatch) -> None:
    experiment = _experiment()
    parent = tracking.create_pipeline_run("pipeline", experiment=experiment)
    monkeypatch.setenv("MLFLOW_RUN_ID", parent)

    children = []
    for step in ("curate", "train"):  # the second step proves the first did not consume MLFLOW_RUN_ID
        with tracking.start_run(step, experiment="ignored-for-nested", params={"step": step}) as run:
            children.append(run.info.run_id)
            with tracking.start_run(f"{step}-eval") as inner:  # an in-process run nests under the active one
                grandchild = inner.info.run_id
        assert os.environ["MLFLOW_RUN_ID"] == parent
    tracking.end_pipeline_run(parent)

    client = _client(mlflow_tracking)
    parent_run = client.get_run(parent)
    assert parent_run.info.status == "FINISHED"
    for child_id, step in zip(children, ("curate", "train")):
        child = client.get_run(child_id)
        assert child.data.tags["mlflow.parentRunId"] == parent
        assert child.info.experiment_id == parent_run.info.experiment_id
        assert child.data.params == {"step": step}  # a fresh run each step, never the parent resumed
    assert client.get_run(grandchild).data.tags["mlflow.parentRunId"] == children[-1]
    assert parent_run.data.params == {}


def test_pipeline_run_and_failed_step(mlflow_tracking: str) -> None:
    with pytest.raises(RuntimeError, match="boom"), tracking.pipeline_run("p", experiment=_experiment()) as parent:
        with tracking.start_run("ok") as ok:
            tracking.log_metrics({"m": 1})
        with tracking.start_run("bad") as bad:
            raise RuntimeError("boom")
    assert "MLFLOW_RUN_ID" not in os.environ

    client = _client(mlflow_tracking)
    assert client.get_run(parent).info.status == "FAILED"
    assert client.get_run(ok.info.run_id).info.status == "FINISHED"
    assert client.get_run(bad.info.run_id).info.status == "FAILED"
    assert client.get_run(bad.info.run_id).data.tags["mlflow.parentRunId"] == parent


def test_missing_parent_and_bad_metrics(mlflow_tracking: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(RuntimeError, match="no active MLflow run"):
        tracking.log_metrics({"loss": 1.0})
    monkeypatch.setenv("MLFLOW_RUN_ID", "0" * 32)
    with pytest.raises(RuntimeError, match="parent run '0+' .*not found"), tracking.start_run("x"):
        pass
    monkeypatch.delenv("MLFLOW_RUN_ID")
    with tracking.start_run("x", experiment=_experiment()), pytest.raises(ValueError, match="metric 'eval.acc'"):
        tracking.log_metrics({"eval": {"acc": "high"}})


def test_default_uri_is_sqlite_in_working_dir(
    tmp_path: Path,
    mlflow_isolated: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    with tracking.start_run("evaluate") as run:
        tracking.log_metrics({"score": 0.75})
    assert (tmp_path / "mlflow.db").is_file()
    stored = _client(f"sqlite:///{tmp_path / 'mlflow.db'}").get_run(run.info.run_id)
    assert stored.data.metrics == {"score": 0.75}
    assert _client(f"sqlite:///{tmp_path / 'mlflow.db'}").get_experiment(stored.info.experiment_id).name == "ufvideo"


def test_pipeline_parent_is_shared_by_the_steps_of_one_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import mlflow

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.delenv("MLFLOW_RUN_ID", raising=False)
    with tracking.pipeline_parent("run-a") as first:
        assert os.environ["MLFLOW_RUN_ID"] == first
    assert "MLFLOW_RUN_ID" not in os.environ
    with tracking.pipeline_parent("run-a") as again:
        pass
    with tracking.pipeline_parent("run-b") as other:
        pass
    assert again == first and other != first
    assert mlflow.get_run(first).data.tags[tracking.KFP_RUN_TAG] == "run-a"
    monkeypatch.setenv("MLFLOW_RUN_ID", "platform-run")
    with tracking.pipeline_parent("run-c") as given:
        assert given == "platform-run"  # the platform's run wins; nothing is created
