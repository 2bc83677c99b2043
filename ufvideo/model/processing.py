"""`UFVideoProcessor`: conversations + decoded frames + masks -> the tensors `UFVideoForConditionalGeneration` eats.

The processor expands `<video>` into exactly as many placeholder ids as the connector yields and each
`<region>` into as many region ids as that region gets tokens, so the model splices features with one
masked scatter per modality. Frames arrive already sampled (numpy uint8, (T, H, W, 3)); masks are numpy bool.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from transformers import AutoTokenizer, PretrainedConfig, PreTrainedTokenizerBase

from ufvideo.data.schema import REGION_TOKEN, SEG_TOKEN, VIDEO_TOKEN
from ufvideo.model.configuration import UFVideoConfig
from ufvideo.model.tokens import DEFAULT_SYSTEM_PROMPT, chatml_segments, clean_generation, special_token_ids

log = logging.getLogger(__name__)

IGNORE_INDEX = -100
PROCESSOR_FILE = "processor_config.json"
SIGLIP_MEAN, SIGLIP_STD = (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)
SAM_MEAN, SAM_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)  # ImageNet, i.e. 123.675/58.395 in 0..255

Turns = Sequence[Mapping[str, str]]
FrameMasks = Mapping[int, "np.ndarray | None"]
_EMPTY_REGION_WARNED: list[bool] = []  # a list, so the module-level flag is set without `global`


@dataclass
class ProcessorSettings:
    """Everything besides the tokenizer that the processor needs; saved as `processor_config.json`."""

    num_frames: int
    image_size: int
    patch_grid: int
    sam_image_size: int
    region_token_num: int
    num_video_tokens: int
    video_token_id: int
    system_prompt: str = DEFAULT_SYSTEM_PROMPT

    @classmethod
    def from_config(cls, config: UFVideoConfig) -> ProcessorSettings:
        return cls(
            num_frames=config.num_frames,
            image_size=config.image_size,
            patch_grid=config.patch_grid,
            sam_image_size=config.sam_image_size,
            region_token_num=config.region_token_num,
            num_video_tokens=config.num_video_tokens(),
            video_token_id=config.video_token_id,
        )


class UFVideoProcessor:
    """Turns samples into model inputs; see `__call__` for the argument and output contract."""

    def __init__(self, tokenizer: PreTrainedTokenizerBase, settings: ProcessorSettings) -> None:
        self.tokenizer = tokenizer
        self.settings = settings
        ids = special_token_ids(tokenizer)
        self.region_token_id, self.seg_token_id = ids["region_token_id"], ids["seg_token_id"]
        self.pad_token_id = ids["pad_token_id"]

    @classmethod
    def from_config(cls, config: UFVideoConfig, tokenizer: PreTrainedTokenizerBase) -> UFVideoProcessor:
        return cls(tokenizer, ProcessorSettings.from_config(config))

    def save_pretrained(self, directory: str | Path) -> None:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.tokenizer.save_pretrained(str(directory))
        (directory / PROCESSOR_FILE).write_text(json.dumps(asdict(self.settings), indent=2) + "\n")

    @classmethod
    def from_pretrained(cls, directory: str | Path) -> UFVideoProcessor:
        directory = Path(directory)
        settings = ProcessorSettings(**json.loads((directory / PROCESSOR_FILE).read_text()))
        # The tokenizer files name their own class; an empty config stops AutoTokenizer from reading our model's
        # config.json (an unregistered model type, which transformers warns about on every load).
        tokenizer = AutoTokenizer.from_pretrained(str(directory), local_files_only=True, config=PretrainedConfig())
        return cls(tokenizer, settings)

    # ---- main entry -----------------------------------------------------------------------------------------
    def __call__(
        self,
        conversations: Sequence[Turns],
        videos: Sequence[np.ndarray],
        regions: Sequence[Sequence[FrameMasks] | None] | None = None,
        key_frames: Sequence[np.ndarray | None] | None = None,
        targets: Sequence[Sequence[FrameMasks] | None] | None = None,
        sam_frames: Sequence[np.ndarray | None] | None = None,
        region_mode: str = "multi",
        add_generation_prompt: bool = False,
    ) -> dict[str, Any]:
        """Batch `len(conversations)` samples.

        conversations[b]: `[{"from": "human"|"gpt", "value": str}, ...]`; with `add_generation_prompt` a
            trailing gpt turn is dropped and the prompt ends with the assistant header.
        videos[b]: uint8 (T, H, W, 3), T <= num_frames (1 frame = an image, tiled; fewer = padded with black).
        regions[b]: one `{frame: bool (H, W)}` per `<region>`, frames indexing `key_frames[b]` (default: the video).
        targets[b]: one `{frame: bool (H, W) | None}` per `[SEG]`, frames indexing `sam_frames[b]` (default:
            the video, and then only the frames that some target names go to SAM).
        region_mode: "multi" (all annotated frames, <= region_token_num tokens) or "single" (first frame only).

        Returns input_ids, attention_mask, labels (unless add_generation_prompt), pixel_values (B, T, 3, S, S),
        region_pixel_values (F, 3, S, S), region_masks (M, g*g), region_frame_ids (M,), region_object_ids (M,),
        sam_pixel_values (N, 3, R, R), sam_frame_counts (B,), sam_sizes (B, 2) and, with targets,
        target_masks / target_valid: per sample (objects, frames, H, W) bool / (objects, frames) bool.
        """
        if region_mode not in ("multi", "single"):
            raise ValueError(f"region_mode={region_mode!r} is not supported; allowed: multi, single")
        n = len(conversations)
        if len(videos) != n:
            raise ValueError(f"got {n} conversations but {len(videos)} videos")
        regions, key_frames = _per_sample(regions, n, "regions"), _per_sample(key_frames, n, "key_frames")
        targets, sam_frames = _per_sample(targets, n, "targets"), _per_sample(sam_frames, n, "sam_frames")
        out: dict[str, Any] = {"pixel_values": torch.stack([self._video_pixels(v, b) for b, v in enumerate(videos)])}
        region_inputs, region_counts = self._regions(videos, regions, key_frames, region_mode)
        out.update(region_inputs)
        out.update(self._sam(videos, targets, sam_frames))
        rows = [
            self._tokenize(conv, region_counts[b], len(targets[b] or []), add_generation_prompt, b)
            for b, conv in enumerate(conversations)
        ]
        out.update(self._pad(rows, with_labels=not add_generation_prompt))
        return out

    def decode(self, token_ids: Sequence[int]) -> str:
        """Generated ids -> answer text, temporal tokens and `[SEG]` kept."""
        return clean_generation(self.tokenizer.decode(list(token_ids), skip_special_tokens=False))

    # ---- text -----------------------------------------------------------------------------------------------
    def _tokenize(
        self, conversation: Turns, region_counts: list[int], n_targets: int, generation: bool, b: int
    ) -> tuple[list[int], list[int]]:
        turns = _place_video_token(conversation, b)
        if generation and turns[-1]["from"] == "gpt":
            turns = turns[:-1]
        n_seg = sum(t["value"].count(SEG_TOKEN) for t in turns if t["from"] == "gpt")
        if not generation and n_targets and n_seg != n_targets:
            raise ValueError(f"sample {b}: {n_seg} '{SEG_TOKEN}' in the answers but {n_targets} targets")
        n_regions = sum(t["value"].count(REGION_TOKEN) for t in turns)
        if n_regions != len(region_counts):
            raise ValueError(f"sample {b}: {n_regions} '{REGION_TOKEN}' in the text but {len(region_counts)} regions")
        ids: list[int] = []
        labels: list[int] = []
        for text, supervised in chatml_segments(turns, self.settings.system_prompt, generation):
            piece = self._encode_piece(text)
            ids += piece
            labels += piece if supervised else [IGNORE_INDEX] * len(piece)
        return self._expand_regions(ids, labels, region_counts)

    def _encode_piece(self, text: str) -> list[int]:
        parts = text.split(VIDEO_TOKEN)
        ids = self.tokenizer(parts[0], add_special_tokens=False).input_ids if parts[0] else []
        for part in parts[1:]:
            ids += [self.settings.video_token_id] * self.settings.num_video_tokens
            ids += self.tokenizer(part, add_special_tokens=False).input_ids if part else []
        return ids

    def _expand_regions(self, ids: list[int], labels: list[int], counts: list[int]) -> tuple[list[int], list[int]]:
        out_ids: list[int] = []
        out_labels: list[int] = []
        k = 0
        for token, label in zip(ids, labels):
            if token == self.region_token_id:
                out_ids += [token] * counts[k]
                out_labels += [IGNORE_INDEX] * counts[k]
                k += 1
            else:
                out_ids.append(token)
                out_labels.append(IGNORE_INDEX if token == self.settings.video_token_id else label)
        return out_ids, out_labels

    def _pad(self, rows: list[tuple[list[int], list[int]]], with_labels: bool) -> dict[str, torch.Tensor]:
        length = max(len(ids) for ids, _ in rows)
        input_ids = torch.full((len(rows), length), self.pad_token_id, dtype=torch.long)
        labels = torch.full((len(rows), length), IGNORE_INDEX, dtype=torch.long)
        attention = torch.zeros((len(rows), length), dtype=torch.long)
        for b, (ids, lab) in enumerate(rows):
            input_ids[b, : len(ids)] = torch.tensor(ids, dtype=torch.long)
            labels[b, : len(lab)] = torch.tensor(lab, dtype=torch.long)
            attention[b, : len(ids)] = 1
        out = {"input_ids": input_ids, "attention_mask": attention}
        if with_labels:
            out["labels"] = labels
        return out

    # ---- pixels ---------------------------------------------------------------------------------------------
    def _video_pixels(self, video: np.ndarray, b: int) -> torch.Tensor:
        frames = _check_frames(video, f"videos[{b}]")
        t, want = frames.shape[0], self.settings.num_frames
        if t > want:
            raise ValueError(f"videos[{b}] has {t} frames; sample exactly {want} (or fewer, padded) before processing")
        pixels = resize_normalize(frames, self.settings.image_size, SIGLIP_MEAN, SIGLIP_STD, "bicubic")
        if t == 1:
            return pixels.expand(want, -1, -1, -1).clone()
        if t < want:
            black = resize_normalize(np.zeros_like(frames[:1]), self.settings.image_size, SIGLIP_MEAN, SIGLIP_STD)
            pixels = torch.cat([pixels, black.expand(want - t, -1, -1, -1)])
        return pixels

    def _regions(
        self, videos: Sequence[np.ndarray], regions: list, key_frames: list, mode: str
    ) -> tuple[dict[str, torch.Tensor], list[list[int]]]:
        frames_out, masks, frame_ids, object_ids, counts = [], [], [], [], []
        obj = 0
        grid = self.settings.patch_grid
        for b, sample_regions in enumerate(regions):
            source = videos[b] if key_frames[b] is None else key_frames[b]
            index: dict[int, int] = {}
            sample_counts = []
            for r, region in enumerate(sample_regions or []):
                keys = sorted(int(k) for k in region)
                if not keys:
                    raise ValueError(f"regions[{b}][{r}] has no annotated frame")
                keys = keys[:1] if mode == "single" else keys
                for key in keys:
                    if not 0 <= key < len(source):
                        raise ValueError(f"regions[{b}][{r}]: frame {key} outside the {len(source)} key frames")
                    if key not in index:
                        index[key] = len(frames_out)
                        frames_out.append(source[key])
                    masks.append(mask_to_grid(_mask(region, key, f"regions[{b}][{r}]"), grid))
                    frame_ids.append(index[key])
                    object_ids.append(obj)
                sample_counts.append(max(1, min(len(keys), self.settings.region_token_num)))
                obj += 1
            counts.append(sample_counts)
        size = self.settings.image_size
        pixels = (
            resize_normalize(np.stack(frames_out), size, SIGLIP_MEAN, SIGLIP_STD, "bicubic")
            if frames_out
            else torch.zeros(0, 3, size, size)
        )
        return {
            "region_pixel_values": pixels,
            "region_masks": torch.stack(masks) if masks else torch.zeros(0, grid * grid),
            "region_frame_ids": torch.tensor(frame_ids, dtype=torch.long),
            "region_object_ids": torch.tensor(object_ids, dtype=torch.long),
        }, counts

    def _sam(self, videos: Sequence[np.ndarray], targets: list, sam_frames: list) -> dict[str, Any]:
        size = self.settings.sam_image_size
        pixels, counts, sizes, target_masks, target_valid = [], [], [], [], []
        for b, sample_targets in enumerate(targets):
            if sam_frames[b] is not None:
                frames = _check_frames(sam_frames[b], f"sam_frames[{b}]")
                keys = list(range(len(frames)))
            elif sample_targets:
                frames = _check_frames(videos[b], f"videos[{b}]")
                keys = sorted({int(k) for t in sample_targets for k in t})
            else:
                frames, keys = None, []
            if keys:
                pixels.append(sam_resize_normalize(frames[keys], size))
                sizes.append(frames.shape[1:3])
            else:
                sizes.append((0, 0))
            counts.append(len(keys))
            # a sample without targets (None) gets empty tensors so the lists stay aligned with the batch
            masks, valid = _target_tensor(sample_targets or [], keys, sizes[-1], b)
            target_masks.append(masks)
            target_valid.append(valid)
        out: dict[str, Any] = {
            "sam_pixel_values": torch.cat(pixels) if pixels else torch.zeros(0, 3, size, size),
            "sam_frame_counts": torch.tensor(counts, dtype=torch.long),
            "sam_sizes": torch.tensor(sizes, dtype=torch.long).reshape(-1, 2),
        }
        if any(t is not None for t in targets):
            out["target_masks"], out["target_valid"] = target_masks, target_valid
        return out


def resize_normalize(
    frames: np.ndarray, size: int, mean: Sequence[float], std: Sequence[float], mode: str = "bilinear"
) -> torch.Tensor:
    """uint8 (N, H, W, 3) -> float (N, 3, size, size): plain resize (no aspect padding), then normalize."""
    x = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float() / 255.0
    if x.shape[-2:] != (size, size):
        x = F.interpolate(x, size=(size, size), mode=mode, align_corners=False, antialias=True).clamp(0, 1)
    mean_t = torch.tensor(mean).view(1, 3, 1, 1)
    return (x - mean_t) / torch.tensor(std).view(1, 3, 1, 1)


def sam_resize_normalize(frames: np.ndarray, size: int) -> torch.Tensor:
    """uint8 (N, H, W, 3) -> float (N, 3, size, size) as upstream feeds SAM2: PIL's bicubic resize to a square
    (aspect not kept), rounded to uint8 by PIL, then ImageNet normalisation. PIL's bicubic (a = -0.5, support
    widened when downsampling) is not torch's (a = -0.75), so the same pixels need PIL itself."""
    frames = np.ascontiguousarray(frames)
    if frames.shape[1:3] != (size, size):
        frames = np.stack(
            [np.asarray(Image.fromarray(f).resize((size, size), Image.Resampling.BICUBIC)) for f in frames]
        )
    return resize_normalize(frames, size, SAM_MEAN, SAM_STD)


