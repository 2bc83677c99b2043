"""What `gpu_check.py` runs: the mid-size UFVideo (SigLIP-so400m tower, STC connector, Qwen2-1.5B-shaped LLM, SAM2
Hiera-L, 32 frames at 384 px, 4 SAM frames) or its tiny stand-in, and seeded in-memory training samples.

Samples are drawn from a seed instead of decoded from files: the check measures the model and the trainer, and the
GPU machine has no dataset. Each sample has the layout `ufvideo.data.dataset.load_example` returns and exercises
every branch: video tokens, one `<region>` on two key frames, a time span, and one `[SEG]` with masks on the SAM
frames (4, as in the recipe).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from transformers import Qwen2Config, SiglipVisionConfig

from ufvideo.model.builders import DEFAULT_TINY_CORPUS, tiny_config
from ufvideo.model.configuration import QWEN2_7B, SIGLIP_SO400M_384, UFVideoConfig, sam2_hiera_large_config
from ufvideo.model.modeling import UFVideoForConditionalGeneration, pick_attn_implementation, set_attn_implementation
from ufvideo.model.processing import UFVideoProcessor
from ufvideo.model.tokens import special_token_ids, train_tiny_tokenizer

# Qwen2-1.5B's shapes. The vocabulary is UFVideo's 7B layout (151,646 Qwen2 entries + the 102 added tokens) and the
# embeddings are untied, as in UFVideo, so the LM head costs what it costs in the recipe.
QWEN2_1_5B = {
    "hidden_size": 1536,
    "intermediate_size": 8960,
    "num_hidden_layers": 28,
    "num_attention_heads": 12,
    "num_key_value_heads": 2,
    "max_position_embeddings": 32768,
    "rms_norm_eps": 1e-6,
    "rope_parameters": {"rope_type": "default", "rope_theta": 1000000.0},
    "vocab_size": QWEN2_7B["vocab_size"],
    "tie_word_embeddings": False,
}
SIZES = ("mid", "tiny")
TEXT_TOKENS = 64  # rough text tokens per sample, only for the length-grouped sampler


def midsize_config(ids: dict[str, int]) -> UFVideoConfig:
    """The mid-size architecture; token ids come from the tokenizer (the real Qwen2 one is not on the GPU box)."""
    text = Qwen2Config(**QWEN2_1_5B, pad_token_id=ids["pad_token_id"], eos_token_id=ids["im_end_token_id"])
    return UFVideoConfig(
        vision_config=SiglipVisionConfig(**SIGLIP_SO400M_384),
        text_config=text,
        mask_decoder_config=sam2_hiera_large_config(),
        num_frames=32,
        num_frames_sam=4,
        **{k: v for k, v in ids.items() if k != "pad_token_id"},
    )


def build(size: str, device: str, seed: int = 0) -> tuple[UFVideoForConditionalGeneration, UFVideoProcessor]:
    """A randomly initialised model of `size` ("mid" or "tiny") created directly on `device`, and its processor."""
    if size not in SIZES:
        raise ValueError(f"size={size!r} is not one of {', '.join(SIZES)}")
    tokenizer = train_tiny_tokenizer(DEFAULT_TINY_CORPUS)
    ids = special_token_ids(tokenizer)
    config = midsize_config(ids) if size == "mid" else tiny_config(ids, len(tokenizer))
    set_attn_implementation(config, pick_attn_implementation() if str(device).startswith("cuda") else "sdpa")
    torch.manual_seed(seed)
    with torch.device(device):
        model = UFVideoForConditionalGeneration(config)
    return model, UFVideoProcessor.from_config(config, tokenizer)


def _moving_box(rng: np.random.Generator, frames: int, side: int) -> tuple[np.ndarray, list[np.ndarray]]:
    """A noisy clip with one square crossing it; returns the frames and the square's mask on each frame."""
    video = rng.integers(0, 60, (frames, side, side, 3), dtype=np.uint8)
    colour = rng.integers(120, 256, 3, dtype=np.uint8)
    box = max(2, side // 4)
    masks = []
    for t in range(frames):
        x = int((side - box) * t / max(1, frames - 1))
        y = int(rng.integers(0, side - box + 1))
        mask = np.zeros((side, side), dtype=bool)
        mask[y : y + box, x : x + box] = True
        video[t][mask] = colour
        masks.append(mask)
    return video, masks


def sample(config: UFVideoConfig, index: int, seed: int = 0) -> dict[str, Any]:
    """One training example (the `load_example` layout) at the tower's resolution, a pure function of the seeds."""
    rng = np.random.default_rng([seed, index])
    frames = config.num_frames
    video, masks = _moving_box(rng, frames, config.image_size)
    keys = [0, frames // 2]
    sam = np.linspace(0, frames - 1, config.num_frames_sam).round().astype(int).tolist()
    start, end = sorted(int(v) for v in rng.choice(100, size=2, replace=False))
    conversation = [
        {"from": "human", "value": "<video>\nWhat does <region> do, and when? Please segment it."},
        {"from": "gpt", "value": f"It moves to the right during {{<TEMP-{start:03d}><TEMP-{end:03d}>}}. Sure, [SEG]."},
    ]
    return {
        "id": f"gpu-check-{seed}-{index}",
        "conversation": conversation,
        "video": video,
        "key_frames": video[keys],
        "regions": [{p: masks[k] for p, k in enumerate(keys)}],
        "sam_frames": video[sam],
        "targets": [{p: masks[k] for p, k in enumerate(sam)}],
        "region_mode": "multi",
    }


class SampleSet(torch.utils.data.Dataset):
    """`size` seeded samples; `lengths` is what the trainer's length-grouped sampler reads."""

    def __init__(self, config: UFVideoConfig, size: int, seed: int = 0) -> None:
        self.config, self.seed = config, seed
        self.lengths = [config.num_video_tokens() + TEXT_TOKENS] * size

    def __len__(self) -> int:
        return len(self.lengths)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return sample(self.config, index, self.seed)


def prompt_batch(processor: UFVideoProcessor, examples: list[dict[str, Any]]) -> dict[str, Any]:
    """Generation inputs of `examples`: the question turn only, with the SAM frames for any `[SEG]` it emits."""
    return processor(
        conversations=[e["conversation"][:1] for e in examples],
        videos=[e["video"] for e in examples],
        regions=[e["regions"] for e in examples],
        key_frames=[e["key_frames"] for e in examples],
        sam_frames=[e["sam_frames"] for e in examples],
        add_generation_prompt=True,
    )
