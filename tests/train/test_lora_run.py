"""LoRA training end to end on the tiny profile: the adapter checkpoint (small, naming its base), resume after a
kill, `model merge` -> eval predicting exactly what the adapter checkpoint predicts, and stage 2 under DeepSpeed
ZeRO-2 with gradient checkpointing from an S3 base to S3, loaded back from S3."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from ufvideo.checkpoint import checkpoint_digest, publish, read_info
from ufvideo.data.synthetic import SynthConfig
from ufvideo.data.synthetic import generate as synth
from ufvideo.eval.run import EvalConfig
from ufvideo.eval.run import run as evaluate
from ufvideo.model.adapters import ADAPTER_CONFIG, ADAPTER_WEIGHTS
from ufvideo.model.loader import load_checkpoint
from ufvideo.model.merge import MergeConfig
from ufvideo.model.merge import run as merge
from ufvideo.train import run
from ufvideo.train.callbacks import COMPLETE_MARK

from .conftest import tiny_config
from .test_run import REPO, Kill, one_rank_env

LORA = ["freeze_policy=lora", "lora.rank=4", "lora.alpha=16.0", "lora.dropout=0.1"]


@pytest.fixture(scope="module")
def mlflow_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    return f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four videos, two of them in a test split (the evaluation below reads it)."""
    out = tmp_path_factory.mktemp("lora_data") / "synth"
    synth(SynthConfig(out=str(out), videos=4, test_every=2))
    return out


@pytest.fixture(scope="module")
def trained(data: Path, tmp_path_factory: pytest.TempPathFactory, mlflow_db: str) -> dict:
    """Stage 1 (align, 4 steps), then an uninterrupted LoRA stage 2 (4 steps) from it."""
    root = tmp_path_factory.mktemp("lora_runs")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", mlflow_db)
        patch.delenv("MLFLOW_RUN_ID", raising=False)
        stage1 = run(tiny_config(1, data, root / "s1"))
        init = f"init={stage1['checkpoint']['uri']}"
        stage2 = run(tiny_config(2, data, root / "s2", init, *LORA))
    return {"stage1": stage1, "stage2": stage2, "root": root}


def test_adapter_checkpoint_is_small_and_names_its_base(trained: dict) -> None:
    final = Path(trained["stage2"]["checkpoint"]["uri"])
    base = Path(trained["stage1"]["checkpoint"]["uri"])
    assert (final / ADAPTER_WEIGHTS).is_file() and not (final / "model.safetensors").exists()
    assert (final / "tokenizer.json").is_file() and (final / "processor_config.json").is_file()
    assert (final / ADAPTER_WEIGHTS).stat().st_size < 0.3 * (base / "model.safetensors").stat().st_size
    info = read_info(final)
    assert info["freeze_policy"] == "lora" and info["lora"]["rank"] == 4
    assert info["base_checkpoint"] == {"uri": str(base.resolve()), "digest": trained["stage1"]["checkpoint"]["digest"]}
    assert json.loads((final / ADAPTER_CONFIG).read_text())["base"] == info["base_checkpoint"]
    step = final.parent / "checkpoints" / "checkpoint-4"
    assert (step / ADAPTER_WEIGHTS).is_file() and not (step / "model.safetensors").exists()


def test_resume_after_kill_matches_an_uninterrupted_run(
    trained: dict, data: Path, tmp_path: Path, mlflow_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_db)
    monkeypatch.delenv("MLFLOW_RUN_ID", raising=False)
    cfg = tiny_config(2, data, tmp_path / "killed", f"init={trained['stage1']['checkpoint']['uri']}", *LORA)
    with pytest.raises(KeyboardInterrupt):
        run(cfg, callbacks=[Kill(at=3)])
    checkpoints = tmp_path / "killed" / "checkpoints"
    assert (checkpoints / "checkpoint-2" / COMPLETE_MARK).is_file()
    resumed = run(cfg)
    assert resumed["resumed_from"] == str(checkpoints / "checkpoint-2")
    expected = load_file(str(Path(trained["stage2"]["checkpoint"]["uri"]) / ADAPTER_WEIGHTS))
    got = load_file(str(Path(resumed["checkpoint"]["uri"]) / ADAPTER_WEIGHTS))
    assert expected.keys() == got.keys()
    different = [k for k in expected if not torch.equal(expected[k], got[k])]
    assert not different, f"resumed run diverged in {different[:5]}"