def mask_to_grid(mask: np.ndarray, grid: int) -> torch.Tensor:
    """bool (H, W) -> flat (grid*grid,) in {0, 1}, the upstream rule (MODEL.md 1.5): bilinear resize to the patch
    grid (no antialias, align_corners False), then > 0.

    Downsampling bilinear reads only the two source rows and columns around each patch's sampling point, so a
    patch counts when the mask covers pixels next to its centre, not whenever the mask touches it; a small
    object can select no patch at all. Then its pooled feature is zero, as upstream (warned once per process).
    """
    m = torch.from_numpy(np.ascontiguousarray(mask, dtype=np.float32))[None, None]
    selected = (F.interpolate(m, size=(grid, grid), mode="bilinear", align_corners=False) > 0).float().flatten()
    if not bool(selected.any()) and bool(m.any()):
        _warn_empty_region(int(m.sum()), tuple(mask.shape), grid)
    return selected


def _warn_empty_region(pixels: int, shape: tuple[int, ...], grid: int) -> None:
    """Once per process: later empty regions behave the same and would only flood the log."""
    if _EMPTY_REGION_WARNED:
        return
    _EMPTY_REGION_WARNED.append(True)
    log.warning(
        "a region mask of %d pixels in a %s frame selects no patch of the %dx%d grid; its feature is zero, as in "
        "the upstream model (warned once; MODEL.md section 1.5)",
        pixels,
        "x".join(str(v) for v in shape),
        grid,
        grid,
    )


