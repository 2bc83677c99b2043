"""Released UFVideo-7B / VideoRefer-7B checkpoints -> our layout (`ufvideo model convert --src DIR --out DIR`).

Public names (MODEL.md section 6.2, item 8): Qwen2 keys under `model.` / `lm_head.`, `model.vision_tower.
vision_tower.*`, `model.mm_projector.*`, `model.region_encoder.*`, `model.text_hidden_fcs.0.*` and Meta's SAM2
names under `model.mask_encoder.sam2_model.*`. SAM2's memory modules go to `sam2_memory.safetensors` in the names
transformers' `Sam2VideoModel` uses (what `mask_mode="propagate"` loads); only the unused SigLIP pooling head is
dropped. Conversion streams tensor by tensor into output shards: no second copy of the model is ever held.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file

from ufvideo.files import umask_mode, write_json
from ufvideo.model.weights import iter_tensors, save_sharded

SAM_PREFIX = "model.mask_encoder.sam2_model."
SIGLIP_PREFIX = "model.vision_tower.vision_tower.vision_model."
MEMORY_FILE = "sam2_memory.safetensors"  # = propagation.MEMORY_WEIGHTS_NAME
REPORT_FILE = "conversion_report.json"
# Meta SAM2 modules that only video tracking with memory uses (per-frame decoding never reads them).
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
HEAD_REASON = "SigLIP pooling head: UFVideo reads layer -2 patch features, the head is never used"
PLAIN_PREFIXES = (
    (SIGLIP_PREFIX, "vision_tower."),  # transformers 5 dropped `vision_model.`
    ("model.mm_projector.", "connector."),
    ("model.region_encoder.", "region_encoder."),
    ("model.text_hidden_fcs.0.", "seg_projector."),
    ("lm_head.", "language_model.lm_head."),
    ("model.embed_tokens.", "language_model.model.embed_tokens."),
    ("model.layers.", "language_model.model.layers."),
    ("model.norm.", "language_model.model.norm."),
)
# Ordered substring rewrites from Meta's SAM2 names to transformers' (facts from transformers' converters).
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
# The memory modules' own renames, applied before SAM_RENAMES (longer names first).
MEMORY_RENAMES = (
    ("obj_ptr_tpos_proj", "temporal_positional_encoding_projection_layer"),
    ("no_obj_embed_spatial", "occlusion_spatial_embedding_parameter"),
    ("maskmem_tpos_enc", "memory_temporal_positional_encoding"),
    ("no_mem_pos_enc", "no_memory_positional_encoding"),
    ("obj_ptr", "object_pointer"),
    ("dwconv", "depthwise_conv"),
    ("pwconv", "pointwise_conv"),
    ("fuser", "memory_fuser"),
    ("gamma", "scale"),
    ("pix_feat_proj", "feature_projection"),
)
_THREE_LAYER = re.compile(r"(output_hypernetworks_mlps\.\d+|pred_obj_score_head|object_pointer_proj)\.layers\.(\d)\.")
_TWO_LAYER = re.compile(r"((?:backbone\.blocks|transformer\.layers)\.\d+\.mlp)\.layers\.(\d)\.")
_NECK = re.compile(r"(vision_encoder\.neck\.convs\.\d+)\.conv\.")
_POINT = re.compile(r"prompt_encoder\.point_embed\.(\d)\.weight")
_DOWNSAMPLER = re.compile(r"mask_downsampler\.encoder\.(\d+)\.")


@dataclass
class ConversionReport:
    """What happened to every source key; `unmapped` and `mismatched` must be empty for a faithful conversion."""

    mapped: int = 0
    memory: int = 0
    dropped: list[dict[str, str]] = field(default_factory=list)  # {"key", "reason"}
    unmapped: list[str] = field(default_factory=list)
    mismatched: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    memory_missing: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)

    def drop(self, key: str, reason: str) -> None:
        self.dropped.append({"key": key, "reason": reason})


def sam_key(meta_key: str) -> str:
    """One Meta SAM2 image-model key (without the `sam2_model.` prefix) -> our `sam.` key."""
    return "sam." + _sam_rename(meta_key)


def memory_key(meta_key: str) -> str:
    """One Meta SAM2 memory key (without the prefix) -> its `Sam2VideoModel` name."""
    key = meta_key
    for old, new in MEMORY_RENAMES:
        key = key.replace(old, new)
    key = _sam_rename(key).replace("memory_encoder.o_proj.", "memory_encoder.projection.")

    def downsampler(match: re.Match[str]) -> str:
        n = int(match.group(1))
        if n == 12:
            return "mask_downsampler.final_conv."
        return f"mask_downsampler.layers.{n // 3}.{'conv' if n % 3 == 0 else 'layer_norm'}."

    return _DOWNSAMPLER.sub(downsampler, key)


def _sam_rename(key: str) -> str:
    for old, new in SAM_RENAMES:
        key = key.replace(old, new)
    key = _THREE_LAYER.sub(lambda m: f"{m.group(1)}.{('proj_in', 'layers.0', 'proj_out')[int(m.group(2))]}.", key)
    key = _TWO_LAYER.sub(lambda m: f"{m.group(1)}.{('proj_in', 'proj_out')[int(m.group(2))]}.", key)
    return _NECK.sub(lambda m: f"{m.group(1)}.", key)


def route(key: str) -> tuple[str, str]:
    """(where, name): where is "model", "memory", "dropped" (name = the reason) or "unmapped"."""
    if key.startswith(SAM_PREFIX):
        inner = key[len(SAM_PREFIX) :]
        if inner.startswith(SAM_MEMORY_PARTS):
            return "memory", memory_key(inner)
        return "model", sam_key(inner)
    if key.startswith(SIGLIP_PREFIX + "head."):
        return "dropped", HEAD_REASON
    for old, new in PLAIN_PREFIXES:
        if key.startswith(old):
            return "model", new + key[len(old) :]
    return "unmapped", key


class _Converter:
    """Maps (public key, tensor) pairs one at a time, checking names and shapes against the target model."""

    def __init__(self, expected: Mapping[str, Any] | None, expected_memory: Mapping[str, Any] | None) -> None:
        self.expected, self.expected_memory = expected, expected_memory
        self.report = ConversionReport()
        self.memory: dict[str, torch.Tensor] = {}
        self.written: set[str] = set()
        self.points: dict[int, torch.Tensor] = {}

    def model_tensors(self, items: Iterable[tuple[str, torch.Tensor]]) -> Iterator[tuple[str, torch.Tensor]]:
        """Model tensors in our names (memory tensors are kept aside in `self.memory`)."""
        for key, value in items:
            where, name = route(key)
            if where == "dropped":
                self.report.drop(key, name)
            elif where == "unmapped":
                self.report.unmapped.append(key)
            elif where == "memory":
                if self._fits(key, name, value, self.expected_memory):
                    self.memory[name] = value
                    self.report.memory += 1
            elif name in self.written:
                self.report.drop(key, "duplicate: the checkpoint already gave this tensor")
            else:
                point = _POINT.fullmatch(name.removeprefix("sam."))
                if point:  # transformers keeps SAM's 4 point embeddings as one matrix: emitted at the end
                    self.points[int(point.group(1))] = value
                    self.report.mapped += 1
                    continue
                yield from self._emit(key, name, value)
        if self.points:
            stacked = torch.cat([self.points[i] for i in sorted(self.points)], dim=0)
            yield from self._emit("<point_embeddings>", "sam.prompt_encoder.point_embed.weight", stacked, count=False)

    def _emit(self, key: str, name: str, value: torch.Tensor, count: bool = True) -> Iterator[tuple[str, torch.Tensor]]:
        if not self._fits(key, name, value, self.expected):
            return
        self.report.mapped += int(count)
        self.written.add(name)
        yield name, value
        if name == "sam.prompt_encoder.shared_embedding.positional_embedding":
            # transformers keeps a second copy for the image-wide positional encoding
            self.written.add("sam.shared_image_embedding.positional_embedding")
            yield "sam.shared_image_embedding.positional_embedding", value.clone()

    def _fits(self, key: str, name: str, value: torch.Tensor, expected: Mapping[str, Any] | None) -> bool:
        if expected is None:
            return True
        if name not in expected:
            self.report.unmapped.append(f"{key} -> {name}")
            return False
        if tuple(expected[name].shape) != tuple(value.shape):
            self.report.mismatched.append(f"{key}: {tuple(value.shape)} vs {name} {tuple(expected[name].shape)}")
            return False
        return True

    def finish(self) -> ConversionReport:
        if self.expected is not None:
            self.report.missing = sorted(set(self.expected) - self.written)
        if self.expected_memory is not None:
            self.report.memory_missing = sorted(set(self.expected_memory) - set(self.memory))
        return self.report


def convert_state_dict(
    state: Mapping[str, torch.Tensor],
    expected: Mapping[str, Any] | None = None,
    expected_memory: Mapping[str, Any] | None = None,
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor], ConversionReport]:
    """In memory: (model tensors, SAM2 memory tensors, report). `expected` / `expected_memory` (name -> anything
    with `.shape`, e.g. a meta state dict) check names and shapes and fill `missing` / `memory_missing`."""
    converter = _Converter(expected, expected_memory)
    model = dict(converter.model_tensors(state.items()))
    return model, converter.memory, converter.finish()


def source_tensors(src: Path) -> Iterator[tuple[str, torch.Tensor]]:
    """Every tensor of a HF-style checkpoint directory, one at a time (safetensors, else pytorch_model*.bin)."""
    files = sorted(src.glob("*.safetensors"))
    if files:
        for path in files:
            yield from iter_tensors(path)
        return
    files = sorted(src.glob("pytorch_model*.bin"))
    if not files:
        raise FileNotFoundError(f"{src}: no *.safetensors or pytorch_model*.bin files")
    for path in files:
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        yield from state.items()
        del state


def meta_sam2_tensors(path: Path) -> Iterator[tuple[str, torch.Tensor]]:
    """Meta's `sam2_hiera_large.pt` under the public `sam2_model.` prefix (for VideoRefer sources)."""
    raw = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    for key, value in raw.get("model", raw).items():
        yield SAM_PREFIX + key, value