def test_merge_then_eval_predicts_what_the_adapter_checkpoint_predicts(trained: dict, data: Path, tmp_path: Path):
    adapter = trained["stage2"]["checkpoint"]["uri"]
    merged = merge(MergeConfig(adapter=adapter, out=str(tmp_path / "merged")))
    out = Path(merged["checkpoint"]["uri"])
    assert (out / "model.safetensors").is_file() and not (out / ADAPTER_CONFIG).exists()
    assert merged["checkpoint"]["digest"] == checkpoint_digest(out)
    info = read_info(out)
    assert info["merged_from"]["adapter"]["digest"] == trained["stage2"]["checkpoint"]["digest"]
    assert info["merged_from"]["base"]["digest"] == trained["stage1"]["checkpoint"]["digest"]
    assert info["stage"] == 2 and info["freeze_policy"] == "lora"
    # the merged checkpoint loads like any full checkpoint (no base needed), with the adapter's merged weights
    a, b = load_checkpoint(adapter)[0].state_dict(), load_checkpoint(out)[0].state_dict()
    assert [k for k in a if not torch.equal(a[k], b[k])] == []

    def predictions(checkpoint: str, name: str) -> list[dict]:
        cfg = EvalConfig(
            benchmark="synthetic",
            checkpoint=checkpoint,
            data_root=str(data),
            out=str(tmp_path / name),
            batch_size=4,
            max_new_tokens=16,
            max_samples=12,
            track=False,
            report=False,
        )
        result = evaluate(cfg)
        assert result["num_samples"] == 12
        rows = [json.loads(line) for line in (tmp_path / name / "predictions.jsonl").read_text().splitlines()]
        return [{k: v for k, v in row.items() if k not in ("checkpoint", "created")} for row in rows]

    from_adapter, from_merged = predictions(adapter, "eval-adapter"), predictions(str(out), "eval-merged")
    assert from_adapter == from_merged
    assert any(row.get("task") in ("rvos", "pixrqa") for row in from_adapter)


def test_zero2_with_gradient_checkpointing_from_an_s3_base_to_s3(
    trained: dict, data: Path, tmp_path: Path, mlflow_db: str, s3_bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """LoRA stage 2 through the torchrun entry as one rank: base and output in S3, loaded back from S3."""
    base = f"{s3_bucket}/stage1"
    publish(trained["stage1"]["checkpoint"]["uri"], base)
    env = one_rank_env(mlflow_db, tmp_path / "cache")
    args = ["--stage", "2", "--data", str(data), "--out", str(tmp_path / "ds"), "--init", base]
    args += ["--output-uri", f"{s3_bucket}/lora", "deepspeed=zero2", "gradient_checkpointing=true", *LORA]
    args += ["per_device_batch_size=2", "global_batch_size=2", "max_steps=2", "save_steps=2"]
    args += ["dataloader_num_workers=0"]
    proc = subprocess.run(
        [sys.executable, "-m", "ufvideo.train", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout[proc.stdout.index("{\n") :])
    assert any(p.name.startswith("global_step") for p in (tmp_path / "ds/checkpoints/checkpoint-2").iterdir())
    info = read_info(result["checkpoint"]["uri"])
    assert info["base_checkpoint"] == {"uri": base, "digest": trained["stage1"]["checkpoint"]["digest"]}
    monkeypatch.setenv("UFVIDEO_CHECKPOINT_CACHE", str(tmp_path / "cache"))
    model, _ = load_checkpoint(result["checkpoint"]["uri"], key=result["checkpoint"]["digest"])
    local, _ = load_checkpoint(tmp_path / "ds" / "final")
    a, b = model.state_dict(), local.state_dict()
    assert [k for k in a if not torch.equal(a[k], b[k])] == []
    stage1, _ = load_checkpoint(trained["stage1"]["checkpoint"]["uri"])
    moved = [k for k, v in stage1.state_dict().items() if k.startswith("language_model.") and not torch.equal(v, a[k])]
    assert moved, "the adapters changed no LLM weight"
