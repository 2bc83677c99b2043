"""Builders: the 7B architecture on the meta device (shapes, token count, parameter count), the tiny profile."""

from __future__ import annotations

import time

import pytest
import torch

from ufvideo.model import ufvideo_7b, ufvideo_tiny


def siglip_params(hidden: int, inter: int, layers: int, patch: int, grid: int) -> int:
    """SigLIP vision tower without the (unused) MAP head."""
    emb = 3 * patch * patch * hidden + hidden + grid * grid * hidden
    layer = 4 * (hidden * hidden + hidden) + 2 * 2 * hidden + hidden * inter + inter + inter * hidden + hidden
    return emb + layers * layer + 2 * hidden


def qwen2_params(vocab: int, hidden: int, inter: int, layers: int, heads: int, kv_heads: int) -> int:
    head_dim = hidden // heads
    attn = hidden * hidden + hidden + 2 * (hidden * kv_heads * head_dim + kv_heads * head_dim) + hidden * hidden
    layer = attn + 3 * hidden * inter + 2 * hidden
    return 2 * vocab * hidden + layers * layer + hidden


@pytest.fixture(scope="module")
def released():
    model, processor = ufvideo_7b(device="meta")
    return model, processor


def test_7b_on_meta_allocates_nothing_and_has_the_released_shapes(released) -> None:
    model, processor = released
    assert processor is None
    assert all(p.device.type == "meta" for p in model.parameters())
    counts = {name: sum(p.numel() for p in m.parameters()) for name, m in model.named_children()}
    assert counts["language_model"] == qwen2_params(151748, 3584, 18944, 28, 28, 4) == 7_613_351_424
    assert counts["vision_tower"] == siglip_params(1152, 4304, 27, 14, 27) == 412_987_248
    assert counts["region_encoder"] == 1152 * 3584 + 3584 + 3584 * 3584 + 3584
    assert counts["seg_projector"] == 3584 * 3584 + 3584 + 3584 * 256 + 256
    assert counts["connector"] == 376_889_248  # derived independently in test_connector.py
    # SAM2 Hiera-L image encoder + prompt encoder + mask decoder (+ no-memory embedding); the memory modules of
    # the released checkpoint are not built because per-frame decoding never uses them.
    assert counts["sam"] == 216_924_865
    assert sum(counts.values()) == 8_650_900_177


def test_7b_gives_2704_visual_tokens_for_32_frames_at_384px(released) -> None:
    model, _ = released
    pixels = torch.empty(1, 32, 3, 384, 384, device="meta")
    assert tuple(model.encode_video(pixels).shape) == (1, 2704, 3584)
    assert model.config.num_video_tokens() == 2704


def test_7b_freezing_matches_the_recipe(released) -> None:
    model, _ = released
    trainable = {n.split(".")[0] for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {"connector", "region_encoder", "language_model", "seg_projector", "sam"}
    sam_trainable = {n for n, p in model.sam.named_parameters() if p.requires_grad}
    assert sam_trainable and all(n.startswith("mask_decoder.") for n in sam_trainable)


def test_tiny_builds_offline_in_seconds() -> None:
    start = time.perf_counter()
    model, processor = ufvideo_tiny(seed=0)
    assert time.perf_counter() - start < 10
    assert sum(p.numel() for p in model.parameters()) < 2_000_000
    assert model.config.text_config.vocab_size == len(processor.tokenizer)
    assert model.config.text_config._attn_implementation == "sdpa"
