"""The `ufvideo` command: one subcommand per step, each a thin wrapper around that step's `run(cfg)`.

Every step takes `--profile`, an optional `--config FILE` and trailing `dotted.key=value` overrides, resolved by
`ufvideo.config.load_section`, so the CLI, DVC and KFP faces all build the same typed config.
"""

from __future__ import annotations

import argparse
import errno
import json
import logging
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path

from ufvideo.config import PROFILES, ConfigError, load_profile, load_section, to_dict
from ufvideo.errors import UFVideoError
from ufvideo.process import supervised


def _add_common(parser: argparse.ArgumentParser, config: bool = True) -> None:
    parser.add_argument("--profile", default="tiny", choices=PROFILES, help="shipped profile whose section is the base")
    if config:
        parser.add_argument("--config", default=None, help="YAML file with this step's section (or a whole profile)")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="dotted overrides, e.g. seed=3")


def _cmd_synth(args: argparse.Namespace) -> int:
    from ufvideo import tracking
    from ufvideo.data.synthetic import SynthConfig, run

    values = {"out": args.out, "seed": args.seed, "videos": args.videos}
    cfg = load_section(
        SynthConfig, "synth", profile=args.profile, config_file=args.config, overrides=args.overrides, values=values
    )
    with tracking.start_run("synth", params=to_dict(cfg)):
        manifest = run(cfg)
        tracking.log_params({"output_digest": manifest["digest"]})
        tracking.log_metrics({"records": manifest["records"]})
    print(f"synthetic dataset: {manifest['records']} records in {cfg.out} (digest {manifest['digest'][:12]})")
    _print_counts(manifest["counts"]["by_split_task"])
    return 0


def _cmd_curate(args: argparse.Namespace) -> int:
    from ufvideo import tracking
    from ufvideo.data.curate import CurateConfig, run

    cfg = load_section(
        CurateConfig,
        "curate",
        profile=args.profile,
        config_file=args.config,
        overrides=args.overrides,
        values={"out": args.out},
    )
    with tracking.start_run("curate", params=to_dict(cfg)):
        manifest = run(cfg)
        tracking.log_params({"output_digest": manifest["digest"]})
        tracking.log_metrics({"records": manifest["records"], "rejects": manifest["rejects"]["total"]})
    print(f"curated dataset: {manifest['records']} records in {cfg.out} (digest {manifest['digest'][:12]})")
    _print_counts(manifest["counts"]["by_split_task"])
    return 0


def _cmd_convert(args: argparse.Namespace) -> int:
    from ufvideo.data.convert import convert_main

    return convert_main(args)


def _cmd_validate(args: argparse.Namespace) -> int:
    from ufvideo.data.shards import validate_dir

    report = validate_dir(args.dir, deep=args.deep)
    for error in report.errors:
        print(f"error: {error}", file=sys.stderr)
    print(f"{args.dir}: {report.records} valid records")
    _print_counts({"all": dict(report.by_task)}, splits=dict(report.by_split))
    if not report.ok:
        print(f"INVALID: {len(report.errors)} error(s)", file=sys.stderr)
        return 1
    return 0


def _print_counts(by_split_task: dict[str, dict[str, int]], splits: dict[str, int] | None = None) -> None:
    for split, counts in by_split_task.items():
        total = sum(counts.values())
        print(f"  {split}: {total} records")
        for task, n in sorted(counts.items()):
            print(f"    {task:<10} {n}")
    for split, n in sorted((splits or {}).items()):
        print(f"  split {split}: {n}")


def _cmd_config_show(args: argparse.Namespace) -> int:
    data = load_profile(args.profile, args.overrides)
    if args.section:
        if args.section not in data:
            raise ConfigError(f"profile {args.profile!r} has no section {args.section!r}; has: {', '.join(data)}")
        data = data[args.section]
    print(json.dumps(data, indent=2, sort_keys=True))
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from ufvideo.demo import run

    run(Path(args.workdir), profile=args.profile, overrides=args.overrides)  # prints its own summary table
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    from ufvideo.train import main as train_main

    result = train_main(args)
    if result:  # only rank 0 returns the summary
        print(json.dumps(result, indent=2, sort_keys=True))
    return 0


