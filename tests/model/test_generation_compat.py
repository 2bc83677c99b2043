"""`compat="upstream"` reproduces the public generate path's `[SEG]` off-by-one (MODEL.md 5)."""

from __future__ import annotations

import pytest
import torch

from tests.model.conftest import video
from tests.model.test_modeling import force_seg


def test_upstream_compat_prompts_each_seg_with_the_previous_tokens_state(tiny) -> None:
    # The forced model emits [SEG] at generated indices 0, 1, 2. Ours prompts [SEG] s with the state that
    # predicted it (step s). Upstream reads hidden_states[s - 1]: [SEG] 0 is never seen, [SEG] 1 gets the state
    # that predicted token 0 and [SEG] 2 the one that predicted token 1. So upstream's two masks are ours'
    # first two, and its third [SEG] has none.
    model, processor = tiny
    forced = force_seg(model)
    conv = [[{"from": "human", "value": "<video>\nSegment it."}]]
    frames = video(3, frames=2)
    gen = processor(conv, [video(4)], sam_frames=[frames], add_generation_prompt=True)
    ours = forced.generate(gen, processor, max_new_tokens=3)[0]
    upstream = forced.generate(gen, processor, max_new_tokens=3, compat="upstream")[0]
    assert ours.token_ids == upstream.token_ids == [forced.config.seg_token_id] * 3
    assert len(ours.masks) == 3 and len(upstream.masks) == 2
    for got, want in zip(upstream.masks, ours.masks[:2], strict=True):
        assert torch.equal(got, want)
    assert not all(torch.equal(a, b) for a, b in zip(ours.masks[1:], ours.masks[:2], strict=True))


def test_unknown_compat_is_rejected(tiny) -> None:
    model, processor = tiny
    gen = processor([[{"from": "human", "value": "Hi"}]], [video(0)], add_generation_prompt=True)
    with pytest.raises(ValueError, match="compat='paper'.*ours, upstream"):
        model.generate(gen, processor, max_new_tokens=1, compat="paper")
