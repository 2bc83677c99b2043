"""The MLflow pyfunc face of UFVideo: `{video, prompt, regions?}` rows in, `{text, spans, masks, frames, error}` rows
out; a row whose input cannot be read gets its message in `error` (the other rows are still answered).

The logged model holds no weights: `model_config` carries the checkpoint URI and digest, and `load_context`
materialises the checkpoint (an `s3://` prefix is downloaded once into the local cache, see
`ufvideo.checkpoint.materialize`). `mlflow.pyfunc.load_model(uri, model_config={"checkpoint_uri": ...})` can point
a registered version at a mirrored copy of the same weights. The model is logged from code (`serving.py`), not
pickled. `masks[i]` holds one RLE per entry of `frames` (the sampled frame indices the model saw).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import mlflow.pyfunc
import numpy as np

from ufvideo import storage
from ufvideo.data.schema import REGION_TOKEN, VIDEO_TOKEN
from ufvideo.errors import UFVideoError

POINTER_ARTIFACT = "checkpoint"
DEFAULT_MAX_NEW_TOKENS = 64
# Pinned from the running environment, never inferred: inference pulls in torchvision (ENVIRONMENT.md 3).
REQUIREMENTS = (
    "torch",
    "transformers",
    "tokenizers",
    "safetensors",
    "peft",  # LoRA adapter checkpoints are merged into their base at load
    "numpy",
    "av",
    "pillow",
    "pycocotools",
    "boto3",
    "pyyaml",
)


def pip_requirements() -> list[str]:
    """`name==version` of the installed inference dependencies; local labels (`+cpu`) are dropped so a GPU
    image satisfies the same pins."""
    pins = []
    for name in REQUIREMENTS:
        try:
            version = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
        pins.append(f"{name}=={version.split('+', 1)[0]}")
    return pins


def signature() -> Any:
    """Explicit schema: regions travel as a JSON string (a list of `{frame: RLE}`), because frame-keyed maps of
    varying keys have no column type."""
    from mlflow.models import ModelSignature
    from mlflow.types.schema import Array, ColSpec, DataType, Object, ParamSchema, ParamSpec, Property, Schema

    rle = Object([Property("size", Array(DataType.long)), Property("counts", DataType.string)])
    inputs = Schema(
        [
            ColSpec(DataType.string, "video"),
            ColSpec(DataType.string, "prompt"),
            ColSpec(DataType.string, "regions", required=False),
        ]
    )
    outputs = Schema(
        [
            ColSpec(DataType.string, "text"),
            ColSpec(Array(Array(DataType.double)), "spans"),
            ColSpec(Array(Array(rle)), "masks"),
            ColSpec(Array(DataType.long), "frames"),
            ColSpec(DataType.string, "error", required=False),
        ]
    )
    params = ParamSchema(
        [
            ParamSpec("max_new_tokens", DataType.long, DEFAULT_MAX_NEW_TOKENS),
            ParamSpec("mask_mode", DataType.string, "per_frame"),
        ]
    )
    return ModelSignature(inputs=inputs, outputs=outputs, params=params)


def input_example() -> list[dict[str, str]]:
    """Two rows: a text/time/segmentation question, and a region question (a 4x4 mask on frame 0)."""
    from ufvideo.data.masks import encode_rle

    region = {"0": encode_rle(np.eye(4, dtype=bool))}
    return [
        {"video": "s3://videos/example.mp4", "prompt": "When does the red square move? Please segment it."},
        {
            "video": "s3://videos/example.mp4",
            "prompt": "There is 1 objects in the video: object_1: [<region>]. What is object_1 doing?",
            "regions": json.dumps([region]),
        },
    ]


class UFVideoModel(mlflow.pyfunc.PythonModel):
    """Loads the checkpoint named by `model_config` and answers batched video questions with text, spans, masks."""

    def load_context(self, context: Any) -> None:
        import torch

        from ufvideo.model.loader import load_checkpoint

        config = dict(getattr(context, "model_config", None) or {})
        uri = config.get("checkpoint_uri")
        if not uri and POINTER_ARTIFACT in (context.artifacts or {}):
            pointer = json.loads(Path(context.artifacts[POINTER_ARTIFACT]).read_text())
            uri = pointer["uri"]
            config.setdefault("checkpoint_digest", pointer.get("digest", ""))
        if not uri:
            raise ValueError("UFVideoModel: model_config has no 'checkpoint_uri' and no checkpoint pointer artifact")
        device = config.get("device") or ("cuda" if torch.cuda.is_available() else "cpu")
        self.checkpoint_uri = uri
        # full, merged or LoRA adapter checkpoints alike (an adapter's base is resolved and checked by digest)
        self.model, self.processor = load_checkpoint(uri, device=device, key=str(config.get("checkpoint_digest") or ""))
        self.model.eval()

    # `model_input` is left unannotated on purpose: with a type hint MLflow 3 replaces the explicit signature by one
    # inferred from the hint (dropping the params schema) and runs predict on the input example while logging.
    def predict(self, context: Any, model_input, params: Mapping[str, Any] | None = None) -> list[dict]:
        """One output row per input row; a row that cannot be read (missing field, unreadable video, mask of the
        wrong size) gets its message in `error` and empty answers, and the other rows are answered as usual."""
        params = dict(params or {})
        rows = _rows(model_input)
        results: list[dict[str, Any] | None] = [None] * len(rows)
        with tempfile.TemporaryDirectory(prefix="ufvideo-predict-") as scratch:
            batch, positions = [], []
            for i, row in enumerate(rows):
                try:
                    batch.append(_prepare(row, i, self.processor.settings.num_frames, Path(scratch)))
                    positions.append(i)
                except ROW_ERRORS as exc:
                    results[i] = failed(exc)
            if batch:
                for i, answer in zip(positions, self._answer_batch(batch, params), strict=True):
                    results[i] = answer
        return [r for r in results if r is not None]

    def _answer_batch(self, batch: list[dict[str, Any]], params: Mapping[str, Any]) -> list[dict[str, Any]]:
        inputs = self.processor(
            [[{"from": "human", "value": b["prompt"]}] for b in batch],
            [b["clip"].frames for b in batch],
            regions=[b["regions"] for b in batch],
            key_frames=[b["key_frames"] for b in batch],
            sam_frames=[b["clip"].frames[: b["clip"].num_valid] for b in batch],
            add_generation_prompt=True,
        )
        outputs = self.model.generate(
            inputs,
            self.processor,
            max_new_tokens=int(params.get("max_new_tokens") or DEFAULT_MAX_NEW_TOKENS),
            durations=[b["clip"].info.duration for b in batch],
            mask_mode=params.get("mask_mode") or None,
        )
        return [_answer(out, b["clip"].indices) for out, b in zip(outputs, batch, strict=True)]


# Problems of one row's input (the row's own fault): reported in its `error` field, never failing the batch.
ROW_ERRORS = (UFVideoError, ValueError, TypeError, KeyError, OSError)


def failed(exc: BaseException) -> dict[str, Any]:
    """The output row of an input row that could not be read."""
    return {"text": "", "spans": [], "masks": [], "frames": [], "error": " ".join(str(exc).split()) or repr(exc)}


def _rows(model_input: Any) -> list[dict[str, Any]]:
    """DataFrame (what signature enforcement produces), list of dicts or one dict -> list of plain dicts."""
    if hasattr(model_input, "to_dict") and hasattr(model_input, "columns"):
        model_input = model_input.to_dict(orient="records")
    if isinstance(model_input, Mapping):
        model_input = [model_input]
    if not isinstance(model_input, Sequence) or isinstance(model_input, str):
        raise TypeError(f"UFVideoModel.predict: expected rows of {{video, prompt, regions}}, got {type(model_input)}")
    return [dict(row) for row in model_input]


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and value != value)  # NaN: an absent optional column


def _local_video(video: str, index: int, scratch: Path) -> str:
    """S3 videos are downloaded into the request's scratch dir (a file, or a prefix of frame images)."""
    if not storage.is_s3(video):
        return video
    target = scratch / f"video_{index}" / os.path.basename(video.rstrip("/"))
    try:
        storage.download_file(video, target)
    except FileNotFoundError:
        storage.copy_tree(video, target)  # a frame folder is a prefix, not an object
    return str(target)


