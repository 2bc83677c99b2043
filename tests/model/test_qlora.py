"""QLoRA on a GPU (`lora.quantize=nf4`): the LLM projections become bitsandbytes 4-bit layers under LoRA, a step
trains the adapters and leaves the quantised base untouched, and the saved adapter merges into the full-precision
base. The CPU's clear error is in tests/train/test_lora_policy.py."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tests.adapters import base_checkpoint
from ufvideo.model.adapters import AdapterConfig, save_adapter
from ufvideo.model.loader import base_reference, load_checkpoint
from ufvideo.model.modeling import UFVideoForConditionalGeneration
from ufvideo.train.stages import apply_policy

pytestmark = pytest.mark.gpu


def test_nf4_base_trains_adapters_and_merges_into_the_full_precision_base(tmp_path: Path) -> None:
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    bnb = pytest.importorskip("bitsandbytes")
    base = base_checkpoint(tmp_path / "base")
    model = UFVideoForConditionalGeneration.from_pretrained(base, device="cuda")
    settings = AdapterConfig(rank=4, alpha=16.0, dropout=0.0, quantize="nf4")
    state = apply_policy(model, "lora", adapter=settings)
    model.cuda()
    projections = [m for n, m in model.language_model.named_modules() if n.endswith("q_proj.base_layer")]
    assert projections and all(isinstance(m, bnb.nn.Linear4bit) for m in projections)
    frozen = {n: p.detach().clone() for n, p in model.named_parameters() if n.endswith("base_layer.weight")}

    ids = torch.randint(0, 100, (2, 12), device="cuda")
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    for _ in range(2):  # B starts at zero: A gets a gradient from the second step on
        out = model.language_model(input_ids=ids, labels=ids)
        out.loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    after = dict(model.named_parameters())
    assert all(torch.equal(after[n], v) for n, v in frozen.items()), "the 4-bit base moved"
    lora_b = [p for n, p in after.items() if ".lora_B." in n]
    assert lora_b and all(bool(p.abs().sum() > 0) for p in lora_b)

    adapter = tmp_path / "adapter"
    save_adapter(model, adapter, settings, base_reference(str(base)), state.row_masked)
    from ufvideo.checkpoint import write_info
    from ufvideo.model.processing import UFVideoProcessor

    UFVideoProcessor.from_pretrained(base).save_pretrained(adapter)
    write_info(adapter, profile="tiny", stage=2, data_digest="synthetic-digest")
    merged, _ = load_checkpoint(adapter, device="cuda")
    layer = merged.language_model.model.layers[0].self_attn.q_proj
    assert isinstance(layer, torch.nn.Linear) and layer.weight.dtype == torch.float32  # merged into full precision
    plain, _ = load_checkpoint(base, device="cuda")
    assert not torch.equal(layer.weight, plain.language_model.model.layers[0].self_attn.q_proj.weight)
