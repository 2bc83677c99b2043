"""The `lora` freeze policy: what trains (adapters, new parts, added token rows), what stays bit-identical after a
step (the base LLM, base-vocabulary rows, encoders), the parameter saving against `full`, and its config checks."""

from __future__ import annotations

import pytest
import torch

from ufvideo.config import ConfigError
from ufvideo.contract import load_step_config
from ufvideo.data.synthetic import corpus_texts
from ufvideo.model import ufvideo_tiny
from ufvideo.model.adapters import AdapterConfig, AdapterError, add_lora
from ufvideo.train.stages import apply_policy, parameter_counts

from . import test_stages
from .test_stages import ARGMAX_PICKED, LLM_ROWS, check_rows, one_step

built, batch = test_stages.built, test_stages.batch  # the same fixtures: a tiny model's batch of every branch

TINY_LORA = AdapterConfig(rank=4, alpha=16.0, dropout=0.0)


def load_config(stage: int, profile: str, overrides: list[str] = ()):  # noqa: ANN201 - a TrainConfig
    return load_step_config(f"train_stage{stage}", profile, overrides=list(overrides))


def llm_trained(model: torch.nn.Module, row_masked: dict[str, torch.Tensor]) -> int:
    """Values of the LLM that training changes: whole trainable tensors, only the rows of row-masked matrices."""
    total = 0
    for name, param in model.named_parameters():
        if name.startswith("language_model.") and param.requires_grad:
            total += len(row_masked[name]) * param.shape[1] if name in row_masked else param.numel()
    return total


def test_lora_step_moves_adapters_heads_and_new_rows_only(batch) -> None:
    model, _ = ufvideo_tiny(seed=0, corpus=corpus_texts())
    state = apply_policy(model, "lora", adapter=AdapterConfig(rank=4, alpha=16.0))
    lora = [name for name, _ in model.named_parameters() if ".lora_" in name]
    assert lora and all(".layers." in name and "_proj." in name for name in lora)
    one_step(model, batch)  # zero-initialised B: the first step gives A no gradient, so take two
    before = one_step(model, batch)
    for name, param in model.named_parameters():
        if name in LLM_ROWS:
            check_rows(model, name, param, before)
        elif param.requires_grad:
            assert name.startswith(("connector.", "region_encoder.", "seg_projector.", "sam.mask_decoder.")) or (
                ".lora_" in name
            ), f"{name}: trains under lora"
            if not name.startswith(ARGMAX_PICKED):
                assert not torch.equal(param, before[name]), f"{name}: trainable but unchanged"
        else:
            assert torch.equal(param, before[name]), f"{name}: frozen but changed"
    state.remove()


def test_lora_trains_five_times_fewer_llm_values_than_full() -> None:
    full, _ = ufvideo_tiny(seed=0, corpus=corpus_texts())
    full_state = apply_policy(full, "full")
    lora, _ = ufvideo_tiny(seed=0, corpus=corpus_texts())
    lora_state = apply_policy(lora, "lora", adapter=TINY_LORA)
    ratio = llm_trained(full, full_state.row_masked) / llm_trained(lora, lora_state.row_masked)
    assert ratio >= 5.0, ratio
    assert parameter_counts(lora)["params_trainable"] < parameter_counts(full)["params_trainable"]


def test_lora_targets_that_match_nothing_fail_by_name() -> None:
    model, _ = ufvideo_tiny(seed=0, corpus=corpus_texts())
    with pytest.raises(AdapterError, match=r"lora\.targets=\['qkv'\]"):
        add_lora(model, AdapterConfig(targets=["qkv"]))


def test_qlora_on_a_cpu_is_one_clear_error() -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU: tests/model/test_qlora.py covers nf4 there")
    model, _ = ufvideo_tiny(seed=0, corpus=corpus_texts())
    with pytest.raises(AdapterError, match=r"lora\.quantize=nf4 \(QLoRA\) needs a CUDA GPU"):
        add_lora(model, AdapterConfig(quantize="nf4"))


def test_lora_config_needs_a_base_and_zero2(tmp_path) -> None:
    with pytest.raises(ConfigError, match="freeze_policy=lora adapts a base checkpoint"):
        load_config(1, "tiny", overrides=["freeze_policy=lora"])
    with pytest.raises(ConfigError, match="not ZeRO-3"):
        load_config(2, "tiny", overrides=["freeze_policy=lora", "deepspeed=zero3"])
    with pytest.raises(ConfigError, match=r"lora\.rank: must be >= 1"):
        load_config(2, "tiny", overrides=["freeze_policy=lora", "lora.rank=0"])


def test_the_7b_lora_recipe_is_the_7b_recipe_with_a_lora_stage_2() -> None:
    full, lora = load_config(2, "ufvideo-7b"), load_config(2, "ufvideo-7b-lora")
    assert lora.freeze_policy == "lora" and lora.lora.rank == 128 and lora.lora.alpha == 256.0
    assert lora.learning_rate == 2e-4 and lora.lr_multipliers["sam"] == 0.1
    same = ("init", "global_batch_size", "num_frames", "deepspeed", "gradient_checkpointing", "bf16", "num_epochs")
    assert all(getattr(full, key) == getattr(lora, key) for key in same)
    assert load_config(1, "ufvideo-7b-lora") == load_config(1, "ufvideo-7b")
