"""Checkpoint conversion: public (UFVideo/VideoRefer + Meta SAM2) key layout -> ours."""

from __future__ import annotations

import re

import pytest
import torch

from ufvideo.cli import main
from ufvideo.model import UFVideoForConditionalGeneration
from ufvideo.model.convert import convert_state_dict

S = "model.mask_encoder.sam2_model."

LITERAL = {
    "model.layers.0.self_attn.q_proj.weight": "language_model.model.layers.0.self_attn.q_proj.weight",
    "model.embed_tokens.weight": "language_model.model.embed_tokens.weight",
    "lm_head.weight": "language_model.lm_head.weight",
    "model.mm_projector.s1.b1.conv1.conv.weight": "connector.s1.b1.conv1.conv.weight",
    "model.mm_projector.sampler.0.bias": "connector.sampler.0.bias",
    "model.region_encoder.feat_linear.2.weight": "region_encoder.feat_linear.2.weight",
    "model.text_hidden_fcs.0.2.bias": "seg_projector.2.bias",
    "model.vision_tower.vision_tower.vision_model.encoder.layers.0.mlp.fc1.weight": (
        "vision_tower.encoder.layers.0.mlp.fc1.weight"
    ),
    S + "sam_mask_decoder.transformer.layers.0.mlp.layers.1.weight": (
        "sam.mask_decoder.transformer.layers.0.mlp.proj_out.weight"
    ),
    S + "sam_mask_decoder.output_hypernetworks_mlps.2.layers.1.bias": (
        "sam.mask_decoder.output_hypernetworks_mlps.2.layers.0.bias"
    ),
    S + "sam_mask_decoder.iou_prediction_head.layers.2.weight": "sam.mask_decoder.iou_prediction_head.proj_out.weight",
    S + "sam_mask_decoder.transformer.layers.1.cross_attn_image_to_token.out_proj.weight": (
        "sam.mask_decoder.transformer.layers.1.cross_attn_image_to_token.o_proj.weight"
    ),
    S + "sam_mask_decoder.transformer.norm_final_attn.weight": (
        "sam.mask_decoder.transformer.layer_norm_final_attn.weight"
    ),
    S + "sam_mask_decoder.output_upscaling.1.weight": "sam.mask_decoder.upscale_layer_norm.weight",
    S + "image_encoder.trunk.blocks.3.norm1.weight": "sam.vision_encoder.backbone.blocks.3.layer_norm1.weight",
    S + "image_encoder.trunk.blocks.3.mlp.layers.0.weight": "sam.vision_encoder.backbone.blocks.3.mlp.proj_in.weight",
    S + "image_encoder.trunk.patch_embed.proj.weight": "sam.vision_encoder.backbone.patch_embed.projection.weight",
    S + "image_encoder.neck.convs.2.conv.bias": "sam.vision_encoder.neck.convs.2.bias",
    S + "sam_prompt_encoder.pe_layer.positional_encoding_gaussian_matrix": (
        "sam.prompt_encoder.shared_embedding.positional_embedding"
    ),
    S + "no_mem_embed": "sam.no_memory_embedding",
}


MEMORY_LITERAL = {
    "memory_attention.layers.0.self_attn.q_proj.weight": "memory_attention.layers.0.self_attn.q_proj.weight",
    "memory_attention.layers.3.cross_attn_image.out_proj.bias": (
        "memory_attention.layers.3.cross_attn_image.o_proj.bias"
    ),
    "memory_attention.layers.1.norm2.weight": "memory_attention.layers.1.layer_norm2.weight",
    "memory_attention.norm.bias": "memory_attention.layer_norm.bias",
    "memory_encoder.mask_downsampler.encoder.0.weight": "memory_encoder.mask_downsampler.layers.0.conv.weight",
    "memory_encoder.mask_downsampler.encoder.4.bias": "memory_encoder.mask_downsampler.layers.1.layer_norm.bias",
    "memory_encoder.mask_downsampler.encoder.12.weight": "memory_encoder.mask_downsampler.final_conv.weight",
    "memory_encoder.pix_feat_proj.weight": "memory_encoder.feature_projection.weight",
    "memory_encoder.fuser.layers.1.dwconv.weight": "memory_encoder.memory_fuser.layers.1.depthwise_conv.weight",
    "memory_encoder.fuser.layers.0.pwconv2.bias": "memory_encoder.memory_fuser.layers.0.pointwise_conv2.bias",
    "memory_encoder.fuser.layers.0.norm.weight": "memory_encoder.memory_fuser.layers.0.layer_norm.weight",
    "memory_encoder.fuser.layers.0.gamma": "memory_encoder.memory_fuser.layers.0.scale",
    "memory_encoder.out_proj.weight": "memory_encoder.projection.weight",
    "maskmem_tpos_enc": "memory_temporal_positional_encoding",
    "no_mem_pos_enc": "no_memory_positional_encoding",
    "no_obj_ptr": "no_object_pointer",
    "obj_ptr_proj.layers.0.weight": "object_pointer_proj.proj_in.weight",
    "obj_ptr_proj.layers.1.bias": "object_pointer_proj.layers.0.bias",
    "obj_ptr_proj.layers.2.weight": "object_pointer_proj.proj_out.weight",
    "mask_downsample.weight": "mask_downsample.weight",
}


