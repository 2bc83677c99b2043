"""Batched greedy decoding with a KV cache; text, time spans in seconds and one mask track per `[SEG]`.

The `[SEG]` prompt is the last-layer state *that predicted* `[SEG]` (the training convention); the public
generate path takes the state one step earlier, which `compat="upstream"` reproduces. Answers are decoded with
the temporal tokens kept.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from transformers import DynamicCache

from ufvideo.model.configuration import MASK_MODES
from ufvideo.model.propagation import propagate_masks
from ufvideo.model.segmentation import upsample_logits
from ufvideo.model.temporal import parse_spans

# "ours": the corrected behaviour; "upstream": the public inference code's quirks that change published numbers.
COMPAT_MODES = ("ours", "upstream")


@dataclass
class Generation:
    """One sample's answer. `masks[i]` is the (S, H, W) bool track of the i-th `[SEG]` at the video size."""

    text: str
    token_ids: list[int]
    spans: list[tuple[float, float]] = field(default_factory=list)
    masks: list[torch.Tensor] = field(default_factory=list)


def left_align(embeds: torch.Tensor, attention_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Move right-padded rows to left padding so every row's last position is its last real token."""
    length = attention_mask.shape[1]
    shift = length - attention_mask.sum(1)
    index = (torch.arange(length, device=embeds.device)[None] - shift[:, None]) % length
    embeds = embeds.gather(1, index[..., None].expand(-1, -1, embeds.shape[-1]))
    return embeds, attention_mask.gather(1, index)


def _step(model: Any, embeds: torch.Tensor, mask: torch.Tensor, cache: DynamicCache | None) -> torch.Tensor:
    """Run the LLM on `embeds` (the new positions) and return the last position's hidden state."""
    positions = (mask.cumsum(1) - 1).clamp(min=0)[:, -embeds.shape[1] :]
    out = model.language_model.model(
        inputs_embeds=embeds,
        attention_mask=mask,
        position_ids=positions,
        past_key_values=cache,
        use_cache=cache is not None,
    )
    return out.last_hidden_state[:, -1]


def greedy_decode(
    model: Any,
    prompt_embeds: torch.Tensor,
    attention_mask: torch.Tensor,
    max_new_tokens: int,
    use_cache: bool,
    compat: str = "ours",
) -> tuple[torch.Tensor, list[list[torch.Tensor]]]:
    """Greedy tokens (B, n) and, per sample, one hidden state per generated `[SEG]`.

    compat "ours": the state that predicted `[SEG]`. "upstream" (MODEL.md 5): for `[SEG]` at generated index
    s the public code reads `hidden_states[s - 1]`, the state that predicted token s - 1; a `[SEG]` at index 0 is
    never seen (its shifted mask drops it). At s = 1 that tuple entry holds every prompt position; we take its
    last one (the state that predicted token 0), since one prompt per `[SEG]` is what the mask layout holds.
    """
    cfg = model.config
    embed = model.language_model.get_input_embeddings()
    embeds, mask = left_align(prompt_embeds, attention_mask)
    cache = DynamicCache(config=cfg.text_config) if use_cache else None
    batch = embeds.shape[0]
    finished = torch.zeros(batch, dtype=torch.bool, device=embeds.device)
    pad = torch.full_like(finished, cfg.text_config.pad_token_id or 0, dtype=torch.long)
    tokens: list[torch.Tensor] = []
    seg_states: list[list[torch.Tensor]] = [[] for _ in range(batch)]
    new_embeds = embeds
    previous: torch.Tensor | None = None
    for _ in range(max_new_tokens):
        hidden = _step(model, new_embeds if use_cache else embeds, mask, cache)
        next_ids = model.language_model.lm_head(hidden).argmax(-1)
        next_ids = torch.where(finished, pad, next_ids)
        source = hidden if compat == "ours" else previous
        if source is not None:
            for b in torch.nonzero(next_ids == cfg.seg_token_id).flatten().tolist():
                seg_states[b].append(source[b])
        previous = hidden
        tokens.append(next_ids)
        finished |= next_ids == cfg.im_end_token_id
        if bool(finished.all()):
            break
        new_embeds = embed(next_ids)[:, None]
        embeds = torch.cat([embeds, new_embeds], 1)
        mask = torch.cat([mask, (~finished).long()[:, None]], 1)
    ids = torch.stack(tokens, 1) if tokens else torch.zeros(batch, 0, dtype=torch.long)
    return ids, seg_states


def generate(
    model: Any,
    inputs: Mapping[str, Any],
    processor: Any,
    max_new_tokens: int = 128,
    use_cache: bool = True,
    durations: list[float | None] | None = None,
    mask_mode: str | None = None,
    compat: str = "ours",
) -> list[Generation]:
    """Decode a processor batch (built with `add_generation_prompt=True`).

    durations[b] (seconds) turns the answer's temporal tokens into seconds; without it spans are relative.
    mask_mode: "per_frame" (the public behaviour: every SAM frame decoded alone with the shared prompt) or
    "propagate" (frame 0 as per_frame, then SAM2 video tracking with memory; see `propagation.py`); default
    `config.mask_mode`. compat: which hidden state prompts a generated `[SEG]` (see `greedy_decode`).
    """
    mode = mask_mode or model.config.mask_mode
    if mode not in MASK_MODES:
        raise ValueError(f"mask_mode={mode!r} is not supported; allowed: {', '.join(MASK_MODES)}")
    check_compat(compat)
    model_inputs = {k: to_device(v, model.device) for k, v in inputs.items() if k not in ("labels",)}
    input_ids = model_inputs.pop("input_ids")
    attention = model_inputs.pop("attention_mask")
    embeds = model.embed_inputs(input_ids, **model_inputs)
    ids, seg_states = greedy_decode(model, embeds, attention, max_new_tokens, use_cache, compat)
    batch = ids.shape[0]
    durations = durations or [None] * batch
    tracks = _mask_tracks(model, seg_states, model_inputs, mode)
    results = []
    for b in range(batch):
        row = ids[b].tolist()
        if model.config.im_end_token_id in row:
            row = row[: row.index(model.config.im_end_token_id) + 1]
        text = processor.decode(row)
        results.append(Generation(text, row, parse_spans(text, durations[b]), tracks[b]))
    return results


def _mask_tracks(
    model: Any, seg_states: list[list[torch.Tensor]], inputs: Mapping[str, Any], mode: str = "per_frame"
) -> list[list[torch.Tensor]]:
    counts = inputs.get("sam_frame_counts")
    if counts is None or not any(seg_states):
        return [[] for _ in seg_states]
    prompts = [model.seg_projector(torch.stack(s)) if s else torch.zeros(0, 1, device=model.device) for s in seg_states]
    if mode == "propagate":
        logits = propagate_masks(model, prompts, inputs["sam_pixel_values"], counts)
    else:
        logits = model.predict_masks(prompts, inputs["sam_pixel_values"], counts)
    tracks: list[list[torch.Tensor]] = []
    for b, sample_logits in enumerate(logits):
        if sample_logits is None:
            tracks.append([torch.zeros(0, 0, 0, dtype=torch.bool) for _ in seg_states[b]])
            continue
        size = tuple(inputs["sam_sizes"][b].tolist())
        masks = upsample_logits(sample_logits, size) > model.config.mask_threshold
        tracks.append(list(masks.cpu()))
    return tracks


def check_compat(compat: str) -> None:
    if compat not in COMPAT_MODES:
        raise ValueError(f"compat={compat!r} is not supported; allowed: {', '.join(COMPAT_MODES)}")


def to_device(value: Any, device: torch.device) -> Any:
    """A batch value (tensor, list of tensors, or anything else left as is) on `device`."""
    if isinstance(value, torch.Tensor):
        return value.to(device)
    if isinstance(value, list):
        return [to_device(v, device) for v in value]
    return value
