"""`ufvideo model convert` end to end on the full public layout of the tiny model, SAM2 memory included:
sharded source -> streamed shards + sam2_memory.safetensors + JSON report -> from_pretrained and the tracker."""

from __future__ import annotations

import json
import re

import torch
from safetensors.torch import save_file

from tests.model.test_convert import S, public_state
from ufvideo.model import UFVideoForConditionalGeneration
from ufvideo.model.convert import REPORT_FILE, target_state
from ufvideo.model.convert import convert as run
from ufvideo.model.propagation import build_video_model


def to_meta_memory(key: str) -> str:
    """Independent inverse for the memory modules, written from Meta's SAM2 names."""
    k = key
    k = re.sub(r"mask_downsampler\.layers\.(\d+)\.conv\.", lambda m: f"mask_downsampler.encoder.{3 * int(m[1])}.", k)
    k = re.sub(
        r"mask_downsampler\.layers\.(\d+)\.layer_norm\.", lambda m: f"mask_downsampler.encoder.{3 * int(m[1]) + 1}.", k
    )
    k = k.replace("mask_downsampler.final_conv.", "mask_downsampler.encoder.12.")
    k = re.sub(r"object_pointer_proj\.layers\.0\.", "obj_ptr_proj.layers.1.", k)
    for ours, meta in (
        ("object_pointer_proj.proj_in.", "obj_ptr_proj.layers.0."),
        ("object_pointer_proj.proj_out.", "obj_ptr_proj.layers.2."),
        ("no_object_pointer", "no_obj_ptr"),
        ("memory_temporal_positional_encoding", "maskmem_tpos_enc"),
        ("no_memory_positional_encoding", "no_mem_pos_enc"),
        ("memory_encoder.projection.", "memory_encoder.out_proj."),
        ("feature_projection", "pix_feat_proj"),
        ("memory_fuser", "fuser"),
        ("depthwise_conv", "dwconv"),
        ("pointwise_conv", "pwconv"),
        (".scale", ".gamma"),
        (".layer_norm", ".norm"),
        ("o_proj", "out_proj"),
    ):
        k = k.replace(ours, meta)
    return S + k


def test_release_layout_converts_completely_and_loads(released_tiny, tmp_path) -> None:
    model, _ = released_tiny
    _, _, memory_shapes = target_state(model)
    torch.manual_seed(1)
    memory = {k: torch.randn(v.shape) for k, v in memory_shapes.items()}
    public = public_state(model) | {to_meta_memory(k): v for k, v in memory.items()}
    public["model.vision_tower.vision_tower.vision_model.head.probe"] = torch.zeros(1, 1, 32)
    names = sorted(public)
    src = tmp_path / "release"
    src.mkdir()
    for i, part in enumerate((names[: len(names) // 2], names[len(names) // 2 :])):  # two shards, like the release
        save_file({k: public[k].contiguous() for k in part}, str(src / f"model-0000{i + 1}-of-00002.safetensors"))

    out = tmp_path / "converted"
    report = run(src, out, model=model, max_shard_bytes=300_000)
    assert report.unmapped == [] and report.mismatched == [] and report.missing == []
    assert report.memory_missing == [] and report.memory == len(memory_shapes)
    doc = json.loads((out / REPORT_FILE).read_text())
    assert [d["key"] for d in doc["dropped"]] == ["model.vision_tower.vision_tower.vision_model.head.probe"]
    assert "sam2_memory.safetensors" in doc["files"] and len(doc["files"]) > 3  # several model shards

    loaded = UFVideoForConditionalGeneration.from_pretrained(out)
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key
    video = build_video_model(loaded.sam, out / "sam2_memory.safetensors")
    assert video.memory_untrained == []
    own = video.state_dict()
    assert all(torch.equal(own[k], v) for k, v in memory.items())


def test_siglip_dir_fills_a_release_without_the_vision_tower(released_tiny, tmp_path) -> None:
    model, _ = released_tiny
    public = public_state(model)
    tower = "model.vision_tower.vision_tower.vision_model."
    src, siglip = tmp_path / "release", tmp_path / "siglip"
    src.mkdir()
    siglip.mkdir()
    save_file({k: v.contiguous() for k, v in public.items() if not k.startswith(tower)}, str(src / "model.safetensors"))
    vision = {"vision_model." + k[len(tower) :]: v.contiguous() for k, v in public.items() if k.startswith(tower)}
    save_file(
        vision | {"text_model.embeddings.token_embedding.weight": torch.zeros(2, 2)}, str(siglip / "m.safetensors")
    )

    without = run(src, tmp_path / "a", model=model)
    assert without.missing and all(k.startswith("vision_tower.") for k in without.missing)
    report = run(src, tmp_path / "b", siglip=siglip, model=model)
    assert report.missing == [] and report.unmapped == []
    assert [d["key"] for d in report.dropped] == ["siglip:text_model.embeddings.token_embedding.weight"]
    loaded = UFVideoForConditionalGeneration.from_pretrained(tmp_path / "b", strict=False)
    assert torch.equal(
        loaded.vision_tower.state_dict()["post_layernorm.weight"], model.vision_tower.post_layernorm.weight
    )
