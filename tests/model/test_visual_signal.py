"""The tiny-profile switches that keep the video readable (BENCHMARKS.md, "the connector collapse"): visual tokens at
the text-embedding scale, per-channel standardisation of visual tokens, and the per-sample CE; all off in the released
layout, which gains no module and no weight from them."""

from __future__ import annotations

import pytest
import torch

from tests.model.conftest import mixed_samples
from ufvideo.model import UFVideoConfig, ufvideo_7b, ufvideo_tiny
from ufvideo.model.modeling import cross_entropy


def test_the_released_layout_has_every_switch_off() -> None:
    config = UFVideoConfig()
    assert (config.match_text_scale, config.visual_token_norm, config.ce_reduction) == (False, "none", "token")
    model, _ = ufvideo_7b(device="meta")
    assert not any(name.startswith(("video_norm", "region_norm")) for name in model.state_dict())
    with pytest.raises(ValueError, match="visual_token_norm"):
        UFVideoConfig(visual_token_norm="layer")


def test_visual_tokens_are_rescaled_to_the_text_rows_rms() -> None:
    model, _ = ufvideo_tiny(seed=0)
    assert model.config.match_text_scale
    tokens = torch.randn(2, 5, model.config.text_config.hidden_size) * 40.0
    scaled = model.to_text_scale(tokens)
    table = model.language_model.get_input_embeddings().weight
    target = table.pow(2).mean(-1).sqrt().mean()
    assert torch.allclose(scaled.pow(2).mean(-1).sqrt(), target.expand(2, 5), rtol=1e-4)
    assert torch.allclose(scaled / scaled.norm(dim=-1, keepdim=True), tokens / tokens.norm(dim=-1, keepdim=True))
    model.config.match_text_scale = False
    assert model.to_text_scale(tokens) is tokens


def test_batch_standardisation_uses_batch_statistics_in_training_and_running_ones_after() -> None:
    model, processor = ufvideo_tiny(seed=0, visual_token_norm="batch")
    assert model.video_norm.running_mean.abs().sum() == 0
    batch = processor(**mixed_samples())
    model.train()
    tokens = torch.randn(2, 64, model.config.text_config.hidden_size) * 3.0 + 5.0
    standardised = model._standardise("video_norm", tokens).reshape(-1, tokens.shape[-1])
    assert torch.allclose(standardised.mean(0), torch.zeros(tokens.shape[-1]), atol=1e-4)
    assert torch.allclose(standardised.std(0, unbiased=False), torch.ones(tokens.shape[-1]), atol=1e-3)
    assert model.video_norm.running_mean.abs().sum() > 0  # running statistics moved towards the batch's
    model(**batch).loss.backward()  # the whole forward works with it, regions included
    model.eval()
    one = model._standardise("video_norm", tokens[:1])
    expected = (tokens[:1] - model.video_norm.running_mean) / (model.video_norm.running_var + 1e-5).sqrt()
    assert torch.allclose(one, expected, atol=1e-5)


def test_sample_reduction_weighs_each_answer_once() -> None:
    logits = torch.randn(4, 9)
    targets = torch.tensor([[1, 2, 3, -100], [4, -100, -100, -100]])
    supervised = targets != -100
    per_token = torch.nn.functional.cross_entropy(logits, targets[supervised], reduction="none")
    assert cross_entropy(logits, targets, supervised, "token") == pytest.approx(float(per_token.mean()))
    by_sample = (per_token[:3].mean() + per_token[3]) / 2
    assert cross_entropy(logits, targets, supervised, "sample") == pytest.approx(float(by_sample))