def _target_tensor(
    sample_targets: Sequence[FrameMasks], keys: list[int], size: tuple[int, int], b: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """(objects, frames, H, W) masks + validity, paired explicitly by (object, frame) key."""
    position = {k: i for i, k in enumerate(keys)}
    masks = torch.zeros(len(sample_targets), len(keys), *size, dtype=torch.bool)
    valid = torch.zeros(len(sample_targets), len(keys), dtype=torch.bool)
    for o, target in enumerate(sample_targets):
        for key, mask in target.items():
            if int(key) not in position:
                raise ValueError(f"targets[{b}][{o}]: frame {key} is not among the {len(keys)} SAM frames")
            if mask is None:
                continue
            if tuple(mask.shape) != tuple(size):
                raise ValueError(f"targets[{b}][{o}][{key}]: mask shape {mask.shape} != frame size {tuple(size)}")
            masks[o, position[int(key)]] = torch.from_numpy(np.asarray(mask, dtype=bool))
            valid[o, position[int(key)]] = True
    return masks, valid


def _place_video_token(conversation: Turns, b: int) -> list[dict[str, str]]:
    """Remove every `<video>` and put one at the head of the first human turn (the public preprocessing)."""
    turns = [{"from": t["from"], "value": t["value"]} for t in conversation]
    if not turns or turns[0]["from"] != "human":
        raise ValueError(f"conversations[{b}] must start with a human turn")
    for t in turns:
        if VIDEO_TOKEN in t["value"]:
            t["value"] = t["value"].replace(VIDEO_TOKEN + "\n", "").replace(VIDEO_TOKEN, "").strip()
    turns[0]["value"] = f"{VIDEO_TOKEN}\n{turns[0]['value']}"
    return turns


def _check_frames(frames: np.ndarray, name: str) -> np.ndarray:
    if not isinstance(frames, np.ndarray) or frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
        got = getattr(frames, "shape", type(frames).__name__), getattr(frames, "dtype", None)
        raise ValueError(f"{name} must be a uint8 array (T, H, W, 3), got {got}")
    return frames


def _mask(region: FrameMasks, key: int, name: str) -> np.ndarray:
    mask = region.get(key, region.get(str(key)))  # type: ignore[call-overload]
    if mask is None or np.asarray(mask).ndim != 2:
        raise ValueError(f"{name}[{key}] must be a 2-D bool mask")
    return np.asarray(mask, dtype=bool)


def _per_sample(values: Sequence | None, n: int, name: str) -> list:
    if values is None:
        return [None] * n
    if len(values) != n:
        raise ValueError(f"{name} has {len(values)} entries for {n} samples")
    return list(values)