def _cmd_eval(args: argparse.Namespace) -> int:
    from ufvideo.eval.run import EvalConfig, run

    values = {"benchmark": args.benchmark, "checkpoint": args.checkpoint, "data_root": args.data_root, "out": args.out}
    cfg = load_section(
        EvalConfig, "eval", profile=args.profile, config_file=args.config, overrides=args.overrides, values=values
    )
    result = run(cfg)
    if "metrics" not in result:  # a torchrun rank other than 0: its predictions are merged by rank 0
        print(f"rank {result.get('rank')}: predicted {result.get('predicted')} samples")
        return 0
    print(f"{result['benchmark']}: {result['num_samples']} samples -> {cfg.out}/metrics.json")
    for name, value in result["metrics"].items():
        print(f"  {name:<28} {'not computed' if value is None else f'{value:.2f}'}")
    return 0


def _cmd_predict(args: argparse.Namespace) -> int:
    from ufvideo.predict import PredictConfig, run

    values = {"model": args.model, "video": args.video, "prompt": args.prompt, "requests": args.requests}
    values.update({"out": args.out, "regions": args.region or None, "fps": args.fps})
    cfg = load_section(
        PredictConfig, "predict", profile=args.profile, config_file=args.config, overrides=args.overrides, values=values
    )
    result = run(cfg)
    for doc in result["predictions"]:
        spans = ", ".join(f"{s:.2f}-{e:.2f}s" for s, e in doc["spans"]) or "none"
        print(f"[{doc['id']}] {doc['answer']}")
        masks = f"{len(doc['masks'])} [SEG] x {len(doc['frames'])} frames"
        print(f"  spans: {spans}; masks: {masks}; overlay: {doc['overlay']}")
    print(f"wrote {cfg.out}")
    return 0


