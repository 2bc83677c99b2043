"""mask_mode="propagate": same contract as per_frame, frame 0 identical, weights tied, memory weights loading."""

from __future__ import annotations

import copy
import logging

import pytest
import torch
from safetensors.torch import save_file

from tests.model.conftest import H, W, mixed_samples, video
from tests.model.test_modeling import force_seg
from ufvideo.model import UFVideoConfig, load_pretrained, ufvideo_7b
from ufvideo.model.propagation import (
    MEMORY_WEIGHTS_NAME,
    attach_video_model,
    build_video_model,
    get_video_model,
    memory_keys,
    propagate_masks,
    teacher_forced_masks,
    track,
    video_config,
)


@pytest.fixture(scope="module")
def forced(tiny):
    """A copy that always says [SEG], with the object-score head forced to "present".

    The untrained tiny head may call the object absent, which makes SAM2 replace tracked logits by a
    constant; forcing it keeps the tracked frames sensitive to what these tests change.
    """
    model = force_seg(tiny[0])
    head = model.sam.mask_decoder.pred_obj_score_head.proj_out
    with torch.no_grad():
        head.weight.zero_()
        head.bias.fill_(10.0)
    return model, tiny[1]


def _batch(processor, frames: tuple[int, int] = (4, 3)):
    samples = mixed_samples()
    return processor(
        samples["conversations"],
        samples["videos"],
        regions=samples["regions"],
        add_generation_prompt=True,
        sam_frames=[video(5, frames=frames[0]), video(6, frames=frames[1])],
    )


def test_propagate_has_the_per_frame_contract_and_the_same_first_frame(forced) -> None:
    model, processor = forced
    gen = _batch(processor)
    per_frame = model.generate(gen, processor, max_new_tokens=2, mask_mode="per_frame")
    propagated = model.generate(gen, processor, max_new_tokens=2, mask_mode="propagate")
    differs = False
    for a, b, frames in zip(per_frame, propagated, (4, 3), strict=True):
        assert a.token_ids == b.token_ids and len(b.masks) == len(a.masks) == 2
        for x, y in zip(a.masks, b.masks, strict=True):
            assert y.shape == x.shape == (frames, H, W) and y.dtype == torch.bool
            assert torch.equal(x[0], y[0])  # frame 0 is the per_frame decode; it seeds the tracker
            differs |= not torch.equal(x[1:], y[1:])
    assert differs  # tracked frames come from memory, not from the per-frame decode


def test_single_sam_frame_equals_per_frame(forced) -> None:
    model, processor = forced
    gen = _batch(processor, frames=(1, 1))
    a = model.generate(gen, processor, max_new_tokens=2, mask_mode="per_frame")
    b = model.generate(gen, processor, max_new_tokens=2, mask_mode="propagate")
    assert all(torch.equal(x, y) for ra, rb in zip(a, b) for x, y in zip(ra.masks, rb.masks, strict=True))


def test_default_mode_comes_from_the_config(forced) -> None:
    model, processor = forced
    gen = _batch(processor)
    explicit = model.generate(gen, processor, max_new_tokens=2, mask_mode="propagate")
    configured = copy.deepcopy(model)
    configured.config.mask_mode = "propagate"
    implicit = configured.generate(gen, processor, max_new_tokens=2)
    assert all(torch.equal(x, y) for ra, rb in zip(explicit, implicit) for x, y in zip(ra.masks, rb.masks))


def test_tracker_reads_the_seed_mask(forced) -> None:
    model, _ = forced
    video_model = get_video_model(model)
    frames = torch.randn(3, 3, 128, 128)
    left, right = torch.zeros(1, 128, 128, dtype=torch.bool), torch.zeros(1, 128, 128, dtype=torch.bool)
    left[:, 20:60, 10:50] = True
    right[:, 70:120, 60:120] = True
    a, b = track(video_model, frames, left), track(video_model, frames, right)
    assert a.shape == (1, 2, 32, 32)
    assert not torch.allclose(a, b)
    assert torch.equal(a, track(video_model, frames, left))  # deterministic (eval mode, no dropout)


def test_weights_are_tied_not_copied(forced) -> None:
    model = copy.deepcopy(forced[0])
    keys_before = set(model.state_dict())
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    video_model = attach_video_model(model)
    assert trainable and {n for n, p in model.named_parameters() if p.requires_grad} == trainable
    sam_params = dict(model.sam.named_parameters())
    video_params = dict(video_model.named_parameters())
    assert all(video_params[name] is param for name, param in sam_params.items())
    assert set(model.state_dict()) == keys_before  # the tracker is outside the module tree and checkpoints
    frames = torch.randn(3, 3, 128, 128)
    seed = torch.zeros(1, 128, 128, dtype=torch.bool)
    seed[:, 30:90, 30:90] = True
    before = track(video_model, frames, seed)
    with torch.no_grad():  # edit *our* decoder, after the tracker was built
        model.sam.mask_decoder.upscale_conv1.weight.mul_(-1.5)
    assert get_video_model(model) is video_model
    assert not torch.allclose(before, track(video_model, frames, seed))


