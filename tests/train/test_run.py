"""`run(cfg)` end to end on the tiny profile: resume after a kill equals an uninterrupted run, the contract checkpoint,
stage 2 loading the stage-1 mask decoder and [SEG] head, MLflow params/metrics, DeepSpeed ZeRO-2 on CPU."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file
from transformers import TrainerCallback

from ufvideo.checkpoint import CheckpointError, checkpoint_digest, publish, read_info
from ufvideo.data.synthetic import corpus_texts
from ufvideo.model import ufvideo_tiny
from ufvideo.train import run
from ufvideo.train.callbacks import COMPLETE_MARK
from ufvideo.train.run import build_model

from .conftest import tiny_config

REPO = Path(__file__).resolve().parents[2]


class Kill(TrainerCallback):
    """Simulates a pre-empted node: dies after step `at`, before that step could be checkpointed."""

    def __init__(self, at: int) -> None:
        self.at = at

    def on_step_end(self, args, state, control, **kwargs):  # noqa: ANN001, ANN201 - HF callback signature
        if state.global_step == self.at:
            raise KeyboardInterrupt(f"killed at step {self.at}")


@pytest.fixture(scope="module")
def mlflow_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One sqlite store for the module: creating (migrating) a fresh one costs seconds."""
    return f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"


@pytest.fixture
def sqlite_mlflow(mlflow_isolated: None, monkeypatch: pytest.MonkeyPatch, mlflow_db: str) -> str:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_db)
    return mlflow_db


@pytest.fixture(scope="module")
def straight(synth_dir: Path, tmp_path_factory: pytest.TempPathFactory, mlflow_db: str) -> dict:
    """An uninterrupted 4-step stage-1 run (module-scoped: several tests read its outputs)."""
    out = tmp_path_factory.mktemp("straight")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", mlflow_db)
        patch.delenv("MLFLOW_RUN_ID", raising=False)
        return run(tiny_config(1, synth_dir, out, f"output_uri={out / 'exported'}"))


def weights(uri: str) -> dict[str, torch.Tensor]:
    return load_file(str(Path(uri) / "model.safetensors"))


def test_resume_after_kill_matches_an_uninterrupted_run(
    straight: dict, synth_dir: Path, tmp_path: Path, sqlite_mlflow: str
) -> None:
    cfg = tiny_config(1, synth_dir, tmp_path / "killed")
    with pytest.raises(KeyboardInterrupt):
        run(cfg, callbacks=[Kill(at=3)])
    checkpoints = tmp_path / "killed" / "checkpoints"
    assert (checkpoints / "checkpoint-2" / COMPLETE_MARK).is_file()
    partial = checkpoints / "checkpoint-3"  # a save cut short: no completion mark
    partial.mkdir()
    (partial / "model.safetensors").write_bytes(b"truncated")

    resumed = run(cfg)
    assert resumed["resumed_from"] == str(checkpoints / "checkpoint-2")
    assert not partial.exists()
    assert resumed["metrics"]["global_step"] == 4
    expected, got = weights(straight["checkpoint"]["uri"]), weights(resumed["checkpoint"]["uri"])
    assert expected.keys() == got.keys()
    different = [k for k in expected if not torch.equal(expected[k], got[k])]
    assert not different, f"resumed run diverged in {different[:5]}"


def test_final_checkpoint_follows_the_contract(straight: dict, synth_dir: Path) -> None:
    uri = straight["checkpoint"]["uri"]
    assert uri.endswith("exported") and Path(uri, "config.json").is_file()
    assert Path(uri, "processor_config.json").is_file() and Path(uri, "tokenizer.json").is_file()
    info = read_info(uri)
    manifest = json.loads((synth_dir / "manifest.json").read_text())
    assert info["profile"] == "tiny" and info["stage"] == 1 and info["data_digest"] == manifest["digest"]
    assert info["git_commit"] and info["created"]
    assert straight["checkpoint"]["digest"] == checkpoint_digest(uri)
    assert straight["metrics"]["final_ce_loss"] > 0
    history = json.loads((Path(uri).parent / "trainer_state.json").read_text())["log_history"]
    assert [entry["step"] for entry in history if "ce_loss" in entry] == [1, 2, 3, 4]


