"""`python -m pipelines {compile,submit,run-local}`: the Kubeflow pipeline's own entry, living with the pipeline.

compile: the committed IR YAML (images bound here); submit: a version + run on a KFP endpoint; run-local: the
whole pipeline under kfp.local on the tiny profile. Errors print like `ufvideo`'s (one line for a UFVideoError).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from components.image import DEFAULT_GPU_IMAGE, DEFAULT_IMAGE
from ufvideo.errors import UFVideoError

DEFAULT_YAML = Path(__file__).resolve().parent / "ufvideo_pipeline.yaml"


def _compile(args: argparse.Namespace) -> int:
    from pipelines.ufvideo_pipeline import compile_pipeline

    print(f"compiled pipeline -> {compile_pipeline(args.out, args.image, args.gpu_image, args.release)}")
    return 0


def _submit(args: argparse.Namespace) -> int:
    from pipelines.submit import parse_arguments, submit
    from pipelines.ufvideo_pipeline import compile_pipeline

    package = args.package or compile_pipeline(str(Path(args.workdir) / "ufvideo_pipeline.yaml"))
    arguments = parse_arguments(args.arg)
    result = submit(
        args.host, package, args.experiment, args.name, args.version, arguments, args.namespace, args.service_account
    )
    print(json.dumps(result, indent=2, sort_keys=True))
    return 0


def _run_local(args: argparse.Namespace) -> int:
    from pipelines.local import run_local

    result = run_local(args.workdir, args.videos, None, args.benchmark or None, args.max_samples)
    print(json.dumps(result, indent=2, sort_keys=True))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m pipelines", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="cmd", required=True)

    comp = commands.add_parser("compile", help="compile the pipeline to YAML (the committed file by default)")
    comp.add_argument("--out", default=str(DEFAULT_YAML))
    comp.add_argument("--image", default=DEFAULT_IMAGE, help="CPU image of curate and register")
    comp.add_argument("--gpu-image", default=DEFAULT_GPU_IMAGE, help="CUDA image of train and evaluate")
    comp.add_argument("--release", action="store_true", help="fail unless both images are pinned by digest")
    comp.set_defaults(func=_compile)

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
    sub.set_defaults(func=_submit)

    loc = commands.add_parser("run-local", help="run the whole pipeline under kfp.local on the tiny profile")
    loc.add_argument("--workdir", default="runs/kfp-local")
    loc.add_argument("--videos", type=int, default=4, help="synthetic videos to generate")
    loc.add_argument("--benchmark", action="append", default=[], help="benchmark to evaluate (default: synthetic)")
    loc.add_argument("--max-samples", type=int, default=4, help="evaluation samples per benchmark (0: all)")
    loc.set_defaults(func=_run_local)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args) or 0)
    except UFVideoError as exc:
        print(f"pipelines: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