def _prepare(row: Mapping[str, Any], index: int, num_frames: int, scratch: Path) -> dict[str, Any]:
    from ufvideo.data.masks import decode_rle
    from ufvideo.data.video import load_clip, read_frames

    for key in ("video", "prompt"):
        if _missing(row.get(key)) or not str(row.get(key)):
            raise ValueError(f"row {index}: field {key!r} is required")
    video = _local_video(str(row["video"]), index, scratch)
    clip = load_clip(video, num_samples=num_frames)
    prompt = str(row["prompt"])
    if VIDEO_TOKEN not in prompt:
        prompt = f"{VIDEO_TOKEN}\n{prompt}"
    regions_raw = row.get("regions")
    try:
        regions = json.loads(regions_raw) if isinstance(regions_raw, str) and regions_raw else regions_raw
    except json.JSONDecodeError as exc:
        raise ValueError(f"row {index}: field 'regions': invalid JSON ({exc.msg})") from None
    count = prompt.count(REGION_TOKEN)
    if _missing(regions) or not regions:
        if count:
            raise ValueError(f"row {index}: the prompt has {count} {REGION_TOKEN} but field 'regions' is empty")
        return {"prompt": prompt, "clip": clip, "regions": None, "key_frames": None}
    if not isinstance(regions, list) or not all(isinstance(r, Mapping) and r for r in regions):
        raise ValueError(f"row {index}: field 'regions' must be a non-empty list of {{frame: RLE}} objects")
    if count != len(regions):
        raise ValueError(
            f"row {index}: field 'regions' has {len(regions)} object(s) but the prompt {count} {REGION_TOKEN}"
        )
    frames = sorted({int(frame) for region in regions for frame in region})
    if frames[-1] >= clip.info.num_frames:
        raise ValueError(f"row {index}: region frame {frames[-1]} beyond the video's {clip.info.num_frames} frames")
    key_frames = read_frames(video, frames)
    position = {frame: i for i, frame in enumerate(frames)}
    height, width = key_frames.shape[1:3]
    masks = []
    for k, region in enumerate(regions):
        try:
            masks.append({position[int(frame)]: decode_rle(rle, height, width) for frame, rle in region.items()})
        except ValueError as exc:
            raise ValueError(f"row {index}: field 'regions[{k}]': {exc}") from None
    return {"prompt": prompt, "clip": clip, "regions": masks, "key_frames": key_frames}


