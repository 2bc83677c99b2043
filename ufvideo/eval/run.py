"""`run(EvalConfig)`: load a benchmark, run inference (resumable), parse and score, then write `metrics.json`,
the predictions JSONL, mask PNGs / submission zip and the report, and log the metrics to MLflow.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import logging
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from itertools import islice
from pathlib import Path
from typing import Any

from ufvideo import distributed
from ufvideo.config import ConfigError
from ufvideo.eval import gallery
from ufvideo.eval.benchmarks import get_benchmark
from ufvideo.eval.control import (
    BLIND_PRIOR,
    CONTROLS,
    NONE,
    SHUFFLED_VIDEO,
    accepted,
    prior_predict,
    shuffle_visual,
    shuffled_predict,
)
from ufvideo.eval.judge import DEFAULT_PROMPT, Judge, JudgeConfig
from ufvideo.eval.registry import AGGREGATIONS, Benchmark, ScoreContext, parse_prediction
from ufvideo.eval.types import Prediction, Sample
from ufvideo.files import atomic_write, read_json, write_json

COMPAT_MODES = ("ours", "upstream")  # = ufvideo.model.generation.COMPAT_MODES, without importing torch here

log = logging.getLogger(__name__)

METRICS_FILE, DETAILS_FILE, PREDICTIONS_FILE = "metrics.json", "details.json", "predictions.jsonl"
PROGRESS_FILE, SUBMISSION_FILE, MASKS_DIR = "progress.json", "submission.zip", "masks"
DONE_FILE = "done.json"

PredictFn = Callable[..., Iterable[Prediction]]
LoadModelFn = Callable[["EvalConfig"], tuple[Any, Any]]


@dataclass
class EvalConfig:
    """One evaluation. `split` None = the benchmark's default; `max_samples` None = all.

    aggregation: "per_expression" (official toolkits) or "frame_pooled" (UFVideo's scripts) for J/F.
    strict_parsing: the answer parsers' strict mode (no fallbacks) instead of the public parsers.
    judge_*: the judge endpoint; empty base URL/model fall back to the UFVIDEO_JUDGE_* environment variables.
    mask_mode / max_new_tokens: passed to inference when its `predict` accepts them.
    control: what this evaluation feeds the model (`ufvideo.eval.control`): "none" (the real inputs),
        "shuffled_video" (each sample's visual input from another sample of its kind, seeded by `control_seed`)
        or "blind_prior" (no model: the benchmark's prior answer from its training split).
    controls: controls run after the real evaluation, each in `<out>/controls/<name>/`; their metrics and the
        video dependence (real minus shuffled) go into metrics.json, the report and MLflow.
    compat: "ours" (corrected defaults) or "upstream" (the public inference code's `[SEG]` quirks; with
    aggregation=frame_pooled, the numbers as the paper computed them); recorded in metrics.json and the report.
    """

    benchmark: str = "synthetic"
    checkpoint: str = ""
    data_root: str = "data"
    out: str = "runs/eval"
    split: str | None = None
    batch_size: int = 1
    max_samples: int | None = None
    aggregation: str = "per_expression"
    strict_parsing: bool = False
    mask_mode: str | None = None
    max_new_tokens: int = 128
    compat: str = "ours"
    device: str = "cpu"
    judge_base_url: str = ""
    judge_model: str = ""
    judge_prompt: str = DEFAULT_PROMPT
    judge_cache: str | None = None
    write_masks: bool = True
    resume: bool = True
    report: bool = True
    track: bool = True
    rank_timeout: float = 6 * 3600.0  # how long rank 0 waits for the other torchrun ranks' predictions
    control: str = "none"
    control_seed: int = 0
    controls: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.control not in CONTROLS:
            raise ValueError(f"eval.control must be one of {', '.join(CONTROLS)}, got {self.control!r}")
        unknown = [c for c in self.controls if c not in CONTROLS or c == NONE]
        if unknown:
            allowed = ", ".join(c for c in CONTROLS if c != NONE)
            raise ValueError(f"eval.controls: unknown control(s) {unknown}; allowed: {allowed}")
        if self.controls and self.control != NONE:
            raise ValueError("eval.controls: a control run (eval.control != none) cannot carry controls of its own")
        if self.batch_size < 1:
            raise ValueError(f"eval.batch_size must be >= 1, got {self.batch_size}")
        if self.max_samples is not None and self.max_samples < 1:
            raise ValueError(f"eval.max_samples must be >= 1 or null, got {self.max_samples}")
        if self.aggregation not in AGGREGATIONS:
            raise ValueError(f"eval.aggregation must be one of {', '.join(AGGREGATIONS)}, got {self.aggregation!r}")
        if self.compat not in COMPAT_MODES:
            raise ValueError(f"eval.compat must be one of {', '.join(COMPAT_MODES)}, got {self.compat!r}")


def make_judge(cfg: EvalConfig) -> Judge | None:
    """The judge named by the config (else the environment), caching under `<out>/judge_cache` by default."""
    cache = cfg.judge_cache or str(Path(cfg.out) / "judge_cache")
    overrides = {"prompt_version": cfg.judge_prompt, "cache_dir": cache}
    if cfg.judge_base_url and cfg.judge_model:
        jc = JudgeConfig(base_url=cfg.judge_base_url, model=cfg.judge_model, **overrides)
    else:
        jc = JudgeConfig.from_env(**overrides)
    return None if jc is None else Judge(jc)


def load_model(cfg: EvalConfig) -> tuple[Any, Any]:
    """Model and processor from the checkpoint (local or s3://, fetched once into the checkpoint cache); an adapter
    checkpoint is merged into its base at load."""
    from ufvideo.model.loader import load_checkpoint

    device = cfg.device
    if device == "cuda" and distributed.local_rank() is not None:  # one GPU per torchrun rank
        device = f"cuda:{distributed.local_rank()}"
    return load_checkpoint(cfg.checkpoint, device=device)  # full, merged or adapter (+ its base)


def _default_predict(model: Any, processor: Any, samples: list[Sample], batch_size: int, **kw: Any) -> Iterable:
    from ufvideo.eval.inference import predict  # the model side; imported only when inference really runs

    return predict(model, processor, samples, batch_size, **kw)


def _predict_kwargs(fn: PredictFn, cfg: EvalConfig) -> dict[str, Any]:
    return accepted(fn, {"mask_mode": cfg.mask_mode, "max_new_tokens": cfg.max_new_tokens, "compat": cfg.compat})


def _checkpoint_ref(uri: str) -> dict[str, str]:
    if not uri:
        return {"uri": "", "digest": ""}
    from ufvideo.checkpoint import checkpoint_digest, materialize

    # The digest of the files inference loads (the verified local copy of an s3:// checkpoint), never a second,
    # separate read of the remote prefix that could see other bytes.
    return {"uri": uri, "digest": checkpoint_digest(materialize(uri))}


def _parser_digest(bench: Benchmark) -> str:
    """Digest of the module that parses this benchmark's predictions: rows parsed by older code (other fields,
    other rules) are predicted again rather than scored as if the current parser had made them."""
    source = inspect.getsource(inspect.getmodule(bench.parse) or bench.parse)
    return hashlib.sha256(source.encode("utf-8")).hexdigest()[:16]


# EvalConfig fields that change what the model predicts: rows predicted under other values are predicted again on
# resume. A new setting of that kind is added here, and only here.
PREDICTION_FIELDS = ("mask_mode", "max_new_tokens")


def prediction_settings(cfg: EvalConfig) -> dict[str, Any]:
    return {name: getattr(cfg, name) for name in PREDICTION_FIELDS}


def _progress_key(cfg: EvalConfig, bench: Benchmark, split: str, checkpoint: dict[str, str]) -> dict[str, Any]:
    return {
        "benchmark": bench.name,
        "split": split,
        "checkpoint": checkpoint["digest"],
        "strict": cfg.strict_parsing,
        "compat": cfg.compat,
        "parser": _parser_digest(bench),
        "settings": prediction_settings(cfg),
        "control": cfg.control,
        "control_seed": cfg.control_seed if cfg.control == SHUFFLED_VIDEO else None,
    }


def _rank_file(name: str, rank: int, world: int) -> str:
    """Each rank keeps its own predictions/progress files, so ranks never write the same file."""
    if world == 1:
        return name
    stem, dot, ext = name.partition(".")
    return f"{stem}.rank{rank}{dot}{ext}"


def _wait_for_ranks(out: Path, world: int, key: dict[str, Any], timeout: float) -> dict[str, dict[str, Any]]:
    """Rank 0 waits for every rank's done-marker (same run key), then merges all ranks' rows."""
    deadline = time.monotonic() + timeout
    markers = [out / _rank_file(DONE_FILE, r, world) for r in range(world)]
    while not all(m.is_file() and read_json(m) == key for m in markers):
        if time.monotonic() > deadline:
            missing = [str(m) for m in markers if not m.is_file()]
            raise TimeoutError(f"evaluation ranks did not finish within {timeout:.0f} s; missing {missing}")
        time.sleep(0.5)
    rows: dict[str, dict[str, Any]] = {}
    for r in range(world):
        rows.update(_read_rows(out / _rank_file(PREDICTIONS_FILE, r, world)))
    return rows


def _read_rows(path: Path) -> dict[str, dict[str, Any]]:
    rows = {}
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:  # a line cut by the interruption: predict that sample again
                    continue
                rows[row["id"]] = row
    return rows


def _resumed_rows(
    out: Path, key: dict[str, Any], resume: bool, rank: int = 0, world: int = 1
) -> dict[str, dict[str, Any]]:
    """Rows already predicted by an interrupted run of the same (benchmark, split, checkpoint, parser mode)."""
    progress = out / _rank_file(PROGRESS_FILE, rank, world)
    path = out / _rank_file(PREDICTIONS_FILE, rank, world)
    if not (resume and progress.is_file() and path.is_file() and read_json(progress) == key):
        return {}
    return _read_rows(path)


def _infer(
    cfg: EvalConfig,
    bench: Benchmark,
    samples: list[Sample],
    done: dict[str, dict[str, Any]],
    predict: PredictFn,
    model_loader: LoadModelFn,
    out: Path,
    predictions_file: str = PREDICTIONS_FILE,
    lent: dict[str, Sample] | None = None,
) -> Iterator[dict[str, Any]]:
    """Predict the samples not in `done`, appending each parsed row to the JSONL as soon as it exists. `lent` maps
    ids to the samples inference sees instead (the shuffled-video control); rows are parsed against the own."""
    todo = [s for s in samples if s.id not in done]
    if not todo:
        return
    by_id = {s.id: s for s in todo}
    todo = [(lent or {}).get(s.id, s) for s in todo]
    model, processor = model_loader(cfg)
    with atomic_write(out / predictions_file) as handle:  # keep only whole rows, then append the new ones
        handle.writelines(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in done.values())
    with open(out / predictions_file, "a", encoding="utf-8") as handle:
        for prediction in predict(model, processor, todo, cfg.batch_size, **_predict_kwargs(predict, cfg)):
            sample = by_id.get(prediction.id)
            if sample is None:
                raise ValueError(f"inference returned a prediction for unknown sample id {prediction.id!r}")
            row = {**parse_prediction(bench, prediction, sample, strict=cfg.strict_parsing), "output": prediction.text}
            if cfg.write_masks and bench.mask_layout is not None:
                from ufvideo.eval.submission import write_prediction_masks

                write_prediction_masks(bench, sample, prediction, out / MASKS_DIR)
            handle.write(json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n")
            handle.flush()
            yield row


def _write_submission(bench: Benchmark, samples: list[Sample], out: Path) -> str | None:
    if not bench.submission or not samples:
        return None
    from ufvideo.eval.submission import expected_mask_paths, write_submission

    count = write_submission(
        bench.submission, out / MASKS_DIR, out / SUBMISSION_FILE, expected_mask_paths(bench, samples)
    )
    log.info("%s: wrote %s with %d masks", bench.name, out / SUBMISSION_FILE, count)
    return str(out / SUBMISSION_FILE)


def _metrics_doc(
    bench: Benchmark, checkpoint: dict[str, str], scores: Any, num_samples: int, compat: str = "ours"
) -> dict[str, Any]:
    metrics = {name: scores.metrics.get(name) for name in bench.metrics}
    metrics.update({k: v for k, v in scores.metrics.items() if k not in metrics})
    notes = list(scores.notes) + list(bench.notes)
    if bench.submission:
        notes.append(f"{SUBMISSION_FILE} is in the official layout for the server")
    return {
        "benchmark": bench.name,
        "checkpoint": checkpoint,
        "metrics": {k: (None if v is None else float(v)) for k, v in metrics.items()},
        "aggregation": scores.aggregation,
        "compat": compat,
        "num_samples": num_samples,
        "published": dict(bench.published),
        "notes": notes,
    }


def _apply_control(
    cfg: EvalConfig, bench: Benchmark, samples: list[Sample], predict: PredictFn, model_loader: LoadModelFn
) -> tuple[list[Sample], dict[str, Sample], PredictFn, LoadModelFn, list[str]]:
    """(samples to score, samples inference sees instead, predict, model loader, notes) for `cfg.control`."""
    if cfg.control == SHUFFLED_VIDEO:
        controlled, left_out = shuffle_visual(samples, cfg.control_seed)
        kept = {s.id for s in controlled}
        notes = [f"control shuffled_video (seed {cfg.control_seed}): every sample sees another sample's video"]
        if left_out:
            notes.append(f"{len(left_out)} sample(s) without another sample of their kind were left out")
        originals = {s.id: s for s in samples}
        lent = {s.id: s for s in controlled}
        return [s for s in samples if s.id in kept], lent, shuffled_predict(predict, originals), model_loader, notes
    if cfg.control == BLIND_PRIOR:
        if bench.prior is None:
            raise ConfigError(f"{bench.name}: the benchmark declares no prior (no training split), so no blind_prior")
        answer = bench.prior(Path(cfg.data_root))
        note = f"control blind_prior: no model; {bench.name}'s prior answer for every sample"
        return samples, {}, prior_predict(answer), _no_model, [note]
    return samples, {}, predict, model_loader, []


def _loaded_once(model_loader: LoadModelFn) -> LoadModelFn:
    cache: list[tuple[Any, Any]] = []

    def load(cfg: EvalConfig) -> tuple[Any, Any]:
        if not cache:
            cache.append(model_loader(cfg))
        return cache[0]

    return load


def _no_model(cfg: EvalConfig) -> tuple[None, None]:
    return None, None


def _control_configs(cfg: EvalConfig) -> list[EvalConfig]:
    """One sub-evaluation per control in `cfg.controls` that the benchmark supports, writing under the run's out."""
    bench = get_benchmark(cfg.benchmark)
    subs = []
    for name in cfg.controls:
        if name == BLIND_PRIOR and bench.prior is None:
            log.warning("%s: no blind_prior control (the benchmark has no training split)", bench.name)
            continue
        subs.append(replace(cfg, control=name, controls=[], out=str(Path(cfg.out) / "controls" / name), report=False))
    return subs


def _run_controls(
    cfg: EvalConfig,
    scored: tuple[Benchmark, list[dict[str, Any]], ScoreContext, dict[str, float | None]],
    predict: PredictFn,
    model_loader: LoadModelFn,
) -> dict[str, Any]:
    """Each control of `cfg.controls` as its own evaluation under `<out>/controls/<name>`; their metrics and the
    video dependence (this run minus shuffled_video) for metrics.json. `scored` is this run's (benchmark, rows,
    score context, metrics). Where the shuffled control had to leave samples out (no other video of their kind),
    this run is rescored on the same samples before subtracting: corpus metrics such as CIDEr move otherwise."""
    bench, rows, ctx, metrics = scored
    results: dict[str, dict[str, float | None]] = {}
    notes: list[str] = []
    reference = metrics
    for sub in _control_configs(cfg):
        result = evaluate(sub, predict, model_loader)
        if not result["num_samples"]:
            notes.append(f"{sub.control}: no sample has another video of its kind here, so no control was scored")
            continue
        results[sub.control] = result["metrics"]
        if sub.control == SHUFFLED_VIDEO and result["num_samples"] != len(rows):
            kept = set(_read_rows(Path(result["files"]["predictions"])))
            reference = bench.score([r for r in rows if r["id"] in kept], ctx).metrics
    out: dict[str, Any] = {"controls": results, "control_notes": notes}
    shuffled = results.get(SHUFFLED_VIDEO)
    if shuffled is not None:
        out["video_dependence"] = {
            k: v - shuffled[k]
            for k, v in reference.items()
            if k in metrics and v is not None and shuffled.get(k) is not None
        }
    return out


def evaluate(
    cfg: EvalConfig, predict: PredictFn = _default_predict, model_loader: LoadModelFn = load_model
) -> dict[str, Any]:
    """Everything except tracking: returns the metrics document plus the paths written (`files`)."""
    bench = get_benchmark(cfg.benchmark)
    split = cfg.split or bench.split
    if cfg.controls:  # the controls reuse the model the real run loaded
        model_loader = _loaded_once(model_loader)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    samples = list(islice(bench.samples(cfg.data_root, split), cfg.max_samples))
    samples, lent, predict, model_loader, control_notes = _apply_control(cfg, bench, samples, predict, model_loader)
    kept_masks: dict[str, list[list[Any]]] = {}  # predicted masks for the report's gallery
    shown = gallery.capturing(predict, kept_masks) if cfg.report else predict  # controls get the plain `predict`
    checkpoint = _checkpoint_ref(cfg.checkpoint)
    judge = make_judge(cfg)  # before inference, so a bad judge setting fails fast
    key = _progress_key(cfg, bench, split, checkpoint)
    rank, world = distributed.rank_and_world()  # under torchrun every rank predicts its slice; rank 0 merges and scores
    done = _resumed_rows(out, key, cfg.resume, rank, world)
    write_json(out / _rank_file(PROGRESS_FILE, rank, world), key)
    started = time.perf_counter()
    mine, rows_file = samples[rank::world], _rank_file(PREDICTIONS_FILE, rank, world)
    new_rows = list(_infer(cfg, bench, mine, done, shown, model_loader, out, rows_file, lent))
    done.update({row["id"]: row for row in new_rows})
    elapsed = time.perf_counter() - started
    if world > 1:
        write_json(out / _rank_file(DONE_FILE, rank, world), key)
        if rank != 0:
            for sub in _control_configs(cfg):  # every rank predicts its slice of each control too
                evaluate(sub, predict, model_loader)
            return {"benchmark": bench.name, "rank": rank, "predicted": len(new_rows), "inference_seconds": elapsed}
        done = _wait_for_ranks(out, world, key, cfg.rank_timeout)
    missing = [s.id for s in samples if s.id not in done]
    if missing:
        raise RuntimeError(
            f"{bench.name}: inference returned no prediction for {len(missing)} sample(s), e.g. {missing[:3]}"
        )
    rows = [done[s.id] for s in samples]
    with atomic_write(out / PREDICTIONS_FILE) as handle:  # final copy in sample order
        handle.writelines(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in rows)
    ctx = ScoreContext(aggregation=cfg.aggregation, judge=judge)
    scores = bench.score(rows, ctx)
    doc = _metrics_doc(bench, checkpoint, scores, len(samples), cfg.compat)
    doc["control"] = cfg.control
    doc["headline"] = list(bench.headline)
    doc["notes"] += control_notes
    if cfg.controls:
        controls = _run_controls(cfg, (bench, rows, ctx, doc["metrics"]), predict, model_loader)
        doc["notes"] += controls.pop("control_notes")
        doc.update(controls)
    write_json(out / METRICS_FILE, doc)
    write_json(out / DETAILS_FILE, {**scores.details, "inference_seconds": elapsed})
    files = {"metrics": str(out / METRICS_FILE), "predictions": str(out / PREDICTIONS_FILE)}
    submission = _write_submission(bench, samples, out)
    if submission:
        files["submission"] = submission
    if cfg.report:
        from ufvideo.eval.report import render

        gallery.write(out, bench.task, samples, rows, kept_masks)
        files.update(render(out))
    return {**doc, "files": files, "inference_seconds": elapsed, "predicted": len(new_rows)}


def _numeric(values: dict[str, float | None]) -> dict[str, float]:
    return {k: v for k, v in values.items() if v is not None}


def run(
    cfg: EvalConfig, predict: PredictFn = _default_predict, model_loader: LoadModelFn = load_model
) -> dict[str, Any]:
    """Evaluate and, with `cfg.track`, log params and metrics (`<benchmark>.<metric>`) to an MLflow "evaluate" run."""
    if not cfg.track or distributed.rank_and_world()[0] != 0:  # only rank 0 scores, so only it tracks
        return evaluate(cfg, predict, model_loader)
    from ufvideo import tracking
    from ufvideo.config import to_dict

    tags = {"ufvideo.benchmark": cfg.benchmark, "ufvideo.checkpoint": cfg.checkpoint, "ufvideo.eval_out": cfg.out}
    with tracking.start_run("evaluate", params=to_dict(cfg), tags=tags):
        result = evaluate(cfg, predict, model_loader)
        numeric = {k: v for k, v in result["metrics"].items() if v is not None}
        tracking.log_metrics({result["benchmark"]: numeric, "eval_num_samples": result["num_samples"]})
        for name, values in result.get("controls", {}).items():
            tracking.log_metrics({result["benchmark"]: {"control": {name: _numeric(values)}}})
        if result.get("video_dependence"):
            tracking.log_metrics({result["benchmark"]: {"video_dependence": result["video_dependence"]}})
        if result["predicted"] and result["inference_seconds"] > 0:
            tracking.log_throughput("eval_samples", result["predicted"], result["inference_seconds"])
    return result
