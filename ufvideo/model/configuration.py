"""`UFVideoConfig`: every architectural number of UFVideo in one `PretrainedConfig` (MODEL.md sections 1-3).

Defaults are the released UFVideo-7B: SigLIP-so400m-patch14-384, the STC v35 connector, Qwen2-7B with the
102 added tokens, SAM2 Hiera-L (SAM 2.0), 32 LLM frames, 4 SAM frames, loss weights 1.0 / 2.0 / 0.5.
"""

from __future__ import annotations

from typing import Any, ClassVar

from transformers import (
    PretrainedConfig,
    Qwen2Config,
    Sam2Config,
    Sam2HieraDetConfig,
    Sam2MaskDecoderConfig,
    Sam2PromptEncoderConfig,
    Sam2VisionConfig,
    SiglipVisionConfig,
)
from transformers.configuration_utils import SubConfigSpec

CONNECTOR_TYPES = ("stc_connector_v35",)
MASK_MODES = ("per_frame", "propagate")  # propagate: SAM2 video tracking with memory (propagation.py)
CE_REDUCTIONS = ("token", "sample")
VISUAL_TOKEN_NORMS = ("none", "batch")
REGION_MERGES = ("adjacent_similarity",)

# Placeholder id of the `<video>` slot in `input_ids` (as in the public code): it is no vocabulary entry, so the
# 7B embedding matrix keeps the released 151,748 rows.
VIDEO_PLACEHOLDER_ID = -201

SIGLIP_SO400M_384 = {
    "hidden_size": 1152,
    "intermediate_size": 4304,
    "num_hidden_layers": 27,
    "num_attention_heads": 16,
    "image_size": 384,
    "patch_size": 14,
    "hidden_act": "gelu_pytorch_tanh",
    "layer_norm_eps": 1e-6,
    # The MAP head is never used (features come from layer -2), so it is not built.
    "vision_use_head": False,
}

QWEN2_7B = {
    "vocab_size": 151748,  # 151,646 Qwen2 entries + <region> + 100 TEMP tokens + [SEG]
    "hidden_size": 3584,
    "intermediate_size": 18944,
    "num_hidden_layers": 28,
    "num_attention_heads": 28,
    "num_key_value_heads": 4,
    "max_position_embeddings": 32768,
    "rms_norm_eps": 1e-6,
    "rope_parameters": {"rope_type": "default", "rope_theta": 1000000.0},
    "tie_word_embeddings": False,
    "bos_token_id": 151643,
    "eos_token_id": 151645,
    "pad_token_id": 151643,
}


def sam2_hiera_large_config() -> Sam2Config:
    """SAM 2.0 Hiera-L at 1024 px, the segmentation model UFVideo ships."""
    backbone = Sam2HieraDetConfig(
        hidden_size=144,
        embed_dim_per_stage=[144, 288, 576, 1152],
        num_attention_heads_per_stage=[2, 4, 8, 16],
        blocks_per_stage=[2, 6, 36, 4],
        global_attention_blocks=[23, 33, 43],
        window_positional_embedding_background_size=[7, 7],
        window_size_per_stage=[8, 4, 16, 8],
    )
    vision = Sam2VisionConfig(backbone_config=backbone, backbone_channel_list=[1152, 576, 288, 144])
    return Sam2Config(
        vision_config=vision,
        prompt_encoder_config=Sam2PromptEncoderConfig(),
        mask_decoder_config=Sam2MaskDecoderConfig(),
    )


def sam2_config_from_dict(data: dict[str, Any]) -> Sam2Config:
    """Rebuild a `Sam2Config` from its JSON form; Sam2Config itself rejects nested plain dicts."""
    vision = dict(data.get("vision_config") or {})
    backbone = Sam2HieraDetConfig(**_strip(vision.pop("backbone_config", None) or {}))
    return Sam2Config(
        vision_config=Sam2VisionConfig(backbone_config=backbone, **_strip(vision)),
        prompt_encoder_config=Sam2PromptEncoderConfig(**_strip(data.get("prompt_encoder_config") or {})),
        mask_decoder_config=Sam2MaskDecoderConfig(**_strip(data.get("mask_decoder_config") or {})),
        **{k: v for k, v in _strip(data).items() if not k.endswith("_config")},
    )


def _strip(data: dict[str, Any]) -> dict[str, Any]:
    drop = {"model_type", "transformers_version", "architectures", "_attn_implementation_autoset"}
    return {k: v for k, v in data.items() if k not in drop}


class _Sam2Spec(SubConfigSpec):
    """Sub-config spec that can rebuild the nested SAM2 config from a saved `config.json`."""

    def create_subconfig(self, key, subconfig=None, **kwargs):  # noqa: ANN001, ANN201 - transformers hook
        if isinstance(subconfig, Sam2Config):
            return subconfig, kwargs
        if subconfig is None:
            return sam2_hiera_large_config(), kwargs
        if isinstance(subconfig, dict):
            return sam2_config_from_dict(subconfig), kwargs
        raise TypeError(f"`{key}` must be a dict, a Sam2Config or None, got {type(subconfig).__name__}")


