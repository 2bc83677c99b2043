"""Released UFVideo-7B / VideoRefer-7B checkpoints -> our layout (`ufvideo model convert --src DIR --out DIR`).

Public names (MODEL.md section 6.2, item 8): Qwen2 keys under `model.` / `lm_head.`, `model.vision_tower.
vision_tower.*`, `model.mm_projector.*`, `model.region_encoder.*`, `model.text_hidden_fcs.0.*` and Meta's SAM2
names under `model.mask_encoder.sam2_model.*`. SAM2 memory modules and the unused SigLIP head are dropped
(reported); anything else that does not map is reported as unmapped and not written.
"""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from ufvideo.files import umask_mode, write_json

SAM_PREFIX = "model.mask_encoder.sam2_model."
# Meta SAM2 modules that only video tracking with memory uses; per-frame decoding never reads them.
SAM_MEMORY_PARTS = (
    "memory_attention.",
    "memory_encoder.",
    "maskmem_tpos_enc",
    "no_mem_pos_enc",
    "obj_ptr_proj.",
    "obj_ptr_tpos_proj.",
    "no_obj_ptr",
    "no_obj_embed_spatial",
    "mask_downsample.",
)
PLAIN_PREFIXES = (
    ("model.vision_tower.vision_tower.vision_model.", "vision_tower."),  # transformers 5 dropped `vision_model.`
    ("model.mm_projector.", "connector."),
    ("model.region_encoder.", "region_encoder."),
    ("model.text_hidden_fcs.0.", "seg_projector."),
    ("lm_head.", "language_model.lm_head."),
    ("model.embed_tokens.", "language_model.model.embed_tokens."),
    ("model.layers.", "language_model.model.layers."),
    ("model.norm.", "language_model.model.norm."),
)
# Ordered substring rewrites from Meta's SAM2 names to transformers' (facts from transformers' converter).
SAM_RENAMES = (
    ("iou_prediction_head.layers.0", "iou_prediction_head.proj_in"),
    ("iou_prediction_head.layers.1", "iou_prediction_head.layers.0"),
    ("iou_prediction_head.layers.2", "iou_prediction_head.proj_out"),
    ("mask_decoder.output_upscaling.0", "mask_decoder.upscale_conv1"),
    ("mask_decoder.output_upscaling.1", "mask_decoder.upscale_layer_norm"),
    ("mask_decoder.output_upscaling.3", "mask_decoder.upscale_conv2"),
    ("mask_downscaling.0", "mask_embed.conv1"),
    ("mask_downscaling.1", "mask_embed.layer_norm1"),
    ("mask_downscaling.3", "mask_embed.conv2"),
    ("mask_downscaling.4", "mask_embed.layer_norm2"),
    ("mask_downscaling.6", "mask_embed.conv3"),
    ("point_embeddings", "point_embed"),
    ("pe_layer.positional_encoding_gaussian_matrix", "shared_embedding.positional_embedding"),
    ("sam_prompt_encoder", "prompt_encoder"),
    ("sam_mask_decoder", "mask_decoder"),
    ("image_encoder.neck", "vision_encoder.neck"),
    ("image_encoder.trunk.", "vision_encoder.backbone."),
    ("patch_embed.proj", "patch_embed.projection"),
    ("no_mem_embed", "no_memory_embedding"),
    (".norm", ".layer_norm"),
    ("out_proj", "o_proj"),
)
_THREE_LAYER = re.compile(r"(output_hypernetworks_mlps\.\d+|pred_obj_score_head)\.layers\.(\d)\.")
_TWO_LAYER = re.compile(r"((?:backbone\.blocks|transformer\.layers)\.\d+\.mlp)\.layers\.(\d)\.")
_NECK = re.compile(r"(vision_encoder\.neck\.convs\.\d+)\.conv\.")
_POINT = re.compile(r"prompt_encoder\.point_embed\.(\d)\.weight")


@dataclass
class ConversionReport:
    """What happened to every source key; `unmapped` must be empty for a faithful conversion."""

    mapped: int = 0
    dropped: list[str] = field(default_factory=list)
    unmapped: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)


def sam_key(meta_key: str) -> str:
    """One Meta SAM2 key (without the `sam2_model.` prefix) -> our `sam.` key."""
    key = meta_key
    for old, new in SAM_RENAMES:
        key = key.replace(old, new)
    key = _THREE_LAYER.sub(lambda m: f"{m.group(1)}.{('proj_in', 'layers.0', 'proj_out')[int(m.group(2))]}.", key)
    key = _TWO_LAYER.sub(lambda m: f"{m.group(1)}.{('proj_in', 'proj_out')[int(m.group(2))]}.", key)
    key = _NECK.sub(lambda m: f"{m.group(1)}.", key)
    return "sam." + key


