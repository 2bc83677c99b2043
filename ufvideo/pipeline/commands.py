"""`ufvideo pipeline {compile,submit,run-local}`: compile the KFP pipeline to its committed YAML, submit it to a KFP
endpoint (experiment, pipeline version, run), or run it whole under `kfp.local` on this machine (tiny profile).

The pipeline and its components live in the repository's `pipelines/` and `components/` (not in the installed
package), so the handlers import them from the checkout that holds this package.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

# The checkout holding pipelines/ and components/: this package's parent (editable install), or $UFVIDEO_SOURCE
# where the package is installed elsewhere (the images copy the sources to /src).
REPO_ROOT = Path(os.environ.get("UFVIDEO_SOURCE") or Path(__file__).resolve().parents[2])
DEFAULT_YAML = REPO_ROOT / "pipelines" / "ufvideo_pipeline.yaml"
# The smallest settings that still exercise every step (the tiny profile's sections, shrunk).
TINY_OVERRIDES = (
    "train_stage1.max_steps=2",
    "train_stage2.max_steps=2",
    "train_stage1.dataloader_num_workers=0",
    "train_stage2.dataloader_num_workers=0",
)


def load_pipeline_module(reload: bool = False) -> Any:
    """Import `pipelines.ufvideo_pipeline` from the checkout; `reload` re-imports the components first, so their
    decorators read the image setting again (the image is baked into each component when it is defined)."""
    if str(REPO_ROOT) not in sys.path:
        sys.path.insert(0, str(REPO_ROOT))
    names = ["components.image", "components.curate_data", "components.train_stage"]
    names += ["components.evaluate_benchmark", "components.register_model", "pipelines.ufvideo_pipeline"]
    module = None
    for name in names:
        loaded = sys.modules.get(name)
        module = importlib.reload(loaded) if reload and loaded else importlib.import_module(name)
    return module


@contextlib.contextmanager
def _images(image: str | None, gpu_image: str | None) -> Iterator[None]:
    """Images for one compile: set the environment, re-import, and restore both afterwards."""
    wanted = {"UFVIDEO_IMAGE": image, "UFVIDEO_GPU_IMAGE": gpu_image}
    previous = {key: os.environ.get(key) for key in wanted}
    changed = any(wanted.values())
    try:
        os.environ.update({k: v for k, v in wanted.items() if v})
        yield
    finally:
        for key, value in previous.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        if changed:
            load_pipeline_module(reload=True)


def compile_yaml(
    out: str | os.PathLike[str], release: bool = False, image: str | None = None, gpu_image: str | None = None
) -> str:
    """Compile to `out`; `release` insists both images are pinned by digest (a tag can move under a release)."""
    with _images(image, gpu_image):
        module = load_pipeline_module(reload=bool(image or gpu_image))
        from components import image as setting

        if release:
            loose = [ref for ref in (setting.IMAGE, setting.GPU_IMAGE) if not setting.is_pinned(ref)]
            if loose:
                raise ValueError(f"release images must be pinned by digest (name@sha256:<64 hex>): {', '.join(loose)}")
        return module.compile_pipeline(str(out))


def run_local(
    workdir: str | os.PathLike[str],
    synth_videos: int = 4,
    overrides: list[str] | None = None,
    benchmarks: list[str] | None = None,
    max_samples: int = 4,
) -> dict[str, Any]:
    """The whole pipeline under `kfp.local` (SubprocessRunner, this interpreter, no containers) on the tiny profile,
    with MLflow in `<workdir>/mlflow.db` unless `MLFLOW_TRACKING_URI` is set. Returns the register step's outputs."""
    from kfp import local

    workdir = Path(workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("MLFLOW_TRACKING_URI", f"sqlite:///{workdir / 'mlflow.db'}")
    module = load_pipeline_module()
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(workdir / "kfp-root"))
    previous = os.getcwd()
    os.chdir(workdir)  # the steps run in this directory: MLflow's default ./mlruns lands in workdir, not the checkout
    try:
        module.ufvideo_pipeline(
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
    # the pipeline returns nothing; its result is the register step's JSON in the run directory
    results = sorted((workdir / "runs").glob("*/register.json"), key=lambda p: p.stat().st_mtime)
    if not results:
        raise RuntimeError(f"kfp.local run finished but wrote no {workdir}/runs/*/register.json")
    return {
        "workdir": str(workdir),
        "run_dir": str(results[-1].parent),
        "register": json.loads(results[-1].read_text()),
    }


def submit(
    host: str,
    package: str,
    experiment: str,
    pipeline_name: str,
    version: str | None,
    arguments: dict[str, Any],
    namespace: str | None = None,
    service_account: str | None = "ufvideo-pipeline",
    client: Any = None,
) -> dict[str, str]:
    """Upload `package` as a new version of `pipeline_name` (creating the pipeline the first time), then start a run
    of that version in `experiment`, as `service_account` (the RBAC in k8s/base/rbac lets it create training jobs).
    `client` is a `kfp.Client` (injected in tests)."""
    if client is None:
        import kfp

        client = kfp.Client(host=host, namespace=namespace)
    version = version or time.strftime("v%Y%m%d-%H%M%S")
    pipeline_id = client.get_pipeline_id(pipeline_name)
    if pipeline_id is None:
        pipeline = client.upload_pipeline(package, pipeline_name=pipeline_name)
        pipeline_id = pipeline.pipeline_id
    uploaded = client.upload_pipeline_version(package, pipeline_version_name=version, pipeline_id=pipeline_id)
    exp = client.create_experiment(experiment, namespace=namespace)
    run = client.run_pipeline(
        experiment_id=exp.experiment_id,
        job_name=f"{pipeline_name}-{version}",
        params=arguments,
        pipeline_id=pipeline_id,
        version_id=uploaded.pipeline_version_id,
        service_account=service_account or None,
    )
    return {"pipeline_id": pipeline_id, "version_id": uploaded.pipeline_version_id, "run_id": run.run_id}


def _arguments(items: list[str]) -> dict[str, Any]:
    """`--arg name=value` pairs; values are JSON when they parse (lists, dicts, numbers), else strings."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--arg {item!r} must look like name=value")
        try:
            out[key] = json.loads(raw)
        except json.JSONDecodeError:
            out[key] = raw
    return out


def cmd_compile(args: argparse.Namespace) -> int:
    path = compile_yaml(args.out, args.release, image=args.image, gpu_image=args.gpu_image)
    print(f"compiled pipeline -> {path}")
    return 0


def cmd_submit(args: argparse.Namespace) -> int:
    package = args.package
    if package is None:
        package = compile_yaml(Path(args.workdir) / "ufvideo_pipeline.yaml")
    result = submit(args.host, package, args.experiment, args.name, args.version, _arguments(args.arg), args.namespace)
    print(json.dumps(result, indent=2, sort_keys=True))
    return 0


def cmd_run_local(args: argparse.Namespace) -> int:
    result = run_local(args.workdir, args.videos, None, args.benchmark or None, args.max_samples)
    print(json.dumps(result, indent=2, sort_keys=True))
    return 0


def cmd_history(args: argparse.Namespace) -> int:
    from ufvideo.pipeline.steps import training_history, write_csv

    rows = training_history(args.run_out)
    write_csv(args.out, rows)
    print(f"{args.run_out}: {len(rows)} logged steps -> {args.out}")
    return 0


def add_parser(groups: Any) -> argparse.ArgumentParser:
    """Add `pipeline {compile,submit,run-local}` to the `ufvideo` subparsers object `groups`."""
    pipeline = groups.add_parser("pipeline", help="Kubeflow pipeline: compile, submit, run locally")
    commands = pipeline.add_subparsers(dest="cmd", required=True)

    comp = commands.add_parser("compile", help="compile the pipeline to YAML (the committed file by default)")
    comp.add_argument("--out", default=str(DEFAULT_YAML))
    comp.add_argument("--image", default=None, help="CPU image (default: components/image.py or $UFVIDEO_IMAGE)")
    comp.add_argument("--gpu-image", default=None, help="CUDA image (default: $UFVIDEO_GPU_IMAGE)")
    comp.add_argument("--release", action="store_true", help="fail unless both images are pinned by digest")
    comp.set_defaults(func=cmd_compile)

    sub = commands.add_parser("submit", help="upload a pipeline version and start a run on a KFP endpoint")
    sub.add_argument("--host", required=True, help="KFP API endpoint, e.g. https://kubeflow.example.com/pipeline")
    sub.add_argument("--package", default=None, help="compiled YAML (default: compile now)")
    sub.add_argument("--workdir", default=".", help="where to compile when --package is not given")
    sub.add_argument("--experiment", default="ufvideo")
    sub.add_argument("--name", default="ufvideo-train-eval-register", help="pipeline name on the server")
    sub.add_argument("--version", default=None, help="pipeline version name (default: a timestamp)")
    sub.add_argument("--namespace", default=None, help="KFP multi-user namespace")
    sub.add_argument("--service-account", default="ufvideo-pipeline", help="identity of the run's pods")
    sub.add_argument("--arg", action="append", default=[], help="pipeline argument name=value (JSON values ok)")
    sub.set_defaults(func=cmd_submit)

    loc = commands.add_parser("run-local", help="run the whole pipeline under kfp.local on the tiny profile")
    loc.add_argument("--workdir", default="runs/kfp-local")
    loc.add_argument("--videos", type=int, default=4, help="synthetic videos to generate")
    loc.add_argument("--benchmark", action="append", default=[], help="benchmark to evaluate (default: synthetic)")
    loc.add_argument("--max-samples", type=int, default=4, help="evaluation samples per benchmark (0: all)")
    loc.set_defaults(func=cmd_run_local)

    hist = commands.add_parser("history", help="a training stage's loss curve as CSV (DVC plots)")
    hist.add_argument("run_out", help="the stage's --out directory")
    hist.add_argument("--out", required=True, help="CSV file to write")
    hist.set_defaults(func=cmd_history)
    return pipeline