class UFVideoConfig(PretrainedConfig):
    """Architecture of UFVideo: SigLIP -> STC connector -> Qwen2, region encoder, `[SEG]` -> SAM2.

    `num_frames` is the LLM clip length; `num_frames_sam` the frames per sample that get masks in training.
    Token ids default to the Qwen2 layout after `<region>`, `<TEMP-000..099>` and `[SEG]` are appended.
    """

    model_type: ClassVar[str] = "ufvideo"
    sub_configs_defaults: ClassVar[dict[str, SubConfigSpec]] = {
        "vision_config": SubConfigSpec(config_class=SiglipVisionConfig, init_kwargs=SIGLIP_SO400M_384),
        "text_config": SubConfigSpec(config_class=Qwen2Config, init_kwargs=QWEN2_7B),
        "mask_decoder_config": _Sam2Spec(config_class=Sam2Config),
    }

    vision_config: dict | PretrainedConfig | None = None
    text_config: dict | PretrainedConfig | None = None
    mask_decoder_config: dict | PretrainedConfig | None = None
    # vision tower
    vision_feature_layer: int = -2
    num_frames: int = 32
    # connector
    connector_type: str = "stc_connector_v35"
    connector_depth: int = 4
    connector_temporal_stride: int = 2
    connector_spatial_stride: int = 2
    # region encoder
    region_token_num: int = 4
    region_merge: str = "adjacent_similarity"
    # [SEG] -> SAM2
    seg_hidden_size: int | None = None
    num_frames_sam: int = 4
    mask_mode: str = "per_frame"
    mask_threshold: float = 0.0
    # special tokens
    video_token_id: int = VIDEO_PLACEHOLDER_ID
    region_token_id: int = 151646
    temp_token_start_id: int = 151647
    num_temp_tokens: int = 100
    seg_token_id: int = 151747
    im_end_token_id: int = 151645
    # losses
    w_ce: float = 1.0
    w_bce: float = 2.0
    w_dice: float = 0.5
    tie_word_embeddings: bool = False
    # Off in the released layout. The tiny profile turns it on: each video and region token is rescaled to the mean
    # RMS of the LLM's text-embedding rows, so the connector cannot grow its output by orders of magnitude over the
    # text (measured: norm ~190 vs ~0.3), which buried the across-video variation (BENCHMARKS.md). No parameters,
    # so checkpoints load the same with it on or off.
    match_text_scale: bool = False
    # "batch": video and region tokens are standardised per channel (BatchNorm without affine parameters: batch
    # statistics in training, running ones in evaluation) before `match_text_scale`, as a linear probe would see
    # them. Tiny profile only; "none" (the released layout) adds no module and no weights.
    visual_token_norm: str = "none"
    # How the CE averages: "token" (every supervised token counts once: the released recipe, LLaVA-style) or "sample"
    # (each sample's token mean, then the batch mean: a one-letter answer weighs as much as a 100-token caption).
    ce_reduction: str = "token"

    def __post_init__(self, **kwargs: Any) -> None:
        super().__post_init__(**kwargs)
        self._validate()

    def _validate(self) -> None:
        _choice("connector_type", self.connector_type, CONNECTOR_TYPES)
        _choice("mask_mode", self.mask_mode, MASK_MODES)
        _choice("region_merge", self.region_merge, REGION_MERGES)
        _choice("ce_reduction", self.ce_reduction, CE_REDUCTIONS)
        _choice("visual_token_norm", self.visual_token_norm, VISUAL_TOKEN_NORMS)
        if self.vision_feature_layer >= 0 or -self.vision_feature_layer > self.vision_config.num_hidden_layers + 1:
            raise ValueError(
                f"vision_feature_layer must be a negative index into the {self.vision_config.num_hidden_layers + 1} "
                f"hidden states, got {self.vision_feature_layer}"
            )
        for name in ("num_frames", "connector_depth", "region_token_num", "num_frames_sam", "num_temp_tokens"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"{name} must be a positive integer, got {getattr(self, name)!r}")
        for name in ("connector_temporal_stride", "connector_spatial_stride"):
            if getattr(self, name) not in (1, 2):
                raise ValueError(f"{name} must be one of 1, 2, got {getattr(self, name)!r}")
        if self.num_frames < self.connector_temporal_stride:
            raise ValueError(f"num_frames ({self.num_frames}) must be >= connector_temporal_stride")
        for name in ("w_ce", "w_bce", "w_dice"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        vocab = self.text_config.vocab_size
        ids = {"region_token_id": self.region_token_id, "seg_token_id": self.seg_token_id}
        ids["last temporal token"] = self.temp_token_start_id + self.num_temp_tokens - 1
        for name, value in ids.items():
            if not 0 <= value < vocab:
                raise ValueError(f"{name} ({value}) must lie in the text vocabulary [0, {vocab})")
        if self.video_token_id >= 0:
            raise ValueError(f"video_token_id must be a negative placeholder id, got {self.video_token_id}")

    # ---- derived sizes -------------------------------------------------------------------------------------
    @property
    def image_size(self) -> int:
        return self.vision_config.image_size

    @property
    def sam_image_size(self) -> int:
        return self.mask_decoder_config.prompt_encoder_config.image_size

    @property
    def patch_grid(self) -> int:
        """Side of the SigLIP patch grid (27 for so400m at 384 px)."""
        return self.vision_config.image_size // self.vision_config.patch_size

    def num_video_tokens(self, num_frames: int | None = None) -> int:
        """LLM tokens of one clip after the connector: (T', H', W') of the stride-2 valid Conv3d."""
        t = self.num_frames if num_frames is None else num_frames
        ts, ss = self.connector_temporal_stride, self.connector_spatial_stride
        t_out = (t - ts) // ts + 1
        g_out = (self.patch_grid - ss) // ss + 1
        return t_out * g_out * g_out

    def num_region_tokens(self, num_frames: int) -> int:
        """LLM tokens of one region annotated on `num_frames` key frames (1 in single-frame mode)."""
        return max(1, min(num_frames, self.region_token_num))

    @property
    def temp_token_ids(self) -> range:
        return range(self.temp_token_start_id, self.temp_token_start_id + self.num_temp_tokens)


def _choice(name: str, value: Any, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"{name}={value!r} is not supported; allowed: {', '.join(allowed)}")