def _cmd_model_convert(args: argparse.Namespace) -> int:
    from ufvideo.model.convert import main as convert_main

    return convert_main(args.extra + args.rest)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ufvideo", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    groups = parser.add_subparsers(dest="group", required=True)

    data = groups.add_parser("data", help="synthetic data, curation, validation").add_subparsers(
        dest="cmd", required=True
    )
    synth = data.add_parser("synth", help="generate the synthetic dataset (real mp4 files + curated records)")
    synth.add_argument("--out", required=True)
    synth.add_argument("--seed", type=int, default=None)
    synth.add_argument("--videos", type=int, default=None)
    _add_common(synth)
    synth.set_defaults(func=_cmd_synth)
    curate = data.add_parser("curate", help="combine curated inputs per a mixture recipe")
    curate.add_argument("--out", required=True)
    _add_common(curate)
    curate.set_defaults(func=_cmd_curate)
    from ufvideo.data.sources import NAMES

    convert = data.add_parser("convert", help="convert one raw public training source into the curated format")
    convert.add_argument("--source", required=True, choices=NAMES)
    convert.add_argument("--root", required=True, help="the source's raw root directory (layout: DATASETS.md)")
    convert.add_argument("--out", required=True)
    convert.add_argument("--split", default="train", help="the source's own split, e.g. valid_u for MeViS")
    _add_common(convert)
    convert.set_defaults(func=_cmd_convert)
    validate = data.add_parser("validate", help="check a curated directory; non-zero exit on any invalid record")
    validate.add_argument("dir")
    validate.add_argument("--deep", action="store_true", help="also decode every video to its end and every mask")
    validate.set_defaults(func=_cmd_validate)

    model = groups.add_parser("model", help="model checkpoints").add_subparsers(dest="cmd", required=True)
    convert = model.add_parser(
        "convert", add_help=False, help="map a released UFVideo-7B / VideoRefer-7B checkpoint onto ours"
    )
    convert.add_argument("rest", nargs=argparse.REMAINDER, help="--src DIR --out DIR [--sam sam2_hiera_large.pt]")
    convert.set_defaults(func=_cmd_model_convert, passthrough=True)

    config = groups.add_parser("config", help="inspect shipped profiles").add_subparsers(dest="cmd", required=True)
    show = config.add_parser("show", help="print a profile (or one section) with overrides applied")
    show.add_argument("--section", default=None)
    _add_common(show, config=False)
    show.set_defaults(func=_cmd_config_show)

    train = groups.add_parser("train", help="train stage 1 or 2 (HF Trainer; DeepSpeed/torchrun per the recipe)")
    train.add_argument("--stage", type=int, choices=(1, 2), required=True)
    train.add_argument("--data", default=None, help="curated dataset directory (overrides the config's data)")
    train.add_argument("--out", default=None, help="working directory: step checkpoints and the final export")
    train.add_argument("--init", default=None, help="checkpoint to start from (stage 2: the stage-1 checkpoint)")
    train.add_argument("--output-uri", default=None, help="where the final checkpoint is copied (path or s3://)")
    _add_common(train)
    train.set_defaults(func=_cmd_train)

    evaluate = groups.add_parser("eval", help="evaluate a checkpoint on a benchmark; writes metrics.json + report")
    evaluate.add_argument("--benchmark", default=None, help="registry name, e.g. synthetic, mvbench, mevis_valid_u")
    evaluate.add_argument("--checkpoint", default=None, help="checkpoint directory or s3:// URI")
    evaluate.add_argument("--data-root", dest="data_root", default=None, help="benchmark data root")
    evaluate.add_argument("--out", default=None, help="output directory")
    _add_common(evaluate)
    evaluate.set_defaults(func=_cmd_eval)

    predict = groups.add_parser("predict", help="answer a prompt on your own video: text, spans, masks, overlay video")
    predict.add_argument("--model", default=None, help="checkpoint dir, s3:// URI, or models:/NAME@ALIAS")
    predict.add_argument("--video", default=None, help="video file or folder of frame images")
    predict.add_argument("--prompt", default=None, help="the question; one <region> per --region")
    predict.add_argument("--region", action="append", default=[], metavar="MASK.png@FRAME", help="an input object")
    predict.add_argument("--requests", default=None, help="JSONL batch: {video, prompt, regions?, id?, fps?} a line")
    predict.add_argument("--fps", type=float, default=None, help="frame rate of a frame folder (default 3)")
    predict.add_argument("--out", default=None, help="output directory")
    _add_common(predict)
    predict.set_defaults(func=_cmd_predict)

    from ufvideo.registry.commands import add_parser as add_registry_parser

    add_registry_parser(groups)

    from ufvideo.pipeline.commands import add_parser as add_pipeline_parser

    add_pipeline_parser(groups)

    demo = groups.add_parser("demo", help="run the main job end to end on the embedded default")
    demo.add_argument("--workdir", default="runs/demo")
    _add_common(demo, config=False)
    demo.set_defaults(func=_cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and not getattr(args, "passthrough", False):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    args.extra = extra
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s"
    )
    supervised()  # under dvc repro or a launcher: never run on as an orphan when the parent is killed
    try:
        return int(args.func(args) or 0)
    except USER_ERRORS as exc:
        if args.verbose:
            traceback.print_exc()
        print(f"ufvideo: error: {one_line(exc)}", file=sys.stderr)
        return 2
    except OSError as exc:
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT, errno.EROFS):
            raise
        print(f"ufvideo: error: {one_line(exc)}", file=sys.stderr)  # the fix is the user's: free space, remount
        return 2


# Errors the user fixes (input, config, storage): one line, exit 2. Everything else keeps its traceback (exit 1).
USER_ERRORS = (UFVideoError, ConfigError, FileNotFoundError, PermissionError, ValueError)


def one_line(exc: BaseException) -> str:
    """The error's message on one line, with the path an OSError carries when its message lacks it."""
    text = str(exc)
    if isinstance(exc, OSError) and exc.filename and str(exc.filename) not in text:
        text = f"{exc.filename}: {exc.strerror or text}"
    return " ".join(text.split())


if __name__ == "__main__":
    sys.exit(main())
