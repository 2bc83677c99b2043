"""Region encoder: mask pooling on key-frame SigLIP features, adjacent-token merging to <= 4 tokens, MLP.

One region annotated on K key frames becomes min(K, region_token_num) LLM tokens (single-frame mode is K = 1).
The merge keeps exactly that many tokens: the public code cuts at a similarity threshold, which can yield
fewer tokens on ties; cutting at the least similar boundaries gives the same groups without ties and a token
count the processor can know in advance.
"""

from __future__ import annotations

import torch
from torch import nn

from ufvideo.model.configuration import UFVideoConfig


def pool_masks(features: torch.Tensor, masks: torch.Tensor, frame_ids: torch.Tensor) -> torch.Tensor:
    """Masked mean of patch features: features (F, N, C), masks (M, N) in {0, 1}, frame_ids (M,) -> (M, C).

    An empty mask yields a zero vector, as in the public model.
    """
    weights = masks.to(features.dtype)
    pooled = torch.bmm(weights.unsqueeze(1), features[frame_ids]).squeeze(1)
    return pooled / (weights.sum(1, keepdim=True) + 1e-8)


def merge_adjacent(tokens: torch.Tensor, max_tokens: int) -> torch.Tensor:
    """Merge runs of similar consecutive tokens (K, C) into exactly min(K, max_tokens) group means."""
    k = tokens.shape[0]
    if k <= max_tokens:
        return tokens
    sim = nn.functional.cosine_similarity(tokens[:-1], tokens[1:], dim=-1)
    cuts = torch.topk(sim, max_tokens - 1, largest=False).indices
    starts = torch.zeros(k, dtype=torch.long, device=tokens.device)
    starts[cuts + 1] = 1
    group = starts.cumsum(0)
    summed = torch.zeros(max_tokens, tokens.shape[1], dtype=tokens.dtype, device=tokens.device)
    summed = summed.index_add(0, group, tokens)
    counts = torch.bincount(group, minlength=max_tokens).to(tokens.dtype)
    return summed / counts.unsqueeze(1)


class RegionEncoder(nn.Module):
    """`feat_linear` keeps the public parameter names (`region_encoder.feat_linear.{0,2}`)."""

    def __init__(self, config: UFVideoConfig) -> None:
        super().__init__()
        c_in, c_out = config.vision_config.hidden_size, config.text_config.hidden_size
        self.max_tokens = config.region_token_num
        self.feat_linear = nn.Sequential(nn.Linear(c_in, c_out), nn.GELU(), nn.Linear(c_out, c_out))

    def forward(
        self,
        features: torch.Tensor,
        masks: torch.Tensor,
        frame_ids: torch.Tensor,
        object_ids: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Tokens of every region in object order.

        features: (F, N, C_v) patch features of the key frames; masks: (M, N) one row per (object, key frame);
        frame_ids, object_ids: (M,), object ids non-decreasing. Returns (tokens (R, C_llm), tokens per object).
        """
        if masks.shape[0] == 0:
            empty = features.new_zeros(0, self.feat_linear[0].in_features)
            return self.feat_linear(empty), torch.zeros(0, dtype=torch.long, device=features.device)
        if bool((object_ids[1:] < object_ids[:-1]).any()):
            raise ValueError("region object_ids must be sorted so each object's masks are contiguous")
        pooled = pool_masks(features, masks, frame_ids)
        _, per_object = torch.unique_consecutive(object_ids, return_counts=True)
        merged = [merge_adjacent(chunk, self.max_tokens) for chunk in pooled.split(per_object.tolist())]
        counts = torch.tensor([m.shape[0] for m in merged], dtype=torch.long, device=features.device)
        return self.feat_linear(torch.cat(merged)), counts
