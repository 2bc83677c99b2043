"""Builders of the two profiles: `ufvideo_tiny` (random, CPU, seconds) and `ufvideo_7b` (the released shapes).

`ufvideo_7b(device="meta")` allocates nothing, so its shapes and parameter count can be checked anywhere.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch
from transformers import (
    Qwen2Config,
    Sam2Config,
    Sam2HieraDetConfig,
    Sam2MaskDecoderConfig,
    Sam2PromptEncoderConfig,
    Sam2VisionConfig,
    SiglipVisionConfig,
)

from ufvideo.model.configuration import UFVideoConfig
from ufvideo.model.modeling import UFVideoForConditionalGeneration, pick_attn_implementation, set_attn_implementation
from ufvideo.model.processing import UFVideoProcessor
from ufvideo.model.tokens import load_qwen2_tokenizer, special_token_ids, train_tiny_tokenizer

# Enough text for the byte-level BPE to learn common merges; the synthetic dataset's corpus replaces it.
DEFAULT_TINY_CORPUS = (
    "What is the object doing in the video?",
    "The red square moves from the left to the right.",
    "A green bar appears at the top and then vanishes.",
    "Please segment the blue circle in this image.",
    "Sure, it is [SEG].",
    "When does the yellow triangle occur in the video? Only give the start and end timestamp.",
    "There is 1 objects in the video: object_1: [<region>]. Please describe it.",
    "Answer with the option's letter from the given choices directly.",
)


def tiny_config(tokenizer_ids: dict[str, int], vocab_size: int, **overrides: Any) -> UFVideoConfig:
    """A few hundred thousand parameters per part: SigLIP 64 px / patch 8, Qwen2 width 64, SAM2 at 128 px.

    Visual tokens are kept at the text-embedding scale (`match_text_scale`); `overrides` set other UFVideoConfig
    fields, and `vision_config` / `text_config` dicts in them set SigLIP / Qwen2 fields (tiny-recipe experiments).
    """
    overrides = dict(overrides)
    vision = SiglipVisionConfig(
        **{
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "image_size": 64,
            "patch_size": 8,
            "vision_use_head": False,
            **overrides.pop("vision_config", {}),
        }
    )
    text = Qwen2Config(
        **{
            "vocab_size": vocab_size,
            "hidden_size": 64,
            "intermediate_size": 128,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "max_position_embeddings": 4096,
            "tie_word_embeddings": False,
            "pad_token_id": tokenizer_ids["pad_token_id"],
            "eos_token_id": tokenizer_ids["im_end_token_id"],
            **overrides.pop("text_config", {}),
        }
    )
    backbone = Sam2HieraDetConfig(
        hidden_size=16,
        image_size=[128, 128],
        blocks_per_stage=[1, 1, 2, 1],
        embed_dim_per_stage=[16, 32, 64, 128],
        num_attention_heads_per_stage=[1, 1, 2, 2],
        window_size_per_stage=[4, 4, 4, 4],
        global_attention_blocks=[3],
    )
    sam = Sam2Config(
        vision_config=Sam2VisionConfig(
            backbone_config=backbone,
            backbone_channel_list=[128, 64, 32, 16],
            backbone_feature_sizes=[[32, 32], [16, 16], [8, 8]],
            fpn_hidden_size=32,
        ),
        prompt_encoder_config=Sam2PromptEncoderConfig(hidden_size=32, image_size=128, patch_size=16),
        mask_decoder_config=Sam2MaskDecoderConfig(
            hidden_size=32, mlp_dim=64, num_attention_heads=2, iou_head_hidden_dim=32
        ),
    )
    ids = {k: v for k, v in tokenizer_ids.items() if k != "pad_token_id"}
    return UFVideoConfig(
        vision_config=vision,
        text_config=text,
        mask_decoder_config=sam,
        **{"num_frames": 8, "connector_depth": 1, "match_text_scale": True, **ids, **overrides},
    )


def ufvideo_tiny(
    seed: int = 0, corpus: Iterable[str] | None = None, **overrides: Any
) -> tuple[UFVideoForConditionalGeneration, UFVideoProcessor]:
    """Tiny random model + processor with a BPE tokenizer trained on `corpus`; same seed, same weights."""
    tokenizer = train_tiny_tokenizer(DEFAULT_TINY_CORPUS if corpus is None else corpus)
    config = tiny_config(special_token_ids(tokenizer), len(tokenizer), **overrides)
    set_attn_implementation(config, "sdpa")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = UFVideoForConditionalGeneration(config)
    return model, UFVideoProcessor.from_config(config, tokenizer)


def ufvideo_7b(
    device: str | torch.device = "meta", tokenizer_dir: str | Path | None = None
) -> tuple[UFVideoForConditionalGeneration, UFVideoProcessor | None]:
    """The released UFVideo-7B architecture (random weights; load real ones with `convert` + from_pretrained).

    With `tokenizer_dir` (a local Qwen2 tokenizer), the processor is built and its token ids must match the
    config's defaults; without it the processor is None.
    """
    config = UFVideoConfig()
    on_meta = str(device) == "meta"
    set_attn_implementation(config, "sdpa" if on_meta or str(device) == "cpu" else pick_attn_implementation())
    processor = None
    if tokenizer_dir is not None:
        tokenizer = load_qwen2_tokenizer(tokenizer_dir)
        ids = special_token_ids(tokenizer)
        expected = {k: getattr(config, k) for k in ids if k != "pad_token_id"}
        if {k: ids[k] for k in expected} != expected:
            raise ValueError(f"{tokenizer_dir}: token ids {ids} differ from the released layout {expected}")
        processor = UFVideoProcessor.from_config(config, tokenizer)
    with torch.device(device):
        model = UFVideoForConditionalGeneration(config)
    return model, processor
