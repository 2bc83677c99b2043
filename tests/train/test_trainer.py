"""Trainer parts without training: batch order, the training collator, throughput/MFU arithmetic, resume discovery."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from ufvideo.data.dataset import CuratedDataset, LoadSettings
from ufvideo.data.synthetic import corpus_texts
from ufvideo.model import ufvideo_tiny
from ufvideo.train.callbacks import COMPLETE_MARK, ThroughputMeter, latest_complete_checkpoint, llm_flops_per_token
from ufvideo.train.stages import apply_policy
from ufvideo.train.trainer import MEGABATCH_MULT, GroupedSampler, TrainCollator


class EpochRecorder:
    epoch = -1

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch


def test_grouped_sampler_is_a_deterministic_length_grouped_permutation() -> None:
    lengths = [(i * 37) % 101 for i in range(100)]
    dataset = EpochRecorder()
    sampler = GroupedSampler(lengths, group_size=4, seed=3, dataset=dataset)
    first = list(sampler)
    assert sorted(first) == list(range(100)) and list(sampler) == first
    size = 4 * MEGABATCH_MULT
    for start in range(0, 100, size):
        chunk = [lengths[i] for i in first[start : start + size]]
        assert chunk == sorted(chunk, reverse=True)
    sampler.set_epoch(1)
    assert dataset.epoch == 1 and list(sampler) != first
    assert list(GroupedSampler(lengths, 4, seed=3)) == first
    assert list(GroupedSampler(lengths, 4, seed=3, group_by_length=False)) != first


@pytest.fixture(scope="module")
def collate_inputs(synth_dir: Path):
    model, processor = ufvideo_tiny(seed=0, corpus=corpus_texts())
    cfg = model.config
    dataset = CuratedDataset(synth_dir, "train", LoadSettings(cfg.num_frames, 4, cfg.num_video_tokens()))
    examples = [dataset[dataset.tasks.index(task)] for task in ("qa", "rvos", "referring", "pixtrqa")]
    return processor, examples


def test_collator_keeps_targets_aligned_with_the_batch(collate_inputs) -> None:
    processor, examples = collate_inputs
    batch = TrainCollator(processor, max_length=2048)(examples)
    assert len(batch["target_masks"]) == len(examples) == len(batch["target_valid"])
    segs = (batch["input_ids"] == processor.seg_token_id).sum(1).tolist()
    assert [t.shape[0] for t in batch["target_masks"]] == segs
    assert segs[0] == 0 and segs[1] >= 1


def test_collator_cuts_text_but_never_placeholders(collate_inputs) -> None:
    processor, examples = collate_inputs
    full = TrainCollator(processor, max_length=2048)(examples[1:2])
    ids = full["input_ids"][0]
    placeholders = torch.isin(ids, torch.tensor([processor.settings.video_token_id, processor.region_token_id]))
    last = int(placeholders.nonzero().max())
    before = int((~placeholders[:last]).sum())
    cut = TrainCollator(processor, max_length=before + 3)(examples[1:2])
    kept = cut["input_ids"][0][cut["attention_mask"][0].bool()]
    assert int((~torch.isin(kept, torch.tensor([processor.settings.video_token_id]))).sum()) == before + 3
    assert (cut["labels"][0] != -100).sum() < (full["labels"][0] != -100).sum()
    assert cut["target_masks"][0].shape[0] == int((kept == processor.seg_token_id).sum())
    with pytest.raises(ValueError, match="max_length"):
        TrainCollator(processor, max_length=max(1, before - 2))(examples[1:2])


def test_throughput_meter_rates_losses_and_mfu() -> None:
    meter = ThroughputMeter(flops_per_token=1e9, peak_tflops=2.0)
    meter.add_batch(tokens=1000, samples=4, ce=2.0, bce=0.5, dice=0.2, masks=2)
    meter.add_batch(tokens=3000, samples=4, ce=4.0, bce=1.0, dice=0.8, masks=6)
    meter.add_batch(tokens=0, samples=0, ce=1.0, bce=0.0, dice=0.0, masks=0)
    meter.add_wait(0.25)
    meter.since -= 2.0  # pretend two seconds passed
    out = meter.collect(lambda values: values, step=1)
    assert out["tokens_per_s"] == pytest.approx(2000, rel=0.01)
    assert out["samples_per_s"] == pytest.approx(4, rel=0.01)
    assert out["tflops_per_s"] == pytest.approx(2.0, rel=0.01) and out["mfu"] == pytest.approx(1.0, rel=0.01)
    assert out["ce_loss"] == pytest.approx(7 / 3)
    assert out["bce_loss"] == pytest.approx((0.5 * 2 + 1.0 * 6) / 8) and out["dice_loss"] == pytest.approx(0.65)
    assert out["dataloader_wait_s"] == 0.25 and out["num_masks"] == 8
    assert "ce_loss" not in meter.collect(lambda values: values, step=2)


def test_flops_count_6n_when_the_llm_trains_and_4n_when_frozen() -> None:
    model, _ = ufvideo_tiny(seed=0)
    lm = model.language_model
    n = sum(p.numel() for p in lm.parameters()) - lm.get_input_embeddings().weight.numel()
    apply_policy(model, "full")
    assert llm_flops_per_token(model) == 6 * n
    state = apply_policy(model, "align")
    assert llm_flops_per_token(model, set(state.row_masked)) == 4 * n
    state.remove()


def test_resume_picks_the_newest_complete_checkpoint(tmp_path: Path) -> None:
    assert latest_complete_checkpoint(tmp_path / "missing") is None
    for step, complete in ((2, True), (10, True), (12, False), (9, False)):
        path = tmp_path / f"checkpoint-{step}"
        path.mkdir()
        if complete:
            (path / COMPLETE_MARK).write_text(str(step))
    (tmp_path / "checkpoint-latest").mkdir()
    assert latest_complete_checkpoint(tmp_path) == str(tmp_path / "checkpoint-10")
    assert (tmp_path / "checkpoint-12").exists()
    assert latest_complete_checkpoint(tmp_path, clean=True) == str(tmp_path / "checkpoint-10")
    assert not (tmp_path / "checkpoint-12").exists() and (tmp_path / "checkpoint-9").exists()
    assert (tmp_path / "checkpoint-2").exists()


def test_lr_multipliers_pick_the_longest_module_prefix() -> None:
    from ufvideo.train.trainer import lr_multiplier

    rules = {"connector": 0.1, "connector.readout": 0.5, "vision": 9.0}
    assert lr_multiplier("connector.s1.b1.conv1.conv.weight", rules) == 0.1
    assert lr_multiplier("connector.readout.0.weight", rules) == 0.5
    assert lr_multiplier("vision_tower.encoder.weight", rules) == 1.0  # whole components only
    assert lr_multiplier("language_model.lm_head.weight", {}) == 1.0


def test_optimizer_groups_carry_the_multiplied_rates(synth_dir: Path, tmp_path: Path) -> None:
    from tests.train.conftest import tiny_config
    from ufvideo.train.run import _load_settings, build_model, make_trainer
    from ufvideo.train.trainer import lr_multiplier

    cfg = tiny_config(1, synth_dir, tmp_path)
    cfg.lr_multipliers = {"connector": 0.1, "vision_tower": 0.25}
    cfg.train_vision_tower = True
    model, processor = build_model(cfg)
    dataset = CuratedDataset(synth_dir, "train", _load_settings(cfg, model))
    trainer = make_trainer(cfg, model, processor, dataset)
    optimizer = trainer.create_optimizer()
    rates = {id(p): group["lr"] for group in optimizer.param_groups for p in group["params"]}
    for name, param in model.named_parameters():
        if param.requires_grad:
            assert rates[id(param)] == pytest.approx(cfg.learning_rate * lr_multiplier(name, cfg.lr_multipliers))
    assert {round(g["lr"] / cfg.learning_rate, 6) for g in optimizer.param_groups} == {1.0, 0.1, 0.25}
