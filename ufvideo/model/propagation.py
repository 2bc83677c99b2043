"""`mask_mode="propagate"`: SAM2 video tracking with memory (`Sam2VideoModel`), seeded by the `[SEG]` mask of the
first SAM frame and sharing (tying) every weight our `Sam2Model` has; only the memory modules are its own.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file
from transformers import Sam2Config, Sam2Model, Sam2VideoConfig, Sam2VideoInferenceSession, Sam2VideoModel
from transformers.models.sam2_video.configuration_sam2_video import (
    Sam2VideoMaskDecoderConfig,
    Sam2VideoPromptEncoderConfig,
)

from ufvideo.model.configuration import MASK_MODES
from ufvideo.model.segmentation import decode_masks, sam_image_features

log = logging.getLogger(__name__)

# Optional file in a checkpoint directory with the memory weights in transformers' `Sam2VideoModel` names.
MEMORY_WEIGHTS_NAME = "sam2_memory.safetensors"
_CACHE_ATTR = "_ufvideo_sam2_video"
FEATURE_BATCH = 8  # frames per image-encoder call when caching a sample's features
UNTRAINED_MEMORY_WARNING = (
    "SAM2 memory modules (memory attention, memory encoder, object-pointer projection, mask downsampler) are "
    "FRESHLY INITIALISED: {missing} tensors have no trained weights. mask_mode='propagate' tracks with random "
    "memory and its masks after the first SAM frame are meaningless until a real SAM2 checkpoint's memory weights "
    "are loaded (attach_video_model(model, memory_weights=...) or {name} next to model.safetensors)."
)


def video_config(sam_config: Sam2Config, **overrides: Any) -> Sam2VideoConfig:
    """The `Sam2VideoConfig` whose image parts equal `sam_config` and whose memory parts fit its sizes.

    Memory widths follow the FPN width as in SAM2 (d=256: fuser 1024, attention FFN 2048); the memory dim stays
    64, which transformers requires. So the 7B profile gets SAM 2.0 Hiera-L's memory exactly. SAM 2.0 has no
    occlusion embedding and no temporal encoding of object pointers (2.1 added both): pass `enable_*=True` in
    `overrides` for a 2.1 checkpoint.
    """
    vision = sam_config.vision_config
    hidden = vision.fpn_hidden_size

    def plain(config: Any) -> dict[str, Any]:
        drop = {"model_type", "transformers_version", "architectures"}
        return {k: v for k, v in config.to_dict().items() if k not in drop}

    settings: dict[str, Any] = {
        "image_size": sam_config.prompt_encoder_config.image_size,
        "memory_attention_hidden_size": hidden,
        "memory_attention_feed_forward_hidden_size": 8 * hidden,
        "memory_attention_rope_feat_sizes": list(vision.backbone_feature_sizes[-1]),
        "memory_encoder_hidden_size": hidden,
        "memory_encoder_output_channels": 64,  # transformers hard-codes kv_in_dim=64 in the memory attention
        "mask_downsampler_embed_dim": hidden,
        "memory_fuser_embed_dim": hidden,
        "memory_fuser_intermediate_dim": 4 * hidden,
        "enable_occlusion_spatial_embedding": False,
        "enable_temporal_pos_encoding_for_object_pointers": False,
    }
    settings.update(overrides)
    config = Sam2VideoConfig(
        vision_config=vision,
        prompt_encoder_config=Sam2VideoPromptEncoderConfig(**plain(sam_config.prompt_encoder_config)),
        mask_decoder_config=Sam2VideoMaskDecoderConfig(**plain(sam_config.mask_decoder_config)),
        **settings,
    )
    config._attn_implementation = "sdpa"
    return config


class TiedSam2VideoModel(Sam2VideoModel):
    """`Sam2VideoModel` that also runs FPN widths below the 64-d memory (tiny profiles only).

    SAM2 splits each object pointer (FPN width) into memory-dim tokens, assuming width >= 64; narrower
    pointers are zero-padded to 64 here. Widths >= 64 (every real SAM2) take the unchanged transformers path.
    """

    def _process_object_pointers(self, *args: Any, **kwargs: Any) -> tuple[torch.Tensor, torch.Tensor]:
        pointers, positions = super()._process_object_pointers(*args, **kwargs)
        if pointers is not None and pointers.shape[-1] < self.mem_dim:
            pointers = pointers.reshape(*positions.shape[:2], pointers.shape[-1])  # (tokens, batch, width)
            pointers = torch.nn.functional.pad(pointers, (0, self.mem_dim - pointers.shape[-1]))
        return pointers, positions


def tie_weights(video: Sam2VideoModel, sam: Sam2Model) -> int:
    """Make every parameter and buffer `sam` has the *same* tensor in `video`; returns how many were tied.

    Tying (not copying) means a trained or edited decoder is what the tracker uses, with no second copy of
    the image encoder in memory.
    """
    tied = 0
    for kind, items in (("param", sam.named_parameters()), ("buffer", sam.named_buffers())):
        for name, tensor in items:
            owner_name, _, leaf = name.rpartition(".")
            owner = video.get_submodule(owner_name)
            current = getattr(owner, leaf)
            if current.shape != tensor.shape:
                shapes = f"video {tuple(current.shape)} vs {tuple(tensor.shape)}"
                raise ValueError(f"cannot tie SAM2 {kind} {name}: {shapes}")
            if kind == "param":
                owner._parameters[leaf] = tensor
            else:
                owner._buffers[leaf] = tensor
            tied += 1
    return tied


def memory_keys(video: Sam2VideoModel, sam: Sam2Model) -> list[str]:
    """State-dict keys only the video model has (memory attention/encoder, object pointers, mask downsampler)."""
    shared = set(sam.state_dict())
    return sorted(k for k in video.state_dict() if k not in shared)


def load_memory_weights(
    video: Sam2VideoModel, sam: Sam2Model, source: str | Path | Mapping[str, torch.Tensor]
) -> list[str]:
    """Load the memory tensors of `source` (a safetensors file or a state dict in `Sam2VideoModel` names, e.g.
    a transformers-converted SAM2 checkpoint) into `video`; returns the memory keys that stayed untrained.

    Keys the image model also has are skipped: the tied, UFVideo-trained ones win.
    """
    name = str(source) if isinstance(source, str | Path) else "memory state dict"
    state = load_file(str(source)) if isinstance(source, str | Path) else dict(source)
    wanted = memory_keys(video, sam)
    own = video.state_dict()
    unknown = [k for k in state if k not in own]
    if unknown:
        raise ValueError(f"{name}: keys not in Sam2VideoModel: {unknown[:5]} ({len(unknown)} in all)")
    loaded = {k: state[k] for k in wanted if k in state}
    for key, value in loaded.items():
        if value.shape != own[key].shape:
            raise ValueError(f"{name}: {key} has shape {tuple(value.shape)}, the model {tuple(own[key].shape)}")
    video.load_state_dict(loaded, strict=False)
    skipped = sum(1 for k in state if k not in set(wanted))
    log.info("%s: loaded %d SAM2 memory tensors, kept %d tied image-model tensors", name, len(loaded), skipped)
    return [k for k in wanted if k not in loaded]


def build_video_model(
    sam: Sam2Model, memory_weights: str | Path | Mapping[str, torch.Tensor] | None = None, seed: int = 0
) -> Sam2VideoModel:
    """A `Sam2VideoModel` tied to `sam`; memory from `memory_weights`, else seeded fresh init (warned loudly)."""
    param = sam.no_memory_embedding
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        video = TiedSam2VideoModel(video_config(sam.config))
    tie_weights(video, sam)  # before moving, so the replaced image parts are never copied to the device
    video.to(device=param.device, dtype=param.dtype)
    missing = memory_keys(video, sam) if memory_weights is None else load_memory_weights(video, sam, memory_weights)
    video.memory_untrained = missing
    if missing:
        log.warning(UNTRAINED_MEMORY_WARNING.format(missing=len(missing), name=MEMORY_WEIGHTS_NAME))
    shared = {id(p) for p in sam.parameters()}
    for param in video.parameters():  # the memory is inference-only; the tied parts keep UFVideo's freezing
        if id(param) not in shared:
            param.requires_grad_(False)
    return video.eval()


def attach_video_model(
    model: Any, memory_weights: str | Path | Mapping[str, torch.Tensor] | None = None
) -> Sam2VideoModel:
    """Build the tracker of `model` now (replacing any cached one) and keep it for `mask_mode="propagate"`.

    It lives outside the module tree, so it never enters `state_dict`, checkpoints or the optimizer.
    """
    video = build_video_model(model.sam, memory_weights)
    object.__setattr__(model, _CACHE_ATTR, video)
    return video


def get_video_model(model: Any) -> Sam2VideoModel:
    """The cached tracker, built at first use (from `<checkpoint>/sam2_memory.safetensors` when present)."""
    video = model.__dict__.get(_CACHE_ATTR)
    if video is None:
        directory = Path(getattr(model, "name_or_path", "") or "")
        weights = directory / MEMORY_WEIGHTS_NAME if str(directory) not in ("", ".") else None
        video = attach_video_model(model, weights if weights is not None and weights.is_file() else None)
    param = model.sam.no_memory_embedding
    video.to(device=param.device, dtype=param.dtype)
    tie_weights(video, model.sam)  # cheap; keeps the tie through `model.to(...)` or a replaced submodule
    return video.eval()


@torch.no_grad()
def track(video: Sam2VideoModel, frames: torch.Tensor, first_masks: torch.Tensor) -> torch.Tensor:
    """Propagate binary masks of frame 0 through `frames` (S, 3, s, s) with memory: (n, S - 1, h, w) logits.

    Each mask is a mask prompt for its own object id on frame 0, exactly what
    `Sam2VideoProcessor.add_inputs_to_inference_session(input_masks=...)` stores (the processor itself is not
    used: our frames are already SAM-normalised). SAM2 outputs a mask prompt as that frame's mask and encodes it
    into memory; frames 1.. are predicted from memory alone (no prompt), each adding its own memory.
    """
    dtype = video.no_memory_embedding.dtype
    device = video.no_memory_embedding.device
    size = video.config.image_size
    session = Sam2VideoInferenceSession(
        video=frames,
        video_height=size,
        video_width=size,
        inference_device=device,
        dtype=dtype,
        max_vision_features_cache_size=len(frames),
    )
    _cache_features(video, session, frames.to(device, dtype))
    n = first_masks.shape[0]
    for obj_id in range(n):
        obj_idx = session.obj_id_to_idx(obj_id)
        session.add_mask_inputs(obj_idx, 0, first_masks[obj_id][None, None].float())
    session.obj_with_new_inputs = list(range(n))
    out = []
    for output in video.propagate_in_video_iterator(session, start_frame_idx=0):
        if output.frame_idx > 0:
            out.append(output.pred_masks.reshape(n, *output.pred_masks.shape[-2:]))
    return torch.stack(out, 1).clone()


def _cache_features(video: Sam2VideoModel, session: Sam2VideoInferenceSession, frames: torch.Tensor) -> None:
    """Image features of all frames in batches, stored where the session looks first (it would otherwise run
    the image encoder one frame at a time: ~4x slower for the tiny profile on CPU)."""
    for start in range(0, len(frames), FEATURE_BATCH):
        out = video.get_image_features(frames[start : start + FEATURE_BATCH], return_dict=True)
        for i in range(out.fpn_hidden_states[0].shape[1]):
            session.cache.cache_vision_features(
                start + i,
                {
                    "vision_feats": [f[:, i : i + 1] for f in out.fpn_hidden_states],
                    "vision_pos_embeds": [p[:, i : i + 1] for p in out.fpn_position_encoding],
                },
            )


@torch.no_grad()
def propagate_masks(
    model: Any, prompts: list[torch.Tensor], sam_pixel_values: torch.Tensor, sam_frame_counts: torch.Tensor
) -> list[torch.Tensor | None]:
    """Same contract as `model.predict_masks`: low-res logits (n_b, S_b, h, w) per sample, None without masks.

    Frame 0 is decoded exactly as in per_frame mode (its logits are returned unchanged); its mask, thresholded
    at `config.mask_threshold` at the SAM input size, seeds SAM2 tracking through the sample's other frames.
    """
    counts = sam_frame_counts.tolist()
    starts = [sum(counts[:b]) for b in range(len(counts))]
    needed = [b for b, p in enumerate(prompts) if p.shape[0] and counts[b]]
    out: list[torch.Tensor | None] = [None] * len(prompts)
    if not needed:
        return out
    video = get_video_model(model)
    sam = model.sam
    dtype = sam.no_memory_embedding.dtype
    size = video.config.image_size
    for b in needed:
        frames = sam_pixel_values[starts[b] : starts[b] + counts[b]].to(sam.no_memory_embedding.device, dtype)
        first, _ = decode_masks(sam, sam_image_features(sam, frames[:1]), prompts[b].to(dtype))  # (n, 1, h, w)
        if counts[b] == 1:
            out[b] = first
            continue
        seed = torch.nn.functional.interpolate(first.float(), size=(size, size), mode="bilinear", align_corners=False)
        rest = track(video, frames, seed[:, 0] > model.config.mask_threshold)
        out[b] = torch.cat([first, rest.to(first.dtype)], 1)
    return out


@torch.no_grad()
def teacher_forced_masks(
    model: Any, inputs: Mapping[str, Any], mask_mode: str | None = None
) -> list[torch.Tensor | None] | None:
    """Low-res logits per sample for the `[SEG]`s already in `input_ids` (the public RVOS protocol feeds the
    answer), in either mask mode; None when the batch has no SAM frames. `inputs` are on the model's device."""
    mode = mask_mode or model.config.mask_mode
    if mode not in MASK_MODES:
        raise ValueError(f"mask_mode={mode!r} is not supported; allowed: {', '.join(MASK_MODES)}")
    if mode == "per_frame":
        return model(**inputs).pred_masks
    if inputs.get("sam_pixel_values") is None:
        return None
    rest = {k: v for k, v in inputs.items() if k not in ("input_ids", "attention_mask", "labels")}
    input_ids = inputs["input_ids"]
    embeds = model.embed_inputs(input_ids, **rest)
    hidden = model.language_model.model(inputs_embeds=embeds, attention_mask=inputs.get("attention_mask"))
    prompts = model.seg_prompts(hidden.last_hidden_state, input_ids)
    return propagate_masks(model, prompts, inputs["sam_pixel_values"], inputs["sam_frame_counts"])
