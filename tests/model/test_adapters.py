"""Adapter checkpoints: what they hold, loading them merged (locally and from S3, base checked by digest), merged
forward equal to the adapted one, nested adapters, and the errors for a wrong or missing base or a foreign file."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from tests.adapters import SETTINGS, adapter_checkpoint, base_checkpoint
from ufvideo.checkpoint import CheckpointError, checkpoint_digest, publish
from ufvideo.model.adapters import ADAPTER_CONFIG, ADAPTER_WEIGHTS, ROWS, AdapterError, add_lora, load_adapter_state
from ufvideo.model.loader import load_checkpoint
from ufvideo.model.modeling import UFVideoForConditionalGeneration


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("adapters")
    base = base_checkpoint(root / "base")
    return base, adapter_checkpoint(base, root / "adapter")


def same_weights(a: torch.nn.Module, b: torch.nn.Module) -> list[str]:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    return [k for k in sa if not torch.equal(sa[k], sb[k])]


def test_adapter_checkpoint_holds_adapters_heads_and_rows_only(checkpoints) -> None:
    base, adapter = checkpoints
    assert not (adapter / "model.safetensors").exists()
    tensors = load_file(str(adapter / ADAPTER_WEIGHTS))
    prefixes = ("connector.", "region_encoder.", "seg_projector.", "sam.mask_decoder.", "video_norm.", "region_norm.")
    for key in tensors:
        assert ".lora_" in key or key.startswith(prefixes) or ":row" in key, key
    embed = tensors["language_model.model.embed_tokens.weight" + ROWS]
    assert embed.shape[0] == 102  # <region>, 100 temporal tokens, [SEG]: not the vocabulary
    assert (adapter / ADAPTER_WEIGHTS).stat().st_size < 0.3 * (base / "model.safetensors").stat().st_size
    document = json.loads((adapter / ADAPTER_CONFIG).read_text())
    assert document["base"]["digest"] == checkpoint_digest(base) and document["lora"]["rank"] == SETTINGS.rank


def test_loaded_adapter_is_merged_and_computes_what_the_adapted_model_does(checkpoints) -> None:
    base, adapter = checkpoints
    merged, _ = load_checkpoint(adapter)
    assert not any("lora_" in name for name, _ in merged.named_parameters())
    plain, _ = load_checkpoint(base)
    assert same_weights(merged, plain), "the adapter changed nothing"

    adapted = UFVideoForConditionalGeneration.from_pretrained(base)
    add_lora(adapted, SETTINGS, trainable=False)
    load_adapter_state(adapted, adapter)
    ids = torch.tensor([[1, 5, 9, 12, 30, 7]])
    with torch.no_grad():
        want = adapted.language_model(input_ids=ids).logits
        got = merged.language_model(input_ids=ids).logits
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def test_adapter_and_base_load_from_s3(checkpoints, s3_bucket: str, tmp_path: Path, monkeypatch) -> None:
    base, _ = checkpoints
    monkeypatch.setenv("UFVIDEO_CHECKPOINT_CACHE", str(tmp_path / "cache"))
    base_uri = f"{s3_bucket}/base"
    publish(base, base_uri)
    adapter = adapter_checkpoint(base, tmp_path / "adapter", base_uri=base_uri)
    adapter_uri = f"{s3_bucket}/adapter"
    digest = publish(adapter, adapter_uri)
    from_s3, processor = load_checkpoint(adapter_uri, key=digest)
    local, _ = load_checkpoint(adapter)  # its recorded base is the S3 one, read through the same cache
    assert not same_weights(from_s3, local) and processor.seg_token_id == from_s3.config.seg_token_id
    cached = sorted(p.name for p in (tmp_path / "cache").iterdir() if not p.name.startswith("."))
    assert cached == sorted([digest[:32], checkpoint_digest(base)[:32]])


def test_a_base_with_other_weights_or_none_at_all_is_refused(checkpoints, tmp_path: Path) -> None:
    base, adapter = checkpoints
    other = base_checkpoint(tmp_path / "other", seed=3)
    with pytest.raises(CheckpointError, match="but the adapter was trained on"):
        load_checkpoint(adapter, base=str(other))
    moved = tmp_path / "moved"
    shutil.copytree(adapter, moved)
    document = json.loads((moved / ADAPTER_CONFIG).read_text())
    document["base"]["uri"] = str(tmp_path / "gone")
    (moved / ADAPTER_CONFIG).write_text(json.dumps(document))
    with pytest.raises(CheckpointError, match=r"does not exist here; pass the base's location \(--base URI\)"):
        load_checkpoint(moved)
    relocated = tmp_path / "relocated"
    shutil.copytree(base, relocated)
    assert not same_weights(load_checkpoint(moved, base=str(relocated))[0], load_checkpoint(adapter)[0])


def test_an_adapter_over_an_adapter_nests(checkpoints, tmp_path: Path) -> None:
    _, adapter = checkpoints
    second = adapter_checkpoint(adapter, tmp_path / "second", seed=2)
    first_merged, _ = load_checkpoint(adapter)
    merged, _ = load_checkpoint(second)
    assert same_weights(merged, first_merged)


def test_an_adapter_file_of_another_model_is_refused_by_name(checkpoints, tmp_path: Path) -> None:
    _, adapter = checkpoints
    broken = tmp_path / "broken"
    shutil.copytree(adapter, broken)
    tensors = load_file(str(broken / ADAPTER_WEIGHTS))
    key = next(k for k in tensors if ".lora_A." in k)
    tensors[key] = torch.zeros(7, tensors[key].shape[1])
    save_file(tensors, str(broken / ADAPTER_WEIGHTS))
    with pytest.raises(AdapterError, match=rf"{key.replace('.', '[.]')} has shape \(7,"):
        load_checkpoint(broken)


def test_model_merge_cli_writes_a_full_checkpoint_and_refuses_a_full_one(checkpoints, tmp_path: Path, capsys) -> None:
    from ufvideo.checkpoint import read_info
    from ufvideo.cli import main

    base, adapter = checkpoints
    out = tmp_path / "merged"
    for _ in range(2):  # a second merge replaces the first in place
        assert main(["model", "merge", "--adapter", str(adapter), "--out", str(out), "--base", str(base)]) == 0
        printed = json.loads(capsys.readouterr().out)
    assert printed["checkpoint"]["digest"] == checkpoint_digest(out)
    assert read_info(out)["merged_from"]["base"] == {"uri": str(base), "digest": checkpoint_digest(base)}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["merged"]  # no staging or old copy left behind
    assert not same_weights(load_checkpoint(out)[0], load_checkpoint(adapter)[0])
    assert main(["model", "merge", "--adapter", str(base), "--out", str(tmp_path / "x")]) == 2
    assert "not an adapter checkpoint (no adapter_config.json)" in capsys.readouterr().err