def siglip_tensors(directory: Path, have: set[str], report: ConversionReport) -> Iterator[tuple[str, torch.Tensor]]:
    """A local SigLIP checkpoint's vision tower in the public layout, for releases that lack it.

    Only tensors the release did not give are used; the text tower and logit scale/bias are reported dropped.
    """
    for key, value in source_tensors(directory):
        inner = key.removeprefix("siglip.")
        if not inner.startswith("vision_model."):
            report.drop(f"siglip:{key}", "SigLIP text tower / logit scale: not part of UFVideo")
            continue
        public = SIGLIP_PREFIX + inner[len("vision_model.") :]
        if public in have:
            report.drop(f"siglip:{key}", "the release has this tensor; --siglip only fills what it lacks")
            continue
        yield public, value


def target_state(model: Any = None) -> tuple[Any, dict[str, Any], dict[str, Any]]:
    """(model, its state dict, the SAM2 memory state dict) of the conversion target (default: the 7B on meta)."""
    from ufvideo.model.propagation import TiedSam2VideoModel, memory_keys, video_config

    if model is None:
        from ufvideo.model.builders import ufvideo_7b

        model, _ = ufvideo_7b(device="meta")
    with torch.device("meta"):
        video = TiedSam2VideoModel(video_config(model.sam.config))
    video_state = video.state_dict()
    memory = {k: video_state[k] for k in memory_keys(video, model.sam)}
    return model, model.state_dict(), memory


