"""Preemption and restarts: a killed parent takes `ufvideo train` down with a complete checkpoint and the MLflow
run KILLED, and the next run resumes from it; the completion mark precedes checkpoint rotation; checkpoints of
another recipe are never resumed; bad output locations fail before the model is built."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from transformers import TrainerCallback

from ufvideo import cli
from ufvideo.data.dataset import CuratedDataset
from ufvideo.files import write_json
from ufvideo.train import run
from ufvideo.train.args import checkpoints_dir
from ufvideo.train.callbacks import COMPLETE_MARK, latest_complete_checkpoint
from ufvideo.train.resume import RUN_KEY_FILE, resume_point, run_key
from ufvideo.train.run import _load_settings, build_model, make_trainer

from .conftest import FAST, tiny_config

BIN = Path(sys.executable).parent
# A supervisor (dvc, a launcher) that starts `ufvideo train` and is then killed with SIGKILL.
PARENT = """
import subprocess, sys, time
with open(sys.argv[1], "w") as log:
    child = subprocess.Popen(sys.argv[2:], stdout=log, stderr=subprocess.STDOUT)
open(sys.argv[1] + ".pid", "w").write(str(child.pid))
time.sleep(3600)
"""


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(") ")[-1][0]
    except FileNotFoundError:
        return False
    return state != "Z"


def _wait_for(predicate, timeout: float, what: str) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.2)


def test_a_killed_parent_leaves_a_complete_checkpoint_a_killed_run_and_a_resumable_out(
    synth_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out, db = tmp_path / "out", f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", db)
    monkeypatch.delenv("MLFLOW_RUN_ID", raising=False)
    overrides = [*FAST, "max_steps=8", "save_steps=2"]
    command = [str(BIN / "ufvideo"), "train", "--stage", "1", "--data", str(synth_dir), "--out", str(out), *overrides]
    env = {**os.environ, "DVC_ROOT": str(tmp_path)}  # what dvc sets for a stage command
    log = tmp_path / "train.log"
    parent = subprocess.Popen([sys.executable, "-c", PARENT, str(log), *command], env=env)
    try:
        pid_file = Path(f"{log}.pid")
        _wait_for(pid_file.is_file, 60, "the parent to start ufvideo train")
        pid = int(pid_file.read_text())
        first = checkpoints_dir(tiny_config(1, synth_dir, out)) / "checkpoint-2" / COMPLETE_MARK
        _wait_for(lambda: first.is_file() or not _alive(pid), 300, "the first scheduled checkpoint")
        assert _alive(pid), f"ufvideo train exited early:\n{log.read_text()[-3000:]}"
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait(timeout=30)
        _wait_for(lambda: not _alive(pid), 120, "ufvideo train to exit after its parent was killed")
    finally:
        if parent.poll() is None:
            parent.kill()
    text = log.read_text()
    assert "preempted: saved" in text, text[-3000:]
    stopped = int(text.split("preempted: saved ")[1].split("checkpoint-")[1].split(";")[0])
    assert 2 < stopped < 8 and not (out / "final").exists()
    assert latest_complete_checkpoint(out / "checkpoints") == str(out / "checkpoints" / f"checkpoint-{stopped}")

    import mlflow

    runs = mlflow.MlflowClient(tracking_uri=db).search_runs(
        [mlflow.MlflowClient(tracking_uri=db).get_experiment_by_name("ufvideo").experiment_id]
    )
    assert [r.info.status for r in runs] == ["KILLED"]

    resumed = run(tiny_config(1, synth_dir, out, "max_steps=8", "save_steps=2"))
    assert resumed["resumed_from"] == str(out / "checkpoints" / f"checkpoint-{stopped}")
    assert resumed["metrics"]["global_step"] == 8


class KillOnSave(TrainerCallback):
    """Dies in the first `on_save` of step `at`, i.e. after HF's save (and, before the fix, its rotation)."""

    def __init__(self, at: int) -> None:
        self.at = at

    def on_save(self, args, state, control, **kwargs):  # noqa: ANN001, ANN201 - HF callback signature
        if state.global_step == self.at:
            raise KeyboardInterrupt(f"killed after saving step {self.at}")


def test_the_newest_checkpoint_is_complete_before_rotation_removes_the_older_one(synth_dir: Path, tmp_path: Path):
    cfg = tiny_config(1, synth_dir, tmp_path, "save_total_limit=1")
    model, processor = build_model(cfg)
    dataset = CuratedDataset(cfg.data, cfg.split, _load_settings(cfg, model), seed=cfg.seed)
    trainer = make_trainer(cfg, model, processor, dataset)
    trainer.callback_handler.callbacks.insert(0, KillOnSave(at=4))  # before CompleteMarker.on_save could run
    with pytest.raises(KeyboardInterrupt):
        trainer.train()
    directory = checkpoints_dir(cfg)
    assert sorted(p.name for p in directory.glob("checkpoint-*")) == ["checkpoint-4"]  # rotation did run
    assert latest_complete_checkpoint(directory) == str(directory / "checkpoint-4")  # and restart is not step 0


def test_checkpoints_of_another_recipe_are_dropped_not_resumed(synth_dir: Path, tmp_path: Path) -> None:
    cfg = tiny_config(1, synth_dir, tmp_path)
    directory = checkpoints_dir(cfg)
    (directory / "checkpoint-2").mkdir(parents=True)
    (directory / "checkpoint-2" / COMPLETE_MARK).write_text("2\n")
    write_json(directory / RUN_KEY_FILE, run_key(cfg, "digest-a"))
    same = tiny_config(1, synth_dir, tmp_path, "dataloader_num_workers=1", "output_uri=/elsewhere")
    assert resume_point(same, "digest-a", clean=True) == str(directory / "checkpoint-2")
    assert resume_point(tiny_config(1, synth_dir, tmp_path, "learning_rate=0.5"), "digest-a", clean=True) is None
    assert not (directory / "checkpoint-2").exists()
    assert json.loads((directory / RUN_KEY_FILE).read_text())["config"]["learning_rate"] == 0.5


def test_a_missing_output_bucket_fails_in_one_line_before_the_model_is_built(
    synth_dir: Path, tmp_path: Path, s3_bucket: str, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    args = ["train", "--stage", "1", "--data", str(synth_dir), "--out", str(out), *FAST]
    started = time.monotonic()
    assert cli.main([*args, "--output-uri", "s3://no-such-bucket-ufvideo/ckpt"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "ufvideo: error: s3://no-such-bucket-ufvideo/ckpt: bucket 'no-such-bucket-ufvideo' does not exist"
    assert not out.exists() and time.monotonic() - started < 30  # nothing trained, nothing built
