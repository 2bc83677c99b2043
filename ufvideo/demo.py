"""What `make demo` runs: `dvc repro` of the repository's pipeline (synthetic data -> curated -> stage 1 -> stage 2 ->
evaluation -> registered model with its alias), then a metrics table and where to look.

`workdir` is the DVC project to reproduce. The repository itself works (`--workdir .`); any other directory
without a `dvc.yaml` is set up as a copy of the repository's pipeline (`dvc.yaml`, `params.yaml`, `dvc init
--no-scm`), so the demo leaves the checkout untouched and `key=value` overrides edit that copy's `params.yaml`.
Every step's MLflow run nests under one "demo" run in `<workdir>/mlflow.db` (unless MLFLOW_TRACKING_URI is set).
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from ufvideo import tracking
from ufvideo.config import ConfigError, apply_overrides
from ufvideo.eval.control import format_value, summary_rows
from ufvideo.files import read_json

log = logging.getLogger(__name__)
REPO_ROOT = Path(os.environ.get("UFVIDEO_SOURCE") or Path(__file__).resolve().parents[1])  # holds dvc.yaml
PIPELINE_FILES = ("dvc.yaml", "params.yaml")
EVAL_DIR = Path("runs") / "eval" / "synthetic"
REGISTER_FILE = Path("runs") / "register.json"


def _dvc(workdir: Path, *args: str) -> None:
    """Run the dvc CLI of this interpreter's environment (the one `ufvideo` is installed in) inside `workdir`."""
    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
    bin_dir = str(Path(sys.executable).parent)
    env["PATH"] = bin_dir + os.pathsep + env.get("PATH", "")  # the stages call `ufvideo` from the same venv
    exe = shutil.which("dvc", path=bin_dir) or "dvc"
    completed = subprocess.run([exe, *args], cwd=workdir, env=env, check=False)
    if completed.returncode:
        raise RuntimeError(f"`dvc {' '.join(args)}` failed in {workdir} (exit {completed.returncode})")


def prepare(workdir: Path, overrides: Sequence[str] = ()) -> bool:
    """Make `workdir` a DVC project running the repository's pipeline; returns False when it already had one.

    Overrides (`train_stage1.max_steps=2`) are written into the copy's params.yaml, so `dvc repro` sees them as
    changed parameters and reruns exactly the stages that use them.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    own = (workdir / "dvc.yaml").is_file() and not (workdir / ".ufvideo-demo").is_file()
    if own:
        if overrides:
            raise ConfigError(f"{workdir} has its own dvc.yaml: edit its params.yaml or use `dvc exp run -S key=value`")
        return False
    for name in PIPELINE_FILES:
        shutil.copyfile(REPO_ROOT / name, workdir / name)
    if overrides:
        params = yaml.safe_load((REPO_ROOT / "params.yaml").read_text(encoding="utf-8"))
        (workdir / "params.yaml").write_text(yaml.safe_dump(apply_overrides(params, overrides), sort_keys=False))
    (workdir / ".ufvideo-demo").write_text("set up by `ufvideo demo`; dvc.yaml and params.yaml are copies\n")
    if not (workdir / ".dvc").is_dir():
        _dvc(workdir, "init", "--no-scm", "-q")
    return True


def metrics_table(metrics: dict[str, float | None]) -> str:
    """Computed metrics as an aligned table; metrics that need a judge (null) are counted, not printed."""
    computed = {k: v for k, v in metrics.items() if v is not None}
    width = max([len(k) for k in computed] + [6])
    lines = [f"  {'metric':<{width}}  value", f"  {'-' * width}  -----"]
    lines += [f"  {k:<{width}}  {v:.2f}" for k, v in computed.items()]
    missing = len(metrics) - len(computed)
    if missing:
        lines.append(f"  ({missing} metrics not computed: they need a judge endpoint, see UFVIDEO_JUDGE_BASE_URL)")
    return "\n".join(lines)


def controls_table(doc: dict[str, Any]) -> str:
    """The headline metric(s) of each task: this run beside the blind prior and the shuffled-video control, and the
    video dependence (this run minus shuffled); what tells a learned-to-look model from an answer-prior one."""
    rows = summary_rows(doc)
    width = max([len(r[0]) for r in rows] + [6])
    head = ("trained", "prior", "shuffled", "video dep.")
    lines = [
        f"  {'metric':<{width}}  " + "  ".join(f"{h:>10}" for h in head),
        f"  {'-' * width}  " + "  ".join(["-" * 10] * 4),
    ]
    lines += [f"  {r[0]:<{width}}  " + "  ".join(f"{format_value(v):>10}" for v in r[1:]) for r in rows]
    return "\n".join(lines)


def summary(workdir: Path, tracking_uri: str) -> dict[str, Any]:
    doc = read_json(workdir / EVAL_DIR / "metrics.json")
    registered = read_json(workdir / REGISTER_FILE)
    promotion = registered.get("promotion") or {}
    return {
        "workdir": str(workdir),
        "benchmark": doc["benchmark"],
        "num_samples": doc["num_samples"],
        "metrics": doc["metrics"],
        "controls_table": controls_table(doc) if doc.get("controls") else None,
        "model": registered["name"],
        "version": registered["version"],
        "promoted": bool(promotion.get("passed")),
        "champion": promotion.get("champion_after"),
        "checkpoint": registered["checkpoint"],
        "report": str(workdir / EVAL_DIR / "report.html"),
        "tracking_uri": tracking_uri,
    }


def print_summary(result: dict[str, Any]) -> None:
    print(f"\n{result['benchmark']} ({result['num_samples']} samples), checkpoint {result['checkpoint']['uri']}")
    if result.get("controls_table"):
        print(result["controls_table"])
        print(f"  (all {len(result['metrics'])} metrics: the report below and `dvc metrics show`)")
    else:
        print(metrics_table(result["metrics"]))
    alias = f"alias 'champion' -> v{result['champion']}" if result["promoted"] else "not promoted (gate rejected)"
    print(f"\nregistered model: {result['model']} v{result['version']}, {alias}")
    print("where to look:")
    print(f"  report:   {result['report']}")
    print(f"  MLflow:   mlflow ui --backend-store-uri {result['tracking_uri']}")
    print(f"  DVC:      cd {result['workdir']} && dvc metrics show && dvc plots show")
    print(f"  registry: MLFLOW_TRACKING_URI={result['tracking_uri']} ufvideo registry show --name {result['model']}\n")


def run(workdir: Path, profile: str = "tiny", overrides: Sequence[str] = ()) -> dict[str, Any]:
    """`dvc repro` in `workdir` (set up from the repository when needed), then the summary; returns it."""
    if profile != "tiny":
        raise ConfigError(f"demo: the DVC pipeline runs the tiny profile only, not {profile!r}")
    workdir = workdir.resolve()
    prepare(workdir, overrides)
    os.environ.setdefault("MLFLOW_TRACKING_URI", f"sqlite:///{workdir / 'mlflow.db'}")
    uri = tracking.tracking_uri()
    with tracking.pipeline_run("demo", tags={"ufvideo.profile": profile, "ufvideo.workdir": str(workdir)}) as run_id:
        _dvc(workdir, "repro")
    result = {**summary(workdir, uri), "pipeline_run_id": run_id}
    print_summary(result)
    log.info("demo finished in %s", workdir)
    return result