def convert_state_dict(
    state: Mapping[str, torch.Tensor], expected: Iterable[str] | None = None
) -> tuple[dict[str, torch.Tensor], ConversionReport]:
    """Map a public-layout state dict onto ours; `expected` (our key names) fills `report.missing`."""
    report = ConversionReport()
    out: dict[str, torch.Tensor] = {}
    points: dict[int, torch.Tensor] = {}
    for key, value in state.items():
        new = _map_key(key, report)
        if new is None:
            continue
        point = _POINT.fullmatch(new.removeprefix("sam."))
        if point:
            points[int(point.group(1))] = value
        else:
            out[new] = value
        report.mapped += 1
    if points:
        out["sam.prompt_encoder.point_embed.weight"] = torch.cat([points[i] for i in sorted(points)], dim=0)
    pe = out.get("sam.prompt_encoder.shared_embedding.positional_embedding")
    if pe is not None:  # transformers keeps a second copy for the image-wide positional encoding
        out["sam.shared_image_embedding.positional_embedding"] = pe
    if expected is not None:
        report.missing = sorted(set(expected) - set(out))
        report.unmapped += sorted(k for k in out if k not in set(expected))
    return out, report


def _map_key(key: str, report: ConversionReport) -> str | None:
    if key.startswith(SAM_PREFIX):
        inner = key[len(SAM_PREFIX) :]
        if inner.startswith(SAM_MEMORY_PARTS):
            report.dropped.append(key)
            return None
        return sam_key(inner)
    if key.startswith("model.vision_tower.vision_tower.vision_model.head."):
        report.dropped.append(key)
        return None
    for old, new in PLAIN_PREFIXES:
        if key.startswith(old):
            return new + key[len(old) :]
    report.unmapped.append(key)
    return None


def load_checkpoint(src: Path) -> dict[str, torch.Tensor]:
    """All tensors of a HF-style checkpoint directory (safetensors shards, else pytorch_model*.bin)."""
    files = sorted(src.glob("*.safetensors"))
    loader: Callable[[Path], Mapping[str, torch.Tensor]] = lambda p: load_file(str(p))  # noqa: E731
    if not files:
        files = sorted(src.glob("pytorch_model*.bin"))
        loader = lambda p: torch.load(p, map_location="cpu", weights_only=True, mmap=True)  # noqa: E731
    if not files:
        raise FileNotFoundError(f"{src}: no *.safetensors or pytorch_model*.bin files")
    state: dict[str, torch.Tensor] = {}
    for path in files:
        state.update(loader(path))
    return state


def load_meta_sam2(path: Path) -> dict[str, torch.Tensor]:
    """Meta's `sam2_hiera_large.pt` re-keyed under the public `sam2_model.` prefix (for VideoRefer sources)."""
    raw = torch.load(path, map_location="cpu", weights_only=True)
    raw = raw.get("model", raw)
    return {SAM_PREFIX + k: v for k, v in raw.items()}


def run(src: str | Path, out: str | Path, sam_checkpoint: str | Path | None = None) -> ConversionReport:
    """Convert `src` into a directory `UFVideoForConditionalGeneration.from_pretrained(out, strict=False)` loads.

    Writes config.json (released 7B defaults), model.safetensors, the processor when `src` holds a Qwen2
    tokenizer, and conversion_report.json. Parts the source lacks (e.g. SAM2 and the `[SEG]` MLP of a
    VideoRefer checkpoint) are listed in `missing` and keep their fresh initialisation when loaded.
    """
    from ufvideo.model.builders import ufvideo_7b

    src, out = Path(src), Path(out)
    state = load_checkpoint(src)
    if sam_checkpoint is not None:
        state.update(load_meta_sam2(Path(sam_checkpoint)))
    model, _ = ufvideo_7b(device="meta")
    converted, report = convert_state_dict(state, model.state_dict().keys())
    out.mkdir(parents=True, exist_ok=True)
    model.config.save_pretrained(str(out))
    save_file({k: v.contiguous() for k, v in converted.items()}, str(out / "model.safetensors"))
    umask_mode(out / "model.safetensors")
    if (src / "tokenizer_config.json").exists():
        from ufvideo.model.processing import UFVideoProcessor
        from ufvideo.model.tokens import load_qwen2_tokenizer

        UFVideoProcessor.from_config(model.config, load_qwen2_tokenizer(src)).save_pretrained(out)
    write_json(out / "conversion_report.json", asdict(report))
    return report


def main(argv: list[str] | None = None) -> int:
    """CLI entry: prints the report; exit code 1 when some source key could not be mapped."""
    parser = argparse.ArgumentParser(prog="ufvideo model convert", description=__doc__.splitlines()[0])
    parser.add_argument("--src", required=True, help="released checkpoint directory")
    parser.add_argument("--out", required=True, help="output directory")
    parser.add_argument("--sam", default=None, help="Meta sam2_hiera_large.pt, for sources without SAM2")
    args = parser.parse_args(argv)
    report = run(args.src, args.out, args.sam)
    summary = {"mapped": report.mapped, "dropped": len(report.dropped), "missing": len(report.missing)}
    print(json.dumps({**summary, "unmapped": report.unmapped}, indent=2))
    return 1 if report.unmapped else 0
