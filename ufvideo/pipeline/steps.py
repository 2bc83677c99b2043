"""The pipeline's steps as plain functions over a shared workspace: what each KFP component calls in one line.

A step resolves its typed config with `ufvideo.contract.load_step_config` (profile section + the
`section.key=value` overrides addressed to it + the values the pipeline wires), nests under the KFP run's MLflow
parent (`tracking.pipeline_parent`), calls the step's `run(cfg)` (which owns its own MLflow run), and returns a
small JSON-able summary (URIs, digests, metrics) for the component's artifacts.
Large outputs stay in the workspace (a PVC in the cluster, a directory locally) or under an `s3://` store.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ufvideo.contract import load_step_config, step_runner
from ufvideo.tracking import pipeline_parent

log = logging.getLogger(__name__)


def section_overrides(overrides: Sequence[str], section: str) -> list[str]:
    """The overrides addressed to one step (`train_stage1.max_steps=2`), prefix kept (load_section strips it)."""
    return [item for item in overrides if item.startswith(f"{section}.")]


def run_dir(workspace: str, run_id: str) -> str:
    """Where one pipeline run writes: `<workspace>/runs/<run id>` (the workspace is a shared filesystem: a PVC)."""
    return os.path.join(workspace, "runs", run_id or "local")


def curate(
    workspace: str, run_id: str, profile: str = "tiny", synth_videos: int = 0, overrides: Sequence[str] = ()
) -> dict[str, Any]:
    """Curate the profile's mixture into `<run dir>/curated`; with `synth_videos` > 0 first generate the synthetic
    set into `<workspace>/data/synth` (the tiny profile's source). Relative source paths resolve in the workspace."""
    with pipeline_parent(run_id):
        if synth_videos > 0:
            flags = {"out": str(Path(workspace) / "data" / "synth"), "videos": synth_videos}
            synth_cfg = load_step_config("synth", profile, None, section_overrides(overrides, "synth"), flags)
            if 0 < synth_cfg.videos < synth_cfg.test_every:  # a smoke run would have no test video to evaluate
                log.warning(
                    "synth: %d videos < test_every %d; every 2nd video goes to test", synth_videos, synth_cfg.test_every
                )
                synth_cfg.test_every = 2
            step_runner("synth")(synth_cfg)
        flags = {"out": str(Path(run_dir(workspace, run_id)) / "curated")}
        cfg = load_step_config("curate", profile, None, section_overrides(overrides, "curate"), flags)
        for source in cfg.sources:
            if not os.path.isabs(source.path):
                source.path = str(Path(workspace) / source.path)
        manifest = step_runner("curate")(cfg)
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
    freeze_policy: str = "",
) -> dict[str, Any]:
    """Train one stage: in this process (one node, one device), under torchrun (one node, several devices), or as
    a TrainJob/PyTorchJob over `launch.num_nodes` nodes (`launch` is a `ufvideo.pipeline.launch.LaunchSettings`).
    `freeze_policy` (align | full | lora; empty: the profile's) travels as an override, so every launch path gets it."""
    from ufvideo.pipeline import launch as launcher

    flags = {
        "data": data_uri,
        "out": str(Path(run_dir(workspace, run_id)) / f"train_stage{stage}"),
        "init": init_uri or None,
        "output_uri": f"{checkpoint_store.rstrip('/')}/{run_id}/stage{stage}" if checkpoint_store else None,
    }
    step = f"train_stage{stage}"
    if freeze_policy:
        overrides = [*overrides, f"{step}.freeze_policy={freeze_policy}"]
    cfg = load_step_config(step, profile, None, section_overrides(overrides, step), flags)
    settings = launch or launcher.LaunchSettings()
    with pipeline_parent(run_id):
        if settings.num_nodes > 1 or settings.gpus_per_node > 1:
            cli_args = launcher.train_args(stage, profile, flags, section_overrides(overrides, step))
            return launcher.train_distributed(cfg, cli_args, settings, name=f"ufvideo-{run_id}-stage{stage}")
        return step_runner(step)(cfg)


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
    flags = {
        "benchmark": benchmark,
        "checkpoint": checkpoint_uri,
        "data_root": data_root or str(Path(workspace) / "data"),
        "out": str(Path(run_dir(workspace, run_id)) / "eval" / benchmark),
        "max_samples": max_samples or None,
    }
    cfg = load_step_config("eval", profile, None, section_overrides(overrides, "eval"), flags)
    with pipeline_parent(run_id):
        result = step_runner("eval")(cfg)
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
    out = str(Path(run_dir(workspace, run_id)) / "register.json")
    with pipeline_parent(run_id) as parent:
        flags = {
            "checkpoint": checkpoint_uri,
            "metrics": list(metrics_uris),
            "name": name or None,
            "policy": policy or None,
            "promote": promote,
            "pipeline_run_id": parent,
            "out": out,
        }
        return step_runner("register")(load_step_config("register", "tiny", None, (), flags))


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
