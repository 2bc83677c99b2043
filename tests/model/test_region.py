"""Region encoder: masked mean pooling, adjacent merging to <= 4 tokens, token counts per mode."""

from __future__ import annotations

import torch

from ufvideo.model.region import merge_adjacent, pool_masks


def test_pool_is_the_masked_mean_and_empty_is_zero() -> None:
    feats = torch.arange(2 * 4 * 3, dtype=torch.float32).reshape(2, 4, 3)
    masks = torch.tensor([[1, 0, 1, 0], [0, 0, 0, 0], [0, 1, 1, 1]], dtype=torch.float32)
    out = pool_masks(feats, masks, torch.tensor([0, 0, 1]))
    torch.testing.assert_close(out[0], (feats[0, 0] + feats[0, 2]) / 2)
    torch.testing.assert_close(out[1], torch.zeros(3))
    torch.testing.assert_close(out[2], feats[1, 1:].mean(0))


def test_merge_groups_the_most_similar_neighbours() -> None:
    a, b, c, d = torch.eye(4)
    tokens = torch.stack([a, a, b, c, c, c, d])  # 7 tokens, 4 natural groups
    merged = merge_adjacent(tokens, 4)
    torch.testing.assert_close(merged, torch.stack([a, b, c, d]))


def test_merge_counts() -> None:
    torch.manual_seed(0)
    for k in range(1, 12):
        assert merge_adjacent(torch.randn(k, 8), 4).shape == (min(k, 4), 8)
    ties = torch.ones(9, 8)  # all similarities equal: still exactly 4 tokens
    assert merge_adjacent(ties, 4).shape == (4, 8)


def test_region_tokens_per_mode(tiny, samples) -> None:
    model, processor = tiny
    for mode, expected in (("multi", [4, 1, 2]), ("single", [1, 1, 1])):
        batch = processor(samples["conversations"], samples["videos"], regions=samples["regions"], region_mode=mode)
        feats = model.vision_features(batch["region_pixel_values"])
        tokens, counts = model.region_encoder(
            feats, batch["region_masks"], batch["region_frame_ids"], batch["region_object_ids"]
        )
        assert counts.tolist() == expected
        assert tokens.shape == (sum(expected), model.config.text_config.hidden_size)
        assert int((batch["input_ids"] == model.config.region_token_id).sum()) == sum(expected)