@dataclass
class ModelConvertConfig:
    """The convert-model step: the released checkpoint `src`, the output `out`, and the optional extra sources of
    parts the release lacks (Meta's SAM2 `.pt`, a SigLIP directory)."""

    src: str
    out: str
    sam: str | None = None
    siglip: str | None = None
    max_shard_bytes: int = 4 << 30


def run(cfg: ModelConvertConfig) -> ConversionReport:
    """The convert-model step: `convert` with the config's paths; returns the report (also in `out`)."""
    return convert(cfg.src, cfg.out, cfg.sam, cfg.siglip, max_shard_bytes=cfg.max_shard_bytes)


def summary(report: ConversionReport, out: str | Path) -> dict[str, Any]:
    """The report's counts (what the CLI prints); unmapped and mismatched keys are listed in full."""
    return {
        "mapped": report.mapped,
        "memory": report.memory,
        "dropped": len(report.dropped),
        "missing": len(report.missing),
        "memory_missing": len(report.memory_missing),
        "unmapped": report.unmapped,
        "mismatched": report.mismatched,
        "report": str(Path(out) / REPORT_FILE),
    }


def convert(
    src: str | Path,
    out: str | Path,
    sam_checkpoint: str | Path | None = None,
    siglip: str | Path | None = None,
    model: Any = None,
    max_shard_bytes: int = 4 << 30,
) -> ConversionReport:
    """Convert `src` into a directory `UFVideoForConditionalGeneration.from_pretrained(out)` loads.

    Writes config.json (the released 7B unless `model` names another target), model shards (+ index),
    sam2_memory.safetensors, the processor when `src` holds a Qwen2 tokenizer, and conversion_report.json.
    Parts the source lacks (e.g. SAM2 and the `[SEG]` MLP of a VideoRefer checkpoint) are listed in `missing`
    and get a fresh initialisation when loaded with strict=False.
    """
    src, out = Path(src), Path(out)
    model, expected, expected_memory = target_state(model)
    converter = _Converter(expected, expected_memory)
    release_keys: set[str] = set()

    def public() -> Iterator[tuple[str, torch.Tensor]]:
        for key, value in source_tensors(src):
            release_keys.add(key)
            yield key, value
        if sam_checkpoint is not None:
            yield from meta_sam2_tensors(Path(sam_checkpoint))
        if siglip is not None:
            yield from siglip_tensors(Path(siglip), release_keys, converter.report)

    out.mkdir(parents=True, exist_ok=True)
    model.config.save_pretrained(str(out))
    files = save_sharded(converter.model_tensors(public()), out, max_shard_bytes)
    report = converter.finish()
    if converter.memory:
        save_file({k: v.contiguous() for k, v in converter.memory.items()}, str(out / MEMORY_FILE))
        files.append(out / MEMORY_FILE)
    for path in files:
        umask_mode(path)
    report.files = [p.name for p in files]
    if (src / "tokenizer_config.json").exists():
        from ufvideo.model.processing import UFVideoProcessor
        from ufvideo.model.tokens import load_qwen2_tokenizer

        UFVideoProcessor.from_config(model.config, load_qwen2_tokenizer(src)).save_pretrained(out)
    write_json(out / REPORT_FILE, asdict(report))
    return report