def test_literal_public_keys_map_to_ours() -> None:
    state = {k: torch.zeros(1) for k in LITERAL}
    state.update({S + k: torch.zeros(1) for k in MEMORY_LITERAL})
    state["model.vision_tower.vision_tower.vision_model.head.probe"] = torch.zeros(1)
    state["model.something_new.weight"] = torch.zeros(1)
    for i in range(4):
        state[S + f"sam_prompt_encoder.point_embeddings.{i}.weight"] = torch.full((1, 2), float(i))
    out, memory, report = convert_state_dict(state)
    for public, ours in LITERAL.items():
        assert ours in out, (public, ours)
    assert sorted(memory) == sorted(MEMORY_LITERAL.values())
    assert out["sam.prompt_encoder.point_embed.weight"][:, 0].tolist() == [0.0, 1.0, 2.0, 3.0]
    assert "sam.shared_image_embedding.positional_embedding" in out
    assert report.unmapped == ["model.something_new.weight"]
    assert [d["key"] for d in report.dropped] == ["model.vision_tower.vision_tower.vision_model.head.probe"]
    assert "never used" in report.dropped[0]["reason"]


def to_public(key: str) -> list[str]:
    """Independent inverse of the conversion, written from the public naming (MODEL.md 6.2 item 8)."""
    if key.startswith("language_model.lm_head."):
        return [key.replace("language_model.", "", 1)]
    for ours, public in (
        ("language_model.model.", "model."),
        ("vision_tower.", "model.vision_tower.vision_tower.vision_model."),
        ("connector.", "model.mm_projector."),
        ("region_encoder.", "model.region_encoder."),
        ("seg_projector.", "model.text_hidden_fcs.0."),
    ):
        if key.startswith(ours):
            return [public + key[len(ours) :]]
    k = key.removeprefix("sam.")
    if k == "shared_image_embedding.positional_embedding":
        return []  # derived from the prompt encoder's copy
    if k == "prompt_encoder.point_embed.weight":
        return [S + f"sam_prompt_encoder.point_embeddings.{i}.weight" for i in range(4)]
    heads = r"(output_hypernetworks_mlps\.\d+|pred_obj_score_head|iou_prediction_head)"
    k = re.sub(heads + r"\.layers\.0\.", r"\1.layers.1.", k)
    k = re.sub(heads + r"\.proj_in", r"\1.layers.0", k)
    k = re.sub(heads + r"\.proj_out", r"\1.layers.2", k)
    k = k.replace("mlp.proj_in", "mlp.layers.0").replace("mlp.proj_out", "mlp.layers.1")
    for ours, public in (
        ("upscale_conv1", "output_upscaling.0"),
        ("upscale_layer_norm", "output_upscaling.1"),
        ("upscale_conv2", "output_upscaling.3"),
        ("mask_embed.conv1", "mask_downscaling.0"),
        ("mask_embed.layer_norm1", "mask_downscaling.1"),
        ("mask_embed.conv2", "mask_downscaling.3"),
        ("mask_embed.layer_norm2", "mask_downscaling.4"),
        ("mask_embed.conv3", "mask_downscaling.6"),
        ("shared_embedding.positional_embedding", "pe_layer.positional_encoding_gaussian_matrix"),
        ("vision_encoder.backbone.", "image_encoder.trunk."),
        ("vision_encoder.neck.", "image_encoder.neck."),
        ("patch_embed.projection", "patch_embed.proj"),
        ("no_memory_embedding", "no_mem_embed"),
        (".layer_norm", ".norm"),
        ("o_proj", "out_proj"),
        ("prompt_encoder.", "sam_prompt_encoder."),
        ("mask_decoder.", "sam_mask_decoder."),
    ):
        k = k.replace(ours, public)
    k = re.sub(r"(image_encoder\.neck\.convs\.\d+)\.", r"\1.conv.", k)
    return [S + k]


def public_state(model: UFVideoForConditionalGeneration) -> dict[str, torch.Tensor]:
    state = {}
    for key, value in model.state_dict().items():
        names = to_public(key)
        if len(names) == 4:
            state.update({n: value[i : i + 1].clone() for i, n in enumerate(names)})
        state.update({n: value.clone() for n in names if len(names) == 1})
    return state


def test_tiny_model_in_public_layout_converts_with_nothing_unmapped_or_missing(released_tiny) -> None:
    model, _ = released_tiny
    public = public_state(model)
    assert any(k.startswith(S + "sam_mask_decoder.") for k in public)
    converted, _, report = convert_state_dict(public, model.state_dict())
    assert report.unmapped == [] and report.missing == [] and report.dropped == [] and report.mismatched == []
    fresh = UFVideoForConditionalGeneration(model.config)
    fresh.load_state_dict(converted, strict=True)
    for key, value in model.state_dict().items():
        assert torch.equal(fresh.state_dict()[key], value), key


def test_cli_reports_unmapped_keys(tmp_path, capsys, monkeypatch) -> None:
    from safetensors.torch import save_file

    import ufvideo.model.convert as convert

    src = tmp_path / "src"
    src.mkdir()
    tensors = {"model.mm_projector.readout.0.bias": torch.zeros(3), "model.mystery": torch.zeros(1)}
    save_file(tensors, str(src / "a.safetensors"))
    code = main(["model", "convert", "--src", str(src), "--out", str(tmp_path / "out")])
    assert code == 1
    assert '"model.mystery"' in capsys.readouterr().out
    assert (tmp_path / "out" / "conversion_report.json").exists()
    with pytest.raises(FileNotFoundError, match="no \\*.safetensors"):
        list(convert.source_tensors(tmp_path))
