"""The loss-curve export DVC plots read (`ufvideo pipeline history`)."""

from __future__ import annotations

import json
from pathlib import Path

from ufvideo.train.history import training_history, write_csv


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
    rows = training_history(str(tmp_path))
    assert [r["step"] for r in rows] == [5, 10] and rows[1]["bce_loss"] == 0.3
    out = tmp_path / "plots" / "curve.csv"
    write_csv(str(out), rows)
    lines = out.read_text().splitlines()
    assert lines[0] == "step,loss,ce_loss,learning_rate,bce_loss"
    assert lines[1] == "5,2.5,2.0,0.001," and lines[2].startswith("10,1.5,1.2,0.0005,0.3")
    assert training_history(str(tmp_path / "missing")) == []
    write_csv(str(out), [])
    assert out.read_text() == "step,loss\n"  # DVC still finds the declared columns
