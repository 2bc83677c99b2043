"""UFVideoConfig: released 7B defaults, derived token counts, validation, JSON round trip."""

from __future__ import annotations

import json

import pytest

from ufvideo.model.configuration import UFVideoConfig


def test_defaults_are_the_released_7b() -> None:
    cfg = UFVideoConfig()
    assert (cfg.vision_config.hidden_size, cfg.vision_config.image_size, cfg.vision_config.patch_size) == (
        1152,
        384,
        14,
    )
    assert cfg.vision_config.num_hidden_layers == 27 and cfg.vision_feature_layer == -2
    text = cfg.text_config
    assert (text.hidden_size, text.num_hidden_layers, text.num_attention_heads, text.num_key_value_heads) == (
        3584,
        28,
        28,
        4,
    )
    assert text.vocab_size == 151748
    assert (cfg.region_token_id, cfg.temp_token_start_id, cfg.seg_token_id) == (151646, 151647, 151747)
    backbone = cfg.mask_decoder_config.vision_config.backbone_config
    assert backbone.blocks_per_stage == [2, 6, 36, 4] and backbone.global_attention_blocks == [23, 33, 43]
    assert cfg.sam_image_size == 1024 and cfg.num_frames == 32 and cfg.num_frames_sam == 4
    assert (cfg.w_ce, cfg.w_bce, cfg.w_dice) == (1.0, 2.0, 0.5)


def test_token_counts() -> None:
    cfg = UFVideoConfig()
    assert cfg.patch_grid == 27
    assert cfg.num_video_tokens() == 2704  # 16 x 13 x 13
    assert cfg.num_video_tokens(16) == 8 * 169
    assert [cfg.num_region_tokens(k) for k in (1, 2, 4, 7, 32)] == [1, 2, 4, 4, 4]


@pytest.mark.parametrize(
    ("field", "value", "needle"),
    [
        ("mask_mode", "tracking", "allowed: per_frame, propagate"),
        ("connector_type", "mlp2x_gelu", "allowed: stc_connector_v35"),
        ("region_merge", "kmeans", "allowed: adjacent_similarity"),
        ("connector_spatial_stride", 3, "one of 1, 2"),
        ("vision_feature_layer", 3, "negative index"),
        ("w_bce", -1.0, "w_bce must be >= 0"),
        ("seg_token_id", 999_999, "seg_token_id"),
        ("video_token_id", 5, "negative placeholder"),
    ],
)
def test_invalid_values_name_the_choices(field: str, value: object, needle: str) -> None:
    with pytest.raises(ValueError, match=needle):
        UFVideoConfig(**{field: value})


def test_json_round_trip_rebuilds_nested_sam_config(tmp_path) -> None:
    cfg = UFVideoConfig(num_frames=16, w_dice=0.25)
    cfg.save_pretrained(str(tmp_path))
    loaded = UFVideoConfig.from_pretrained(str(tmp_path))
    assert loaded.num_frames == 16 and loaded.w_dice == 0.25
    assert loaded.mask_decoder_config.vision_config.backbone_config.hidden_size == 144
    assert loaded.text_config.rope_parameters["rope_theta"] == 1_000_000.0
    assert json.loads((tmp_path / "config.json").read_text())["model_type"] == "ufvideo"
