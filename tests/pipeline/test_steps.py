"""The step functions behind the components: override routing, workspace layout, the MLflow pipeline parent they
share, and the loss-curve export DVC plots read."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from ufvideo.pipeline import steps


def test_section_overrides_route_each_key_to_its_step() -> None:
    overrides = ["train_stage1.max_steps=2", "train_stage2.max_steps=3", "eval.max_samples=1", "synth.videos=4"]
    assert steps.section_overrides(overrides, "train_stage1") == ["train_stage1.max_steps=2"]
    assert steps.section_overrides(overrides, "train_stage") == []  # a prefix of a section name is not a match
    assert steps.run_dir("/ws", "abc") == "/ws/runs/abc" and steps.run_dir("/ws", "") == "/ws/runs/local"


def write_state(directory: Path, step: int, history: list[dict]) -> None:
    directory.mkdir(parents=True)
    (directory / "trainer_state.json").write_text(json.dumps({"global_step": step, "log_history": history}))


def test_training_history_reads_the_newest_checkpoint(tmp_path: Path) -> None:
    ckpts = tmp_path / "checkpoints"
    write_state(ckpts / "checkpoint-9", 9, [{"step": 9, "loss": 9.0}])
    history = [
        {"step": 5, "loss": 2.5, "ce_loss": 2.0, "learning_rate": 1e-3},
        {"step": 10, "loss": 1.5, "ce_loss": 1.2, "bce_loss": 0.3, "learning_rate": 5e-4},
        {"step": 10, "train_runtime": 3.0, "train_loss": 2.0},  # the end-of-training summary: no per-step loss
    ]
    write_state(ckpts / "checkpoint-10", 10, history)  # 10 > 9 numerically, though "10" < "9" as text
    rows = steps.training_history(str(tmp_path))
    assert [r["step"] for r in rows] == [5, 10] and rows[1]["bce_loss"] == 0.3
    out = tmp_path / "plots" / "curve.csv"
    steps.write_csv(str(out), rows)
    lines = out.read_text().splitlines()
    assert lines[0] == "step,loss,ce_loss,learning_rate,bce_loss"
    assert lines[1] == "5,2.5,2.0,0.001," and lines[2].startswith("10,1.5,1.2,0.0005,0.3")
    assert steps.training_history(str(tmp_path / "missing")) == []
    steps.write_csv(str(out), [])
    assert out.read_text() == "step,loss\n"  # DVC still finds the declared columns


def test_pipeline_parent_is_shared_by_the_steps_of_one_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import mlflow

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.delenv("MLFLOW_RUN_ID", raising=False)
    with steps.pipeline_parent("run-a") as first:
        assert os.environ["MLFLOW_RUN_ID"] == first
    assert "MLFLOW_RUN_ID" not in os.environ
    with steps.pipeline_parent("run-a") as again:
        pass
    with steps.pipeline_parent("run-b") as other:
        pass
    assert again == first and other != first
    assert mlflow.get_run(first).data.tags[steps.KFP_RUN_TAG] == "run-a"
    monkeypatch.setenv("MLFLOW_RUN_ID", "platform-run")
    with steps.pipeline_parent("run-c") as given:
        assert given == "platform-run"  # the platform's run wins; nothing is created


def test_pointer_and_tables_stay_small(tmp_path: Path) -> None:
    steps.write_pointer(str(tmp_path / "a" / "dataset"), {"uri": "/ws/x", "digest": "d"})
    assert json.loads((tmp_path / "a" / "dataset").read_text()) == {"digest": "d", "uri": "/ws/x"}
    table = steps.markdown_table("Model", {"version": "3", "promoted": True})
    assert table.splitlines()[0] == "# Model" and "| promoted | True |" in table
    assert steps.read_report("") == "" and steps.read_report(str(tmp_path / "none.md")) == ""
