"""`[SEG]` -> SAM2: the prompt MLP, per-frame mask decoding with a custom sparse token, and the mask losses.

Decoding follows the public model (MODEL.md section 1.7): image features + `no_memory_embedding`, sparse
prompt = 2 not-a-point tokens + the projected `[SEG]` state, `no_mask` dense prompt, multimask output and the
best mask by predicted IoU. Image encoder and prompt encoder are frozen (run without gradients); the mask
decoder, including the `conv_s0`/`conv_s1` high-resolution projections, is trained.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformers import Sam2Model

from ufvideo.model.configuration import UFVideoConfig

# Mask-decoder parts the objective cannot reach: the single-mask output (dropped with multimask output), the
# IoU head (only used for a non-differentiable argmax) and the object-score head. The public model trains them
# with zero gradient and zero weight decay, i.e. not at all; freezing them says so and keeps decay off them.
UNTRAINED_DECODER_PARTS = ("output_hypernetworks_mlps.0.", "iou_prediction_head.", "pred_obj_score_head.")


def build_seg_projector(config: UFVideoConfig) -> nn.Sequential:
    """`text_hidden_fcs[0]` of the public model: Linear(h, h) -> ReLU -> Linear(h, 256) -> Dropout(0)."""
    hidden = config.text_config.hidden_size
    prompt_dim = config.mask_decoder_config.mask_decoder_config.hidden_size
    inner = config.seg_hidden_size or hidden
    return nn.Sequential(nn.Linear(hidden, inner), nn.ReLU(), nn.Linear(inner, prompt_dim), nn.Dropout(0.0))


def freeze_sam(sam: Sam2Model) -> None:
    """Freeze everything in SAM2 but the reachable parts of the mask decoder."""
    for name, param in sam.named_parameters():
        trainable = name.startswith("mask_decoder.") and not name.removeprefix("mask_decoder.").startswith(
            UNTRAINED_DECODER_PARTS
        )
        param.requires_grad_(trainable)


@dataclass
class SamFeatures:
    """Per-frame SAM2 image features: lowest level (+ no-memory embedding) and the two high-res levels."""

    embeddings: torch.Tensor
    high_res: list[torch.Tensor]

    def select(self, index: torch.Tensor | slice) -> SamFeatures:
        return SamFeatures(self.embeddings[index], [f[index] for f in self.high_res])


def sam_image_features(sam: Sam2Model, pixel_values: torch.Tensor) -> SamFeatures:
    """Frozen Hiera + FPN without gradients, then the trainable `conv_s0`/`conv_s1` with them."""
    with torch.no_grad():
        fpn = list(sam.vision_encoder(pixel_values, return_dict=True).fpn_hidden_states)
    decoder = sam.mask_decoder
    high_res = [decoder.conv_s0(fpn[0]), decoder.conv_s1(fpn[1])]
    embeddings = fpn[-1] + sam.no_memory_embedding.reshape(1, -1, 1, 1)
    return SamFeatures(embeddings, high_res)


def decode_masks(sam: Sam2Model, features: SamFeatures, prompts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Low-res mask logits for every (object, frame): prompts (n, C), features of S frames -> (n, S, h, w).

    Frames are the decoder batch and objects its point batch, so the result is object-major by construction.
    Also returns the chosen masks' predicted IoU (n, S).
    """
    frames = features.embeddings.shape[0]
    n = prompts.shape[0]
    device, dtype = prompts.device, features.embeddings.dtype
    points = torch.zeros(frames, n, 1, 2, device=device, dtype=dtype)
    labels = -torch.ones(frames, n, 1, dtype=torch.long, device=device)
    sparse, dense = sam.prompt_encoder(input_points=points, input_labels=labels, input_boxes=None, input_masks=None)
    # SAM2's positional encodings are fp32 buffers; DeepSpeed's bf16 mode casts parameters only, so they stay fp32
    # there while the image features are bf16. Everything entering the decoder takes the features' dtype.
    sparse = torch.cat([sparse.to(dtype), prompts.to(dtype)[None, :, None, :].expand(frames, -1, -1, -1)], dim=2)
    positional = sam.get_image_wide_positional_embeddings().to(dtype).repeat(frames, 1, 1, 1)
    masks, iou, _, _ = sam.mask_decoder(
        image_embeddings=features.embeddings,
        image_positional_embeddings=positional,
        sparse_prompt_embeddings=sparse,
        dense_prompt_embeddings=dense.to(dtype),
        multimask_output=True,
        high_resolution_features=features.high_res,
    )
    best = iou.argmax(-1)  # (S, n)
    index = best[..., None, None, None].expand(-1, -1, 1, *masks.shape[-2:])
    chosen = masks.gather(2, index).squeeze(2)  # (S, n, h, w)
    return chosen.transpose(0, 1), iou.gather(2, best[..., None]).squeeze(-1).transpose(0, 1)


def upsample_logits(logits: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(..., h, w) logits -> (..., H, W) by bilinear interpolation (SAM's low-res masks to the video size)."""
    lead = logits.shape[:-2]
    flat = logits.reshape(-1, 1, *logits.shape[-2:])
    out = F.interpolate(flat.float(), size=tuple(int(s) for s in size), mode="bilinear", align_corners=False)
    return out.reshape(*lead, *out.shape[-2:])


def dice_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Per-mask soft Dice (K, H, W) -> (K,), with the public "divide by 1000" smoothing (eps 1e-6)."""
    p = logits.sigmoid().flatten(1)
    t = targets.float().flatten(1)
    numerator = 2 * (p * t).sum(1) / 1000.0 + 1e-6
    denominator = (p.sum(1) + t.sum(1)) / 1000.0 + 1e-6
    return 1 - numerator / denominator


def mask_losses(
    pred_masks: list[torch.Tensor | None],
    target_masks: list[torch.Tensor],
    target_valid: list[torch.Tensor],
) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Mean BCE and Dice over all valid (object, frame) masks of the batch, at the ground truth's resolution.

    pred_masks[b]: (n, S, h, w) logits or None; target_masks[b]: (n, S, H, W) bool; target_valid[b]: (n, S).
    Pairing is explicit: prediction [o, s] is scored against target [o, s].
    """
    bce_terms, dice_terms = [], []
    for b, (pred, target, valid) in enumerate(zip(pred_masks, target_masks, target_valid)):
        if target.shape[0] == 0 or not bool(valid.any()):
            continue
        if pred is None or pred.shape[:2] != target.shape[:2]:
            got = None if pred is None else tuple(pred.shape[:2])
            raise ValueError(f"sample {b}: predicted masks {got} do not pair with targets {tuple(target.shape[:2])}")
        logits = upsample_logits(pred, target.shape[-2:])[valid]
        gt = target[valid].to(logits.device)
        bce_terms.append(F.binary_cross_entropy_with_logits(logits, gt.float(), reduction="none").flatten(1).mean(1))
        dice_terms.append(dice_loss(logits, gt))
    if not bce_terms:
        return torch.zeros(()), torch.zeros(()), 0
    bce, dice = torch.cat(bce_terms), torch.cat(dice_terms)
    return bce.mean(), dice.mean(), int(bce.numel())
