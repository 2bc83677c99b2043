"""Checkpoint loading on the meta device: shards + index, target dtype, missing parts, broken files."""

from __future__ import annotations

import json

import pytest
import torch

from ufvideo.model import UFVideoForConditionalGeneration
from ufvideo.model.weights import INDEX_NAME, WEIGHTS_NAME, iter_tensors, save_sharded, weight_files


def _save(model: UFVideoForConditionalGeneration, directory, max_shard_bytes: int = 4 << 30, drop: str = "") -> None:
    model.config.save_pretrained(str(directory))
    items = ((k, v.detach().clone()) for k, v in model.state_dict().items() if not (drop and k.startswith(drop)))
    save_sharded(items, directory, max_shard_bytes)


def test_sharded_checkpoint_loads_straight_into_bfloat16(tiny, tmp_path) -> None:
    model, _ = tiny
    _save(model, tmp_path, max_shard_bytes=200_000)
    index = json.loads((tmp_path / INDEX_NAME).read_text())
    shards = sorted(set(index["weight_map"].values()))
    assert len(shards) > 2 and not (tmp_path / WEIGHTS_NAME).exists()
    assert weight_files(tmp_path) == [tmp_path / s for s in shards]
    loaded = UFVideoForConditionalGeneration.from_pretrained(tmp_path, dtype=torch.bfloat16)
    want = model.state_dict()
    got = loaded.state_dict()
    assert set(got) == set(want)
    for key, value in want.items():
        expected = value.to(torch.bfloat16) if value.is_floating_point() else value
        assert got[key].dtype == expected.dtype and torch.equal(got[key], expected), key
    assert not any(p.is_meta for p in loaded.parameters()) and not any(b.is_meta for b in loaded.buffers())
    frozen = {n for n, p in model.named_parameters() if not p.requires_grad}
    assert frozen == {n for n, p in loaded.named_parameters() if not p.requires_grad}


def test_missing_parts_get_a_fresh_init_only_when_not_strict(tiny, tmp_path) -> None:
    model, _ = tiny
    _save(model, tmp_path, drop="seg_projector.")
    with pytest.raises(ValueError, match=r"missing keys \['seg_projector.0.bias'"):
        UFVideoForConditionalGeneration.from_pretrained(tmp_path)
    loaded = UFVideoForConditionalGeneration.from_pretrained(tmp_path, strict=False)
    weight = loaded.seg_projector[0].weight
    assert not weight.is_meta and bool(torch.isfinite(weight).all()) and float(weight.detach().std()) > 0
    assert float(loaded.seg_projector[0].bias.detach().abs().sum()) == 0.0  # our Linear init: small normal, zero bias
    assert torch.equal(loaded.language_model.lm_head.weight, model.language_model.lm_head.weight)


def test_broken_files_are_named(tmp_path) -> None:
    (tmp_path / INDEX_NAME).write_text(json.dumps({"weight_map": {"a": "model-00001-of-00002.safetensors"}}))
    with pytest.raises(FileNotFoundError, match="model-00001-of-00002.safetensors"):
        weight_files(tmp_path)
    save_sharded([("x", torch.arange(6.0))], tmp_path / "one")
    path = tmp_path / "one" / WEIGHTS_NAME
    path.write_bytes(path.read_bytes()[:-8])
    with pytest.raises(ValueError, match=r"model.safetensors: tensor x is truncated"):
        list(iter_tensors(path))
