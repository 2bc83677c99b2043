"""Training config: global-batch arithmetic, the shipped stage recipes, DeepSpeed presets, HF arguments."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ufvideo.config import ConfigError
from ufvideo.contract import load_step_config
from ufvideo.train import gradient_accumulation
from ufvideo.train.args import DEEPSPEED_PRESETS, TrainConfig, deepspeed_config, training_arguments


@pytest.mark.parametrize(
    ("global_batch", "per_device", "world", "expected"),
    [(512, 2, 32, 8), (384, 2, 24, 8), (384, 2, 8, 24), (512, 4, 1, 128), (8, 8, 1, 1)],
)
def test_accumulation_keeps_the_global_batch(global_batch: int, per_device: int, world: int, expected: int) -> None:
    steps = gradient_accumulation(global_batch, per_device, world)
    assert steps == expected
    assert steps * per_device * world == global_batch


@pytest.mark.parametrize(("global_batch", "per_device", "world"), [(384, 2, 7), (512, 3, 1), (8, 4, 4), (8, 2, 0)])
def test_indivisible_global_batch_is_an_error(global_batch: int, per_device: int, world: int) -> None:
    with pytest.raises(ConfigError, match="global_batch_size|world size"):
        gradient_accumulation(global_batch, per_device, world)


def test_training_arguments_follow_world_size(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    cfg = TrainConfig(out=str(tmp_path), global_batch_size=384, per_device_batch_size=2, use_cpu=True)
    assert training_arguments(cfg, world=24).gradient_accumulation_steps == 8
    assert training_arguments(cfg, world=8).gradient_accumulation_steps == 24
    monkeypatch.setenv("WORLD_SIZE", "7")
    with pytest.raises(ConfigError, match="not divisible"):
        training_arguments(cfg)


def test_7b_recipes_match_the_released_numbers() -> None:
    one, two = load_step_config("train_stage1", "ufvideo-7b"), load_step_config("train_stage2", "ufvideo-7b")
    assert (one.global_batch_size, two.global_batch_size) == (512, 384)
    for cfg in (one, two):
        assert cfg.learning_rate == 2e-5 and cfg.warmup_ratio == 0.03 and cfg.num_epochs == 2
        assert cfg.num_frames == 32 and cfg.num_sam_frames == 4 and cfg.max_length == 2048
        assert cfg.bf16 and cfg.tf32 and cfg.gradient_checkpointing and cfg.deepspeed == "zero2"
        assert cfg.lr_scheduler_type.startswith("cosine")
    assert (one.freeze_policy, two.freeze_policy) == ("align", "full")


def test_tiny_recipes_are_cpu_sized() -> None:
    one, two = load_step_config("train_stage1", "tiny"), load_step_config("train_stage2", "tiny")
    assert one.stage == 1 and two.stage == 2 and two.init
    for cfg in (one, two):
        assert not cfg.bf16 and cfg.deepspeed is None and cfg.use_cpu


def test_stage_mismatch_and_missing_init_are_errors() -> None:
    with pytest.raises(ConfigError, match="stage"):
        load_step_config("train_stage1", "tiny", overrides=["stage=2"])
    with pytest.raises(ConfigError, match="init"):
        TrainConfig(stage=2, init=None)
    with pytest.raises(ConfigError, match="unknown key"):
        load_step_config("train_stage1", "tiny", overrides=["learning_rat=1"])


@pytest.mark.parametrize("name", DEEPSPEED_PRESETS)
def test_deepspeed_presets_are_shipped(name: str) -> None:
    path = Path(deepspeed_config(name))
    data = json.loads(path.read_text())
    expected_stage = 3 if name == "zero3" else 2
    assert data["zero_optimization"]["stage"] == expected_stage
    assert data["train_batch_size"] == "auto" and data["gradient_accumulation_steps"] == "auto"
    assert ("offload_optimizer" in data["zero_optimization"]) == name.endswith("offload")


def test_unknown_deepspeed_config_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="deepspeed"):
        deepspeed_config(str(tmp_path / "missing.json"))
