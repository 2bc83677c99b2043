"""Freeze policies: trainable sets per stage, frozen weights bit-identical after a step, new-token rows only in
stage 1."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from ufvideo.data.dataset import CuratedDataset, LoadSettings
from ufvideo.data.synthetic import corpus_texts
from ufvideo.model import ufvideo_tiny
from ufvideo.train.stages import added_token_ids, apply_policy, parameter_counts, trainable_names
from ufvideo.train.trainer import TrainCollator, _touch

# Multimask output keeps the mask with the best predicted IoU: hypernetworks of masks never picked get no gradient.
ARGMAX_PICKED = "sam.mask_decoder.output_hypernetworks_mlps."
LLM_ROWS = ("language_model.model.embed_tokens.weight", "language_model.lm_head.weight")


@pytest.fixture(scope="module")
def built():
    return ufvideo_tiny(seed=0, corpus=corpus_texts())


@pytest.fixture(scope="module")
def batch(built, synth_dir: Path) -> dict:
    """One batch that reaches every branch: a QA sample, a region sample and two [SEG] samples."""
    model, processor = built
    cfg = model.config
    dataset = CuratedDataset(synth_dir, "train", LoadSettings(cfg.num_frames, 4, cfg.num_video_tokens()))
    wanted = ["qa", "referring", "rvos", "pixtrqa"]
    indices = [dataset.tasks.index(task) for task in wanted]
    return TrainCollator(processor, max_length=2048)([dataset[i] for i in indices])


def check_rows(model: torch.nn.Module, name: str, param: torch.Tensor, before: dict[str, torch.Tensor]) -> None:
    """A row-masked LLM matrix after a step: base-vocabulary rows unchanged, the added token rows trained."""
    new_rows = added_token_ids(model)
    base = torch.ones(model.config.text_config.vocab_size, dtype=torch.bool)
    base[new_rows] = False
    assert torch.equal(param[base], before[name][base]), f"{name}: a base-vocabulary row moved"
    assert not torch.equal(param[new_rows], before[name][new_rows]), f"{name}: new rows did not train"


def one_step(model: torch.nn.Module, batch: dict) -> dict[str, torch.Tensor]:
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-2, weight_decay=0.0)
    out = model(**batch)
    assert out.num_masks and out.num_masks > 0
    (out.loss + 0.0 * _touch(model)).backward()
    optimizer.step()
    return before


def test_align_trains_only_the_new_parts(built) -> None:
    model, _ = built
    state = apply_policy(model, "align")
    try:
        names = trainable_names(model)
        assert {n for n in names if n.startswith("language_model.")} == set(LLM_ROWS)
        assert set(state.row_masked) == set(LLM_ROWS)
        for prefix in ("connector.", "region_encoder.", "seg_projector.", "sam.mask_decoder."):
            assert any(n.startswith(prefix) for n in names), prefix
        for prefix in ("vision_tower.", "sam.vision_encoder.", "sam.prompt_encoder."):
            assert not any(n.startswith(prefix) for n in names), prefix
    finally:
        state.remove()


def test_full_trains_the_llm_but_never_the_encoders(built) -> None:
    model, _ = built
    state = apply_policy(model, "full")
    names = set(trainable_names(model))
    llm = {n for n, _ in model.named_parameters() if n.startswith("language_model.")}
    assert llm <= names and not state.row_masked
    assert not any(n.startswith(("vision_tower.", "sam.vision_encoder.", "sam.prompt_encoder.")) for n in names)
    counts = parameter_counts(model)
    assert counts["params_trainable"] == sum(p.numel() for p in model.parameters() if p.requires_grad)
    with pytest.raises(ValueError, match="freeze_policy"):
        apply_policy(model, "prefix_tuning")  # not a policy (lora is: test_lora_policy.py)


def test_align_step_moves_new_rows_and_nothing_frozen(batch) -> None:
    model, _ = ufvideo_tiny(seed=0, corpus=corpus_texts())
    state = apply_policy(model, "align")
    before = one_step(model, batch)
    for name, param in model.named_parameters():
        if name in LLM_ROWS:
            check_rows(model, name, param, before)
        elif param.requires_grad:
            if not name.startswith(ARGMAX_PICKED):
                assert not torch.equal(param, before[name]), f"{name}: trainable but unchanged"
        else:
            assert torch.equal(param, before[name]), f"{name}: frozen but changed"
    state.remove()


def test_full_step_moves_the_llm_and_keeps_encoders(batch) -> None:
    model, _ = ufvideo_tiny(seed=0, corpus=corpus_texts())
    apply_policy(model, "full")
    before = one_step(model, batch)
    used = batch["input_ids"][batch["attention_mask"].bool()].unique()
    used = used[(used >= 0) & ~torch.isin(used, added_token_ids(model))]
    embed = LLM_ROWS[0]
    assert not torch.equal(dict(model.named_parameters())[embed][used], before[embed][used])
    for name, param in model.named_parameters():
        if name.startswith("language_model.model.layers."):
            assert not torch.equal(param, before[name]), name
        if name.startswith(("vision_tower.", "sam.vision_encoder.", "sam.prompt_encoder.")):
            assert torch.equal(param, before[name]), name


def test_train_vision_tower_unfreezes_siglip_alone(batch) -> None:
    """The tiny profile's option: SigLIP gets gradients (a graph is kept for it) and moves; SAM2's encoders do not."""
    model, _ = ufvideo_tiny(seed=0, corpus=corpus_texts())
    state = apply_policy(model, "align", train_vision_tower=True)
    names = trainable_names(model)
    tower = [n for n, _ in model.named_parameters() if n.startswith("vision_tower.")]
    # SigLIP's last layer only feeds hidden states past `vision_feature_layer` (-2): it stays frozen (no gradient
    # would ever reach it, which DDP rejects), everything before it trains.
    reached = [n for n in tower if ".encoder.layers.1." not in n and "post_layernorm" not in n]
    assert reached and set(reached) == {n for n in names if n.startswith("vision_tower.")}
    before = one_step(model, batch)
    params = dict(model.named_parameters())
    for name in reached:
        assert not torch.equal(params[name], before[name]), f"{name}: trainable but unchanged"
    for name in params:
        if name.startswith(("sam.vision_encoder.", "sam.prompt_encoder.")):
            assert torch.equal(params[name], before[name]), name
    with torch.no_grad():  # evaluation keeps no graph even with the tower trainable
        feats = model.vision_features(torch.zeros(1, 3, 64, 64))
    assert not feats.requires_grad
    state.remove()