def test_propagate_masks_matches_predict_masks_contract(forced) -> None:
    model, _ = forced
    prompts = [torch.randn(2, 32), torch.zeros(0, 32), torch.randn(1, 32)]
    pixels = torch.randn(7, 3, 128, 128)
    counts = torch.tensor([3, 2, 2])
    ours = propagate_masks(model, prompts, pixels, counts)
    reference = model.predict_masks(prompts, pixels, counts)
    assert ours[1] is None and reference[1] is None
    for a, b in ((ours[0], reference[0]), (ours[2], reference[2])):
        assert a.shape == b.shape
        torch.testing.assert_close(a[:, 0], b[:, 0])


def test_invalid_mode_names_the_choices(forced) -> None:
    model, processor = forced
    with pytest.raises(ValueError, match="allowed: per_frame, propagate"):
        model.generate(_batch(processor), processor, max_new_tokens=1, mask_mode="tracking")
    with pytest.raises(ValueError, match="allowed: per_frame, propagate"):
        UFVideoConfig(mask_mode="memory")
    assert UFVideoConfig(mask_mode="propagate").mask_mode == "propagate"


def test_fresh_memory_is_warned_and_checkpoint_memory_is_loaded(tiny, tmp_path, caplog) -> None:
    model, processor = tiny
    with caplog.at_level(logging.WARNING, logger="ufvideo.model.propagation"):
        fresh = build_video_model(model.sam)
    assert "FRESHLY INITIALISED" in caplog.text and fresh.memory_untrained == memory_keys(fresh, model.sam)
    trained = build_video_model(model.sam, seed=7)  # stands in for real memory weights
    memory = {k: v.contiguous() for k, v in trained.state_dict().items() if k in set(memory_keys(trained, model.sam))}
    model.save_pretrained(tmp_path, processor=processor)
    save_file(memory, str(tmp_path / MEMORY_WEIGHTS_NAME))
    loaded, _ = load_pretrained(tmp_path)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="ufvideo.model.propagation"):
        tracker = get_video_model(loaded)
    assert "FRESHLY INITIALISED" not in caplog.text and tracker.memory_untrained == []
    state = tracker.state_dict()
    assert all(torch.equal(state[k], v) for k, v in memory.items())
    key = "memory_attention.layers.0.self_attn.q_proj.weight"
    assert key in memory and not torch.equal(fresh.state_dict()[key], memory[key])


def test_unknown_memory_keys_name_the_file(tiny, tmp_path) -> None:
    path = tmp_path / "bad.safetensors"
    save_file({"memory_attention.nope.weight": torch.zeros(2)}, str(path))
    with pytest.raises(ValueError, match=r"bad\.safetensors: keys not in Sam2VideoModel"):
        build_video_model(tiny[0].sam, memory_weights=path)


def test_7b_tracker_has_sam2_hiera_large_memory_shapes() -> None:
    model, _ = ufvideo_7b(device="meta")
    config = video_config(model.config.mask_decoder_config)
    assert (config.image_size, config.memory_attention_hidden_size, config.memory_encoder_output_channels) == (
        1024,
        256,
        64,
    )
    assert config.memory_attention_rope_feat_sizes == [64, 64] and config.memory_fuser_intermediate_dim == 1024
    assert not config.enable_occlusion_spatial_embedding  # SAM 2.0, not 2.1


def test_teacher_forced_masks_in_both_modes(forced) -> None:
    """The RVOS eval path (answer given): per_frame is the training forward, propagate shares its frame 0."""
    model, processor = forced
    conv = [[{"from": "human", "value": "<video>\nSegment it."}, {"from": "gpt", "value": "Sure, [SEG]."}]]
    inputs = processor(conv, [video(8)], sam_frames=[video(7, frames=4)])
    inputs = {k: v for k, v in inputs.items() if k != "labels"}
    per_frame = teacher_forced_masks(model, inputs, "per_frame")
    assert torch.equal(per_frame[0], model(**inputs).pred_masks[0])
    propagated = teacher_forced_masks(model, inputs, "propagate")
    assert propagated[0].shape == per_frame[0].shape == (1, 4, 32, 32)
    torch.testing.assert_close(propagated[0][:, 0], per_frame[0][:, 0])
    assert not torch.allclose(propagated[0][:, 1:], per_frame[0][:, 1:])
    with pytest.raises(ValueError, match="allowed: per_frame, propagate"):
        teacher_forced_masks(model, inputs, "tracking")
