"""The pipeline's steps as plain functions over a shared workspace: what each KFP component calls in one line.

A step resolves its typed config (profile section + the `section.key=value` overrides addressed to it), runs the
library's `run(cfg)`, and returns a small JSON-able summary (URIs, digests, metrics) for the component's artifacts.
Large outputs stay in the workspace (a PVC in the cluster, a directory locally) or under an `s3://` store.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from ufvideo.config import load_section, to_dict

log = logging.getLogger(__name__)

KFP_RUN_TAG = "ufvideo.kfp_run_id"


def section_overrides(overrides: Sequence[str], section: str) -> list[str]:
    """The overrides addressed to one step (`train_stage1.max_steps=2`), prefix kept (load_section strips it)."""
    return [item for item in overrides if item.startswith(f"{section}.")]


def run_dir(workspace: str, run_id: str) -> str:
    """Where one pipeline run writes: `<workspace>/runs/<run id>` (the workspace is a shared filesystem: a PVC)."""
    return os.path.join(workspace, "runs", run_id or "local")


@contextlib.contextmanager
def pipeline_parent(run_id: str, name: str = "ufvideo-pipeline") -> Iterator[str | None]:
    """Nest the step's MLflow runs under one parent per pipeline run, found (or made) by its KFP run id tag.

    A platform-provided `MLFLOW_RUN_ID` wins. The first step of a run creates the parent; training is never
    cached, so the parallel evaluations always find it and cannot race to create two.
    """
    if os.environ.get("MLFLOW_RUN_ID") or not run_id:
        yield os.environ.get("MLFLOW_RUN_ID")
        return
    import mlflow

    from ufvideo import tracking

    mlflow.set_tracking_uri(tracking.tracking_uri())
    client = mlflow.MlflowClient()
    experiment = client.get_experiment_by_name(tracking.experiment_name())
    query = f"tags.`{KFP_RUN_TAG}` = '{run_id}'"
    found = client.search_runs([experiment.experiment_id], query, max_results=1) if experiment else []
    parent = found[0].info.run_id if found else tracking.create_pipeline_run(name, tags={KFP_RUN_TAG: run_id})
    os.environ["MLFLOW_RUN_ID"] = parent
    try:
        yield parent
    finally:
        os.environ.pop("MLFLOW_RUN_ID", None)  # it was unset on entry (else the platform's run was used)


def curate(
    workspace: str, run_id: str, profile: str = "tiny", synth_videos: int = 0, overrides: Sequence[str] = ()
) -> dict[str, Any]:
    """Curate the profile's mixture into `<run dir>/curated`; with `synth_videos` > 0 first generate the synthetic
    set into `<workspace>/data/synth` (the tiny profile's source). Relative source paths resolve in the workspace."""
    from ufvideo import tracking
    from ufvideo.data import curate as curation
    from ufvideo.data import synthetic

    with pipeline_parent(run_id):
        if synth_videos > 0:
            synth_cfg = load_section(
                synthetic.SynthConfig,
                "synth",
                profile=profile,
                overrides=section_overrides(overrides, "synth"),
                values={"out": str(Path(workspace) / "data" / "synth"), "videos": synth_videos},
            )
            if 0 < synth_cfg.videos < synth_cfg.test_every:  # a smoke run would have no test video to evaluate
                log.warning(
                    "synth: %d videos < test_every %d; every 2nd video goes to test", synth_videos, synth_cfg.test_every
                )
                synth_cfg.test_every = 2
            with tracking.start_run("synth", params=to_dict(synth_cfg)):
                synthetic.run(synth_cfg)
        cfg = load_section(
            curation.CurateConfig,
            "curate",
            profile=profile,
            overrides=section_overrides(overrides, "curate"),
            values={"out": str(Path(run_dir(workspace, run_id)) / "curated")},
        )
        for source in cfg.sources:
            if not os.path.isabs(source.path):
                source.path = str(Path(workspace) / source.path)
        with tracking.start_run("curate", params=to_dict(cfg)):
            manifest = curation.run(cfg)
            tracking.log_metrics({"records": manifest["records"]})
    return {
        "uri": cfg.out,
        "digest": manifest["digest"],
        "records": manifest["records"],
        "by_task": manifest["counts"]["by_task"],
    }


def train(
    stage: int,
    workspace: str,
    run_id: str,
    data_uri: str,
    init_uri: str = "",
    profile: str = "tiny",
    overrides: Sequence[str] = (),
    checkpoint_store: str = "",
    launch: Any = None,
) -> dict[str, Any]:
    """Train one stage: in this process (one node, one device), under torchrun (one node, several devices), or as
    a TrainJob/PyTorchJob over `launch.num_nodes` nodes (`launch` is a `ufvideo.pipeline.launch.LaunchSettings`)."""
    from ufvideo.pipeline import launch as launcher
    from ufvideo.train.run import load_config

    base = run_dir(workspace, run_id)
    values = {
        "data": data_uri,
        "out": str(Path(base) / f"train_stage{stage}"),
        "init": init_uri or None,
        "output_uri": f"{checkpoint_store.rstrip('/')}/{run_id}/stage{stage}" if checkpoint_store else None,
    }
    section = f"train_stage{stage}"
    cfg = load_config(stage, profile, overrides=section_overrides(overrides, section), values=values)
    settings = launch or launcher.LaunchSettings()
    with pipeline_parent(run_id):
        if settings.num_nodes > 1 or settings.gpus_per_node > 1:
            cli_args = launcher.train_args(stage, profile, values, section_overrides(overrides, section))
            return launcher.train_distributed(cfg, cli_args, settings, name=f"ufvideo-{run_id}-stage{stage}")
        from ufvideo.train.run import run

        return run(cfg)


def evaluate(
    benchmark: str,
    checkpoint_uri: str,
    workspace: str,
    run_id: str,
    data_root: str = "",
    profile: str = "tiny",
    max_samples: int = 0,
    overrides: Sequence[str] = (),
) -> dict[str, Any]:
    """Evaluate one benchmark into `<run dir>/eval/<benchmark>`; `data_root` defaults to `<workspace>/data`.

    The profile's optional `eval` section is the base config, so recipes can set batch size or aggregation."""
    from ufvideo.eval.run import EvalConfig, run

    values = {
        "benchmark": benchmark,
        "checkpoint": checkpoint_uri,
        "data_root": data_root or str(Path(workspace) / "data"),
        "out": str(Path(run_dir(workspace, run_id)) / "eval" / benchmark),
        "max_samples": max_samples or None,
    }
    cfg = load_section(
        EvalConfig, "eval", profile=profile, overrides=section_overrides(overrides, "eval"), values=values
    )
    with pipeline_parent(run_id):
        result = run(cfg)
    files = result.get("files", {})
    return {
        "benchmark": result["benchmark"],
        "uri": files.get("metrics", str(Path(cfg.out) / "metrics.json")),
        "metrics": {k: v for k, v in result["metrics"].items() if v is not None},
        "num_samples": result["num_samples"],
        "report_md": files.get("report_md", ""),
    }


def register(
    checkpoint_uri: str,
    metrics_uris: Sequence[str],
    workspace: str,
    run_id: str,
    name: str = "",
    policy: str = "",
    promote: bool = True,
) -> dict[str, Any]:
    """Register the checkpoint with every benchmark's metrics and run the promotion gate (a rejection raises)."""
    from ufvideo.registry import RegisterConfig, run

    out = str(Path(run_dir(workspace, run_id)) / "register.json")
    with pipeline_parent(run_id) as parent:
        cfg = RegisterConfig(
            checkpoint=checkpoint_uri,
            metrics=list(metrics_uris),
            name=name or None,
            policy=policy or None,
            promote=promote,
            pipeline_run_id=parent,
            out=out,
        )
        return run(cfg)


def write_pointer(path: str, summary: dict[str, Any]) -> None:
    """An artifact's file: the summary as JSON (URIs and digests), never the payload it points at."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def markdown_table(title: str, rows: dict[str, Any]) -> str:
    """A two-column Markdown table for a component's report artifact (KFP renders Markdown in its UI)."""
    lines = [f"# {title}", "", "| key | value |", "|---|---|"]
    lines += [f"| {key} | {value} |" for key, value in rows.items()]
    return "\n".join(lines) + "\n"


def read_report(path: str) -> str:
    """The evaluation's Markdown report, or "" when it wrote none (report disabled)."""
    return Path(path).read_text(encoding="utf-8") if path and Path(path).is_file() else ""


def training_history(run_out: str) -> list[dict[str, float]]:
    """The loss curve of a training stage (`<out>/checkpoints/checkpoint-N/trainer_state.json`, newest N): one row
    per logging step, for DVC plots. Empty when the stage saved no step checkpoint."""
    states = sorted(
        Path(run_out, "checkpoints").glob("checkpoint-*/trainer_state.json"),
        key=lambda p: int(p.parent.name.rsplit("-", 1)[-1]) if p.parent.name.rsplit("-", 1)[-1].isdigit() else -1,
    )
    if not states:
        return []
    history = json.loads(states[-1].read_text(encoding="utf-8")).get("log_history", [])
    keys = ("loss", "ce_loss", "bce_loss", "dice_loss", "learning_rate")
    rows = []
    for entry in history:
        if "loss" in entry and "step" in entry:
            rows.append({"step": int(entry["step"]), **{k: float(entry[k]) for k in keys if k in entry}})
    return rows


def write_csv(path: str, rows: list[dict[str, float]]) -> None:
    columns = list(dict.fromkeys(key for row in rows for key in row)) or ["step", "loss"]
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    lines = [",".join(columns)] + [",".join(str(row.get(col, "")) for col in columns) for row in rows]
    Path(path).write_text("\n".join(lines) + "\n", encoding="utf-8")