def _answer(generation: Any, frames: Sequence[int]) -> dict[str, Any]:
    from ufvideo.data.masks import encode_rle

    masks = [[encode_rle(frame.numpy()) for frame in track] for track in generation.masks]
    spans = [[float(start), float(end)] for start, end in generation.spans]
    return {"text": generation.text, "spans": spans, "masks": masks, "frames": [int(f) for f in frames], "error": None}


class _PyfuncFlavor:
    """`mlflow.pyfunc` for `Model.log`, minus input-example validation: validating would run `load_context`, i.e.
    download and load the multi-GB checkpoint at registration time, just to predict on an illustrative example."""

    __name__ = "mlflow.pyfunc"

    @staticmethod
    def save_model(path: str, mlflow_model: Any = None, validate_serving_input: bool = False, **kwargs: Any) -> None:
        mlflow.pyfunc.save_model(path=path, mlflow_model=mlflow_model, **kwargs)


def log_model(checkpoint_uri: str, digest: str, info: Mapping[str, Any], name: str = "ufvideo") -> Any:
    """Log the pyfunc under the active run: code reference + a pointer file, never the weights."""
    from mlflow.models import Model

    with tempfile.TemporaryDirectory(prefix="ufvideo-pointer-") as scratch:
        pointer = Path(scratch) / "checkpoint.json"
        pointer.write_text(json.dumps({"uri": checkpoint_uri, "digest": digest, "info": dict(info)}, indent=2) + "\n")
        return Model.log(
            artifact_path=None,
            name=name,
            flavor=_PyfuncFlavor,
            flavor_name="pyfunc.ModelFromCode",
            python_model=str(Path(__file__).with_name("serving.py")),
            artifacts={POINTER_ARTIFACT: str(pointer)},
            model_config={"checkpoint_uri": checkpoint_uri, "checkpoint_digest": digest},
            signature=signature(),
            input_example=input_example(),
            pip_requirements=pip_requirements(),
            metadata={"checkpoint_uri": checkpoint_uri, "checkpoint_digest": digest, "profile": info.get("profile")},
            validate_serving_input=False,
        )
