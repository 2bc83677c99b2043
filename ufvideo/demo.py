"""The main job end to end on one machine: what `make demo` runs (synth -> curate -> ... -> register).

Each step is the library's own `run(cfg)`, tracked as a nested MLflow run under one pipeline run, so the
demo exercises exactly the code the DVC stages and KFP components call. Later steps append themselves here.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ufvideo import tracking
from ufvideo.config import load_section, to_dict

log = logging.getLogger(__name__)


def _section_overrides(overrides: Sequence[str], section: str) -> list[str]:
    return [o for o in overrides if o.startswith(f"{section}.")]


def run(workdir: Path, profile: str = "tiny", overrides: Sequence[str] = ()) -> dict[str, Any]:
    """Run every implemented step under `workdir`; returns a summary (paths, counts, digests, run ids)."""
    from ufvideo.data import curate, synthetic

    workdir = workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("MLFLOW_TRACKING_URI", f"sqlite:///{workdir / 'mlflow.db'}")
    summary: dict[str, Any] = {"workdir": str(workdir), "profile": profile, "tracking_uri": tracking.tracking_uri()}

    synth_cfg = load_section(
        synthetic.SynthConfig,
        "synth",
        profile=profile,
        overrides=_section_overrides(overrides, "synth"),
        values={"out": str(workdir / "data" / "synth")},
    )
    curate_cfg = load_section(
        curate.CurateConfig,
        "curate",
        profile=profile,
        overrides=_section_overrides(overrides, "curate"),
        values={"out": str(workdir / "data" / "curated")},
    )
    for spec in curate_cfg.sources:
        if not os.path.isabs(spec.path):
            spec.path = str(workdir / spec.path)

    with tracking.pipeline_run("demo", tags={"ufvideo.profile": profile}) as pipeline_run_id:
        summary["pipeline_run_id"] = pipeline_run_id
        with tracking.start_run("synth", params=to_dict(synth_cfg)):
            manifest = synthetic.run(synth_cfg)
            tracking.log_metrics({"records": manifest["records"]})
        summary["synth"] = {"path": synth_cfg.out, "records": manifest["records"], "digest": manifest["digest"]}
        with tracking.start_run("curate", params=to_dict(curate_cfg), data_digest=manifest["digest"]):
            curated = curate.run(curate_cfg)
            tracking.log_metrics({"records": curated["records"], "rejects": curated["rejects"]["total"]})
        summary["curate"] = {
            "path": curate_cfg.out,
            "records": curated["records"],
            "digest": curated["digest"],
            "by_task": curated["counts"]["by_task"],
        }
    log.info("demo finished in %s", workdir)
    return summary
