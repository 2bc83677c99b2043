"""`run(PredictConfig)`: a checkpoint (local, `s3://` or a registered version) answers one request or a JSONL of
them; each answer is written as `prediction.json`, one mask PNG per SAM frame per `[SEG]`, and an overlay video.

Inference is the evaluation's own (`ufvideo.eval.inference.predict` on `Sample`s), so a prediction here equals what
`ufvideo eval` would compute for the same video and prompt.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ufvideo.config import ConfigError
from ufvideo.eval.types import Sample
from ufvideo.files import atomic_write
from ufvideo.predict.request import (
    PredictRequest,
    RequestError,
    check_video,
    load_mask,
    output_name,
    parse_region,
    prompt_text,
    read_requests,
)

log = logging.getLogger(__name__)
REGION_MODES = ("single", "multi")


@dataclass
class PredictConfig:
    """One `ufvideo predict`: either `video` + `prompt` (+ `regions`, each `MASK.png@FRAME`) or `requests`
    (a JSONL file, one request per line); results go to `out` (a batch: one folder per request id).

    model: checkpoint directory, `s3://` prefix, or `models:/NAME@ALIAS` / `models:/NAME/VERSION`.
    fps: the frame rate of a frame folder (video files carry their own); mask_mode: per_frame | propagate | None
    (the checkpoint's default); region_mode: how region masks become tokens (UFVideo's "multi" or "single").
    """

    model: str = ""
    video: str = ""
    prompt: str = ""
    regions: list[str] = field(default_factory=list)
    requests: str = ""
    out: str = "runs/predict"
    fps: float | None = None
    device: str = "cpu"
    max_new_tokens: int = 128
    mask_mode: str | None = None
    region_mode: str = "multi"
    batch_size: int = 1
    overlay: bool = True

    def __post_init__(self) -> None:
        if not self.model:
            raise ConfigError("predict.model is required: a checkpoint directory, s3:// URI or models:/NAME@ALIAS")
        if bool(self.requests) == bool(self.video or self.prompt):
            raise ConfigError("predict: give either --video and --prompt, or --requests FILE.jsonl (not both)")
        if not self.requests and not (self.video and self.prompt):
            raise ConfigError("predict: --video and --prompt are both required for a single request")
        if self.region_mode not in REGION_MODES:
            raise ConfigError(f"predict.region_mode must be one of {', '.join(REGION_MODES)}, got {self.region_mode!r}")
        if self.batch_size < 1:
            raise ConfigError(f"predict.batch_size must be >= 1, got {self.batch_size}")


def requests_of(cfg: PredictConfig) -> list[PredictRequest]:
    if cfg.requests:
        return read_requests(cfg.requests)
    regions = [parse_region(spec, index=i) for i, spec in enumerate(cfg.regions)]
    return [PredictRequest(cfg.video, cfg.prompt, regions, id="request", fps=cfg.fps)]


@dataclass
class Checked:
    """A request whose video, prompt and masks passed every check; `regions` are RLEs on absolute frames."""

    request: PredictRequest
    source: Path
    prompt: str
    info: Any
    regions: list[dict[int, Any]]


def check(request: PredictRequest) -> Checked:
    """Every check that needs no model: the video opens, the prompt's `<region>` count matches, masks fit."""
    from ufvideo.data.masks import encode_rle
    from ufvideo.data.video import VideoError, probe

    source = check_video(request)
    prompt = prompt_text(request)
    try:
        info = probe(source, fps_hint=request.fps)
    except (VideoError, FileNotFoundError) as exc:
        raise RequestError(request.where, "video", str(exc)) from None
    regions = [
        {r.frame: encode_rle(load_mask(request, i, info.height, info.width, info.num_frames))}
        for i, r in enumerate(request.regions)
    ]
    return Checked(request, source, prompt, info, regions)


def to_sample(checked: Checked, num_frames: int, region_mode: str) -> Sample:
    """The `Sample` inference takes; masks are wanted on every frame the model samples (its SAM frames are the LLM
    frames, as in the served pyfunc)."""
    from ufvideo.data.video import clip_indices

    info, request = checked.info, checked.request
    return Sample(
        id=request.id,
        benchmark="predict",
        task="predict",
        video=str(checked.source),
        conversation=[{"from": "human", "value": checked.prompt}],
        fps=request.fps,
        regions=checked.regions or None,
        region_mode=region_mode,
        sam_frames=list(dict.fromkeys(clip_indices(info, num_frames))),
        height=info.height,
        width=info.width,
        meta={"fps": info.fps, "duration": info.duration, "num_frames": info.num_frames},
    )


def load(cfg: PredictConfig) -> tuple[Any, Any, dict[str, str]]:
    """Model, processor and what was loaded (reference, checkpoint URI, digest, registry version); a LoRA adapter
    checkpoint is merged into its base (resolved from its recorded local path or s3:// URI) at load."""
    from ufvideo.model.loader import load_checkpoint
    from ufvideo.registry.reference import resolve_model

    ref = resolve_model(cfg.model)
    model, processor = load_checkpoint(ref.uri, device=cfg.device, key=ref.digest)
    loaded = {"reference": ref.reference, "checkpoint": ref.uri, "digest": ref.digest, "version": ref.version}
    return model, processor, loaded


def run(cfg: PredictConfig) -> dict[str, Any]:
    """Answer every request; returns {"model": {...}, "predictions": [prediction.json documents], "out": dir}.

    Requests are all checked (files, sizes, `<region>` counts) before the model is loaded, so a typo in line 40
    of a batch fails in a second, not after 39 answers.
    """
    from ufvideo.eval.inference import predict
    from ufvideo.predict.output import write_prediction

    checked = [check(r) for r in requests_of(cfg)]
    model, processor, loaded = load(cfg)
    samples = [to_sample(c, processor.settings.num_frames, cfg.region_mode) for c in checked]
    by_id = {s.id: s for s in samples}
    out, batch = Path(cfg.out), bool(cfg.requests)
    documents = []
    kwargs = {"max_new_tokens": cfg.max_new_tokens, "mask_mode": cfg.mask_mode}
    for prediction in predict(model, processor, samples, cfg.batch_size, **kwargs):
        sample = by_id[prediction.id]
        folder = out / output_name(sample.id) if batch else out
        documents.append(write_prediction(folder, sample, prediction, loaded, overlay=cfg.overlay))
    if batch:
        with atomic_write(out / "predictions.jsonl") as handle:
            handle.writelines(json.dumps(d, sort_keys=True) + "\n" for d in documents)
    return {"model": loaded, "predictions": documents, "out": str(out)}
