"""Tiny UFVideo end to end: loss, one training step, freezing, [SEG] masks, KV-cache generation, checkpoints."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from tests.model.conftest import H, W, mixed_samples, video
from ufvideo.model import UFVideoForConditionalGeneration, UFVideoProcessor, load_pretrained, ufvideo_tiny

HYPER = "sam.mask_decoder.output_hypernetworks_mlps."


def test_seed_fixes_the_weights() -> None:
    a, _ = ufvideo_tiny(seed=3)
    b, _ = ufvideo_tiny(seed=3)
    c, _ = ufvideo_tiny(seed=4)
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not torch.equal(sa["connector.readout.0.weight"], sc["connector.readout.0.weight"])


def test_loss_is_finite_and_combines_the_weighted_terms(tiny, samples) -> None:
    model, processor = tiny
    out = model(**processor(**samples))
    assert out.num_masks == 6  # valid (object, frame) pairs: 2 in sample 0 (one null frame), 2 + 2 in sample 1
    for term in (out.loss, out.ce_loss, out.bce_loss, out.dice_loss):
        assert torch.isfinite(term)
    cfg = model.config
    expected = cfg.w_ce * out.ce_loss + cfg.w_bce * out.bce_loss + cfg.w_dice * out.dice_loss
    torch.testing.assert_close(out.loss, expected)
    assert [tuple(m.shape[:2]) for m in out.pred_masks] == [(1, 3), (2, 3)]


def test_one_step_changes_every_trainable_parameter_and_no_frozen_one(tiny, samples) -> None:
    model = copy.deepcopy(tiny[0]).train()
    batch = tiny[1](**samples)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    trainable = [p for p in model.parameters() if p.requires_grad]
    # eps ~ 0 makes Adam's first step lr * sign(grad): any parameter the loss reaches moves, however small its
    # gradient (some SAM decoder gradients are ~1e-16 at random init and would vanish below float resolution).
    optimizer = torch.optim.AdamW(trainable, lr=1e-3, eps=1e-30, weight_decay=0.0)
    model(**batch).loss.backward()
    optimizer.step()
    changed = {n for n, p in model.named_parameters() if not torch.equal(before[n], p.detach())}
    frozen = {n for n, p in model.named_parameters() if not p.requires_grad}
    assert not changed & frozen
    # Of the three multimask outputs only the one picked by the (frozen) IoU head gets a gradient, as in the
    # public model; every other trainable parameter must move.
    must_move = {n for n, p in model.named_parameters() if p.requires_grad and not n.startswith(HYPER)}
    assert must_move - changed == set()
    assert any(n.startswith(HYPER) for n in changed)
    for prefix in (
        "vision_tower.",
        "sam.vision_encoder.",
        "sam.prompt_encoder.",
        "sam.mask_decoder.iou_prediction_head.",
    ):
        assert any(n.startswith(prefix) for n in frozen), prefix
    for prefix in (
        "connector.",
        "region_encoder.",
        "language_model.",
        "seg_projector.",
        "sam.mask_decoder.transformer.",
    ):
        assert any(n.startswith(prefix) for n in must_move), prefix


def test_seg_uses_the_state_that_predicts_it(tiny, samples) -> None:
    model, processor = tiny
    batch = processor(**samples)
    ids = batch["input_ids"]
    with torch.no_grad():
        embeds = model.embed_inputs(**batch)
        hidden = model.language_model.model(
            inputs_embeds=embeds, attention_mask=batch["attention_mask"]
        ).last_hidden_state
        prompts = model.seg_prompts(hidden, ids)
    seg_rows, seg_cols = torch.nonzero(ids == model.config.seg_token_id, as_tuple=True)
    manual = model.seg_projector(hidden[seg_rows, seg_cols - 1])
    torch.testing.assert_close(torch.cat(prompts), manual)
    assert [p.shape[0] for p in prompts] == [1, 2]


def test_seg_gives_masks_at_the_frame_size_and_pairs_by_object(tiny) -> None:
    model, processor = tiny
    samples = mixed_samples()
    gen = processor(
        samples["conversations"],
        samples["videos"],
        regions=samples["regions"],
        add_generation_prompt=True,
        sam_frames=[video(5, frames=3), video(6, frames=2)],
    )
    forced = force_seg(model)
    results = forced.generate(gen, processor, max_new_tokens=2)
    for result, frames in zip(results, (3, 2)):
        assert result.token_ids == [forced.config.seg_token_id] * 2
        assert len(result.masks) == 2
        assert all(m.shape == (frames, H, W) and m.dtype == torch.bool for m in result.masks)


def test_generated_seg_masks_equal_teacher_forced_ones(tiny) -> None:
    """Guards against the public off-by-one: generation must use the same state as training."""
    model, processor = tiny
    forced = force_seg(model)
    conv = [[{"from": "human", "value": "<video>\nSegment it."}, {"from": "gpt", "value": "[SEG][SEG]"}]]
    frames = video(7, frames=3)
    gen = processor(conv, [video(8)], sam_frames=[frames], add_generation_prompt=True)
    masks = forced.generate(gen, processor, max_new_tokens=2)[0].masks
    teacher = processor(conv, [video(8)], sam_frames=[frames])
    # the teacher-forced answer ends "[SEG][SEG]<|im_end|>\n"; its [SEG] states are the generation's
    with torch.no_grad():
        logits = forced(**teacher).pred_masks[0]
    from ufvideo.model.segmentation import upsample_logits

    expected = upsample_logits(logits, (H, W)) > 0
    assert torch.equal(torch.stack(masks), expected)


def test_kv_cache_generation_equals_full_recompute(tiny, samples) -> None:
    model, processor = tiny
    gen = processor(samples["conversations"], samples["videos"], regions=samples["regions"], add_generation_prompt=True)
    cached = model.generate(gen, processor, max_new_tokens=12, use_cache=True)
    full = model.generate(gen, processor, max_new_tokens=12, use_cache=False)
    assert [r.token_ids for r in cached] == [r.token_ids for r in full]
    assert all(len(r.token_ids) > 0 for r in cached)


def test_batched_generation_equals_one_by_one(tiny, samples) -> None:
    model, processor = tiny
    gen = processor(samples["conversations"], samples["videos"], regions=samples["regions"], add_generation_prompt=True)
    batched = [r.token_ids for r in model.generate(gen, processor, max_new_tokens=8)]
    single = []
    for b in range(2):
        one = processor(
            samples["conversations"][b : b + 1],
            samples["videos"][b : b + 1],
            regions=samples["regions"][b : b + 1],
            add_generation_prompt=True,
        )
        single.append(model.generate(one, processor, max_new_tokens=8)[0].token_ids)
    assert batched == single


def test_save_load_round_trip_gives_identical_outputs(tiny, samples, tmp_path) -> None:
    model, processor = tiny
    model.save_pretrained(tmp_path, processor=processor)
    assert (tmp_path / "model.safetensors").exists() and (tmp_path / "processor_config.json").exists()
    loaded, loaded_processor = load_pretrained(tmp_path)
    assert isinstance(loaded, UFVideoForConditionalGeneration) and isinstance(loaded_processor, UFVideoProcessor)
    a, b = processor(**samples), loaded_processor(**samples)
    assert all(torch.equal(a[k], b[k]) for k in ("input_ids", "labels", "pixel_values", "region_masks"))
    with torch.no_grad():
        out_a, out_b = model(**a), loaded.eval()(**b)
    assert torch.equal(out_a.loss, out_b.loss)
    assert all(torch.equal(x, y) for x, y in zip(out_a.pred_masks, out_b.pred_masks))
    assert {n for n, p in loaded.named_parameters() if p.requires_grad} == {
        n for n, p in model.named_parameters() if p.requires_grad
    }


def test_wrong_placeholder_counts_are_rejected(tiny, samples) -> None:
    model, processor = tiny
    batch = processor(**samples)
    batch["input_ids"] = batch["input_ids"].clone()
    batch["input_ids"][0, -1] = model.config.region_token_id
    with pytest.raises(ValueError, match="region placeholder positions"):
        model(**batch)


def force_seg(model: UFVideoForConditionalGeneration) -> UFVideoForConditionalGeneration:
    """A copy whose LM head always prefers [SEG] (a large bias), to exercise the [SEG] paths deterministically."""
    forced = copy.deepcopy(model)
    old = forced.language_model.lm_head
    head = nn.Linear(old.in_features, old.out_features, bias=True)
    with torch.no_grad():
        head.weight.copy_(old.weight)
        head.bias.zero_()
        head.bias[forced.config.seg_token_id] = 1e4
    forced.language_model.lm_head = head
    return forced.eval()
