"""The whole pipeline under `kfp.local` (SubprocessRunner, this interpreter, no containers) on the tiny profile.

Why it lives with the pipeline: it runs the pipeline function itself, and the library (`ufvideo`) never imports
the KFP face.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ufvideo.errors import UFVideoError

# The smallest settings that still exercise every step (the tiny profile's sections, shrunk).
TINY_OVERRIDES = (
    "train_stage1.max_steps=2",
    "train_stage2.max_steps=2",
    "train_stage1.dataloader_num_workers=0",
    "train_stage2.dataloader_num_workers=0",
)


def run_local(
    workdir: str | os.PathLike[str],
    synth_videos: int = 4,
    overrides: list[str] | None = None,
    benchmarks: list[str] | None = None,
    max_samples: int = 4,
) -> dict[str, Any]:
    """Run the pipeline in `workdir`, with MLflow in `<workdir>/mlflow.db` unless `MLFLOW_TRACKING_URI` is set.
    Returns the register step's outputs (the pipeline itself returns nothing)."""
    from kfp import local

    from pipelines.ufvideo_pipeline import build_pipeline

    workdir = Path(workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("MLFLOW_TRACKING_URI", f"sqlite:///{workdir / 'mlflow.db'}")
    pipeline = build_pipeline()
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(workdir / "kfp-root"))
    previous = os.getcwd()
    os.chdir(workdir)  # the steps run in this directory: MLflow's default ./mlruns lands in workdir, not the checkout
    try:
        pipeline(
            profile="tiny",
            workspace=str(workdir),
            synth_videos=synth_videos,
            overrides=list(TINY_OVERRIDES if overrides is None else overrides),
            benchmarks=benchmarks or ["synthetic"],
            eval_max_samples=max_samples,
            accelerator_count=1,
            stage1_num_nodes=1,
            stage2_num_nodes=1,
        )
    finally:
        os.chdir(previous)
    results = sorted((workdir / "runs").glob("*/register.json"), key=lambda p: p.stat().st_mtime)
    if not results:
        raise UFVideoError(f"kfp.local run finished but wrote no {workdir}/runs/*/register.json")
    return {
        "workdir": str(workdir),
        "run_dir": str(results[-1].parent),
        "register": json.loads(results[-1].read_text()),
    }