def test_stage2_loads_the_stage1_mask_decoder_and_seg_head(straight: dict, synth_dir: Path, tmp_path: Path) -> None:
    stage1 = weights(straight["checkpoint"]["uri"])
    fresh, _ = ufvideo_tiny(seed=42, corpus=corpus_texts())
    fresh_state = fresh.state_dict()
    cfg = tiny_config(2, synth_dir, tmp_path, f"init={straight['checkpoint']['uri']}")
    model, processor = build_model(cfg)
    state = model.state_dict()
    heads = [k for k in stage1 if k.startswith(("seg_projector.", "sam.mask_decoder."))]
    assert heads and all(torch.equal(state[k], stage1[k]) for k in heads)
    trained = [k for k in heads if k.startswith("seg_projector.") and not torch.equal(stage1[k], fresh_state[k])]
    assert trained, "stage 1 should have trained the [SEG] head (else this test proves nothing)"
    assert processor.seg_token_id == model.config.seg_token_id

    broken = tmp_path / "no_decoder"
    broken.mkdir()
    for name in os.listdir(straight["checkpoint"]["uri"]):
        if name != "model.safetensors":
            (broken / name).write_bytes(Path(straight["checkpoint"]["uri"], name).read_bytes())
    save_file({k: v for k, v in stage1.items() if not k.startswith("sam.mask_decoder.")}, broken / "model.safetensors")
    with pytest.raises(CheckpointError, match=r"no sam\.mask_decoder\.\* weights"):
        build_model(tiny_config(2, synth_dir, tmp_path, f"init={broken}"))


def test_mlflow_gets_params_metrics_and_no_artifacts(straight: dict, sqlite_mlflow: str) -> None:
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=sqlite_mlflow)
    found = client.get_run(straight["run_id"])
    params, metrics, tags = found.data.params, found.data.metrics, found.data.tags
    assert params["train.learning_rate"] == "0.001" and params["derived.gradient_accumulation_steps"] == "1"
    assert params["derived.data_digest"] == straight["data_digest"] and "hf.lr_scheduler_type" in params
    assert tags["ufvideo.data_digest"] == straight["data_digest"] and tags["ufvideo.git_commit"]
    assert tags["ufvideo.checkpoint_digest"] == straight["checkpoint"]["digest"]
    for key in ("loss", "ce_loss", "tokens_per_s", "samples_per_s", "tflops_per_s", "mfu", "dataloader_wait_s"):
        assert key in metrics, key
    # the tiny profile's stage 1 warms its random vision path first and says how well it reads the cells now
    assert {"vision_warmup.colour_after", "vision_warmup.shape_after", "vision_warmup.steps"} <= set(metrics)
    history = client.get_metric_history(found.info.run_id, "ce_loss")
    assert [m.step for m in history] == [1, 2, 3, 4]
    assert not client.list_artifacts(found.info.run_id)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def one_rank_env(mlflow_db: str, cache: Path) -> dict[str, str]:
    """The environment torchrun gives rank 0 of a one-process job, tracking to `mlflow_db` and caching checkpoints
    in `cache`; a parent's MLFLOW_RUN_ID is dropped so the subprocess opens its own run."""
    env = {
        **os.environ,
        "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": str(_free_port()),
        "RANK": "0",
        "LOCAL_RANK": "0",
        "WORLD_SIZE": "1",
        "MLFLOW_TRACKING_URI": mlflow_db,
        "UFVIDEO_CHECKPOINT_CACHE": str(cache),
    }
    env.pop("MLFLOW_RUN_ID", None)
    return env


def test_stage2_with_deepspeed_zero2_on_cpu_from_s3_to_s3(
    straight: dict, synth_dir: Path, tmp_path: Path, mlflow_db: str, s3_bucket: str
) -> None:
    """Stage 2 through the torchrun entry (`python -m ufvideo.train`) as one rank: init and output on S3."""
    stage1 = f"{s3_bucket}/stage1"
    publish(straight["checkpoint"]["uri"], stage1)  # what `train --output-uri` does: files, then the mark
    env = one_rank_env(mlflow_db, tmp_path / "cache")
    args = ["--stage", "2", "--data", str(synth_dir), "--out", str(tmp_path / "ds"), "--init", stage1]
    args += ["--output-uri", f"{s3_bucket}/stage2", "deepspeed=zero2", "per_device_batch_size=2"]
    args += ["global_batch_size=4", "max_steps=2", "save_steps=2", "dataloader_num_workers=0"]
    proc = subprocess.run(
        [sys.executable, "-m", "ufvideo.train", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=240
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout[proc.stdout.index("{\n") :])
    assert result["metrics"]["global_step"] == 2 and result["checkpoint"]["uri"] == f"{s3_bucket}/stage2"
    checkpoint = tmp_path / "ds" / "checkpoints" / "checkpoint-2"
    assert (checkpoint / COMPLETE_MARK).is_file()
    assert any(p.name.startswith("global_step") for p in checkpoint.iterdir()), "no DeepSpeed engine state saved"
    assert result["checkpoint"]["digest"] == checkpoint_digest(tmp_path / "ds" / "final")
    info = read_info(result["checkpoint"]["uri"])
    assert info["stage"] == 2 and info["init"] == stage1 and info["freeze_policy"] == "full"
