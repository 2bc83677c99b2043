"""bf16 parameters with fp32 buffers: the state DeepSpeed's bf16 mode leaves a model in (it casts parameters only),
which the 7B recipe (bf16 + ZeRO-2) trains in. Every branch, SAM2's mask decoding included, must run in it."""

from __future__ import annotations

import copy

import torch


def _deepspeed_cast(model: torch.nn.Module) -> torch.nn.Module:
    """What `deepspeed.runtime.engine._cast_module_mixed_precision` does with bf16 on and no buffer dtype set."""
    for param in model.parameters():
        param.data = param.data.to(torch.bfloat16)
    return model


def test_bf16_parameters_with_fp32_buffers_train_every_branch(tiny, samples) -> None:
    model = _deepspeed_cast(copy.deepcopy(tiny[0])).train()
    processor = tiny[1]
    assert torch.float32 in {b.dtype for b in model.buffers()}  # SAM2's positional encodings stay fp32
    out = model(**processor(**samples))
    assert out.num_masks and torch.isfinite(out.loss)
    out.loss.backward()
    decoder_grads = [p.grad for p in model.sam.mask_decoder.parameters() if p.requires_grad]
    assert decoder_grads and all(g is not None and g.dtype == torch.bfloat16 for g in decoder_grads)
