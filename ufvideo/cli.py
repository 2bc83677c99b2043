"""The `ufvideo` command: a face over the step contract (`ufvideo.contract`), declaring each command's flags once.

A step command is three lines: `load_step_config(step, --profile, --config, overrides, flags)`, the step's
`run(cfg)`, and a report of its result. Flags whose `dest` is a config field become config values; trailing
`dotted.key=value` arguments are overrides. `python -m ufvideo.train` (what torchrun launches) is this parser too.
Errors: a `UFVideoError` (and a missing/denied path, a full disk) is the user's to fix and prints one line, exit 2;
anything else is a bug and raises with its traceback.
"""

from __future__ import annotations

import argparse
import errno
import json
import logging
import sys
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ufvideo.config import PROFILES, ConfigError, load_profile
from ufvideo.contract import load_step_config, step_runner
from ufvideo.errors import UFVideoError
from ufvideo.process import supervised

Report = Callable[[Any, Any, argparse.Namespace], int]


@dataclass(frozen=True)
class Flag:
    """One command-line flag: `names` and argparse keywords. `to_config`: its value sets the config field named by
    its dest (else the flag is the command's own, e.g. --stage picks the step, --allow-reject the exit code)."""

    names: tuple[str, ...]
    kwargs: dict[str, Any] = field(default_factory=dict)
    to_config: bool = True


def flag(*names: str, to_config: bool = True, **kwargs: Any) -> Flag:
    return Flag(names, kwargs, to_config)


# --------------------------------------------------------------------------- reports (a step's result, printed)


def _print_counts(by_split_task: dict[str, dict[str, int]], splits: dict[str, int] | None = None) -> None:
    for split, counts in by_split_task.items():
        total = sum(counts.values())
        print(f"  {split}: {total} records")
        for task, n in sorted(counts.items()):
            print(f"    {task:<10} {n}")
    for split, n in sorted((splits or {}).items()):
        print(f"  split {split}: {n}")


def _report_dataset(kind: str) -> Report:
    def report(cfg: Any, manifest: dict[str, Any], args: argparse.Namespace) -> int:
        print(f"{kind} dataset: {manifest['records']} records in {cfg.out} (digest {manifest['digest'][:12]})")
        _print_counts(manifest["counts"]["by_split_task"])
        return 0

    return report


def _report_convert(cfg: Any, manifest: dict[str, Any], args: argparse.Namespace) -> int:
    rejects = manifest["rejects"]["total"]
    print(f"converted {cfg.source}: {manifest['records']} records in {cfg.out}, {rejects} rejected (see rejects.jsonl)")
    for split, counts in manifest["counts"]["by_split_task"].items():
        print(f"  {split}: " + ", ".join(f"{task} {n}" for task, n in sorted(counts.items())))
    return 0


def _report_model_convert(cfg: Any, report: Any, args: argparse.Namespace) -> int:
    from ufvideo.model.convert import summary

    print(json.dumps(summary(report, cfg.out), indent=2))
    return 1 if report.unmapped or report.mismatched else 0  # a key we could not place is a failed conversion


def _report_json(cfg: Any, result: dict[str, Any], args: argparse.Namespace) -> int:
    if result:  # only rank 0 returns the summary
        print(json.dumps(result, indent=2, sort_keys=True))
    return 0


def _report_eval(cfg: Any, result: dict[str, Any], args: argparse.Namespace) -> int:
    if "metrics" not in result:  # a torchrun rank other than 0: its predictions are merged by rank 0
        print(f"rank {result.get('rank')}: predicted {result.get('predicted')} samples")
        return 0
    print(f"{result['benchmark']}: {result['num_samples']} samples -> {cfg.out}/metrics.json")
    for name, value in result["metrics"].items():
        print(f"  {name:<28} {'not computed' if value is None else f'{value:.2f}'}")
    return 0


def _report_predict(cfg: Any, result: dict[str, Any], args: argparse.Namespace) -> int:
    for doc in result["predictions"]:
        spans = ", ".join(f"{s:.2f}-{e:.2f}s" for s, e in doc["spans"]) or "none"
        print(f"[{doc['id']}] {doc['answer']}")
        masks = f"{len(doc['masks'])} [SEG] x {len(doc['frames'])} frames"
        print(f"  spans: {spans}; masks: {masks}; overlay: {doc['overlay']}")
    print(f"wrote {cfg.out}")
    return 0


def _report_register(cfg: Any, result: dict[str, Any], args: argparse.Namespace) -> int:
    from ufvideo.registry.commands import report_promotion

    state = "registered" if result["created"] else "already registered as"
    print(f"{result['name']}: {state} v{result['version']} (checkpoint {result['checkpoint']['digest'][:12]})")
    if result["promotion"] is None:
        return 0
    code = report_promotion(result["name"], result["promotion"])
    return 0 if args.allow_reject else code


# --------------------------------------------------------------------------- step commands


@dataclass(frozen=True)
class Command:
    """A step command: its path under `ufvideo`, the step it runs (or a function of the flags naming it), its
    flags and the report of its result."""

    path: tuple[str, ...]
    help: str
    step: str | Callable[[argparse.Namespace], str]
    flags: tuple[Flag, ...]
    report: Report
    config: bool = True  # takes --config FILE


NAME_HELP = "registered model name (default: $UFVIDEO_MODEL_NAME or 'ufvideo')"
STEP_COMMANDS = (
    Command(
        ("data", "synth"),
        "generate the synthetic dataset (real mp4 files + curated records)",
        "synth",
        (flag("--out", required=True), flag("--seed", type=int), flag("--videos", type=int)),
        _report_dataset("synthetic"),
    ),
    Command(
        ("data", "curate"),
        "combine curated inputs per a mixture recipe",
        "curate",
        (flag("--out", required=True),),
        _report_dataset("curated"),
    ),
    Command(
        ("data", "convert"),
        "convert one raw public training source into the curated format (extra key=value: converter options)",
        "convert-data",
        (
            flag("--source", required=True, help="source name (ufvideo.data.sources.NAMES)"),
            flag("--root", required=True, help="the source's raw root directory (layout: DATASETS.md)"),
            flag("--out", required=True),
            flag("--split", help="the source's own split, e.g. valid_u for MeViS (default: train)"),
        ),
        _report_convert,
    ),
    Command(
        ("model", "convert"),
        "map a released UFVideo-7B / VideoRefer-7B checkpoint onto ours",
        "convert-model",
        (
            flag("--src", required=True, help="released checkpoint directory"),
            flag("--out", required=True, help="output directory"),
            flag("--sam", help="Meta sam2_hiera_large.pt, for sources without SAM2"),
            flag("--siglip", help="local SigLIP checkpoint dir, for sources without the tower"),
        ),
        _report_model_convert,
    ),
    Command(
        ("model", "merge"),
        "fold a LoRA adapter checkpoint into its base: a full contract checkpoint",
        "merge-model",
        (
            flag("--adapter", required=True, help="adapter checkpoint (path or s3://)"),
            flag("--out", required=True, help="where the merged checkpoint goes (path or s3://)"),
            flag("--base", help="read the base from here instead of its recorded URI (its digest must match)"),
            flag("--dtype", choices=("auto", "float32", "bfloat16", "float16"), help="default: the base's own"),
        ),
        _report_json,
        config=False,
    ),
    Command(
        ("train",),
        "train stage 1 or 2 (HF Trainer; DeepSpeed/torchrun per the recipe)",
        lambda args: f"train_stage{args.stage}",
        (
            flag("--stage", type=int, choices=(1, 2), required=True, to_config=False),
            flag("--data", help="curated dataset directory (overrides the config's data)"),
            flag("--out", help="working directory: step checkpoints and the final export"),
            flag("--init", help="checkpoint to start from (stage 2: the stage-1 checkpoint)"),
            flag("--output-uri", dest="output_uri", help="where the final checkpoint is copied (path or s3://)"),
        ),
        _report_json,
    ),
    Command(
        ("eval",),
        "evaluate a checkpoint on a benchmark; writes metrics.json + report",
        "eval",
        (
            flag("--benchmark", help="benchmark name, e.g. synthetic, mvbench, mevis_valid_u"),
            flag("--checkpoint", help="checkpoint directory or s3:// URI"),
            flag("--data-root", dest="data_root", help="benchmark data root"),
            flag("--out", help="output directory"),
        ),
        _report_eval,
    ),
    Command(
        ("predict",),
        "answer a prompt on your own video: text, spans in seconds, mask PNGs, an overlay video",
        "predict",
        (
            flag("--model", help="checkpoint dir, s3:// URI, or models:/NAME@ALIAS"),
            flag("--video", help="video file or folder of frame images"),
            flag("--prompt", help="the question; one <region> per --region"),
            flag("--region", dest="regions", action="append", metavar="MASK.png@FRAME", help="an input object"),
            flag("--requests", help="JSONL batch: one {video, prompt, regions?, id?, fps?} object a line"),
            flag("--fps", type=float, help="frame rate of a frame folder (default 3)"),
            flag("--out", help="output directory"),
        ),
        _report_predict,
    ),
    Command(
        ("registry", "register"),
        "register a checkpoint + its eval metrics (alias 'candidate')",
        "register",
        (
            flag("--checkpoint", required=True, help="checkpoint directory: local path or s3:// prefix"),
            flag("--metrics", action="append", help="eval metrics.json (or its dir); repeatable"),
            flag("--name", help=NAME_HELP),
            flag("--run-id", dest="pipeline_run_id", help="pipeline run id to nest under (default: $MLFLOW_RUN_ID)"),
            flag("--promote", action="store_true", default=None, help="run the promotion gate on the new version"),
            flag("--policy", help="promotion policy YAML (default: shipped one for the profile)"),
            flag("--out", help="write the result as JSON here"),
            flag(
                "--allow-reject",
                action="store_true",
                to_config=False,
                help="exit 0 when the gate rejects (the decision is in --out): a pipeline's outcome, not its failure",
            ),
        ),
        _report_register,
    ),
)


def run_step(args: argparse.Namespace) -> int:
    """Every step command: config from the contract, the step's `run`, the command's report."""
    cfg = load_step_config(args.step, args.profile, args.config, args.overrides, args.flags)
    return args.report(cfg, step_runner(args.step)(cfg), args)


def _step_args(command: Command, args: argparse.Namespace) -> argparse.Namespace:
    """Resolve the step name and the flag values (dest -> value) a command's parse gave."""
    args.step = command.step if isinstance(command.step, str) else command.step(args)
    dests = [f.kwargs.get("dest") or f.names[0].lstrip("-").replace("-", "_") for f in command.flags if f.to_config]
    args.flags = {dest: getattr(args, dest) for dest in dests}
    if args.step == "register":
        args.flags["fail_on_reject"] = False  # the CLI reports a rejection as exit 1 (or 0 with --allow-reject)
    args.config = getattr(args, "config", None)
    return args


# --------------------------------------------------------------------------- other commands


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


def _cmd_promote(args: argparse.Namespace) -> int:
    from ufvideo.registry.commands import promote_version

    return promote_version(args.name, args.version, args.policy)


def _cmd_rollback(args: argparse.Namespace) -> int:
    from ufvideo.registry.commands import rollback_champion

    return rollback_champion(args.name)


def _cmd_show(args: argparse.Namespace) -> int:
    from ufvideo.registry.commands import format_table, mlflow_errors, show_rows

    with mlflow_errors():
        rows = show_rows(args.name, args.metric or None)
    print(json.dumps(rows, indent=2) if args.json else format_table(rows))
    return 0


def _cmd_history(args: argparse.Namespace) -> int:
    from ufvideo.train.history import training_history, write_csv

    rows = training_history(args.run_out)
    write_csv(args.out, rows)
    print(f"{args.run_out}: {len(rows)} logged steps -> {args.out}")
    return 0


# --------------------------------------------------------------------------- the parser


def _add_common(parser: argparse.ArgumentParser, config: bool = True) -> None:
    parser.add_argument("--profile", default="tiny", choices=PROFILES, help="shipped profile whose section is the base")
    if config:
        parser.add_argument("--config", default=None, help="YAML file with this step's section (or a whole profile)")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="dotted overrides, e.g. seed=3")


class _Tree:
    """Sub-command groups created on first use, so commands can be declared in any order."""

    def __init__(self, root: argparse.ArgumentParser) -> None:
        self.root = root.add_subparsers(dest="group", required=True)
        self.groups: dict[str, Any] = {}

    def add(self, path: tuple[str, ...], help: str) -> argparse.ArgumentParser:
        if len(path) == 1:
            return self.root.add_parser(path[0], help=help)
        if path[0] not in self.groups:
            group = self.root.add_parser(path[0], help=GROUP_HELP[path[0]])
            self.groups[path[0]] = group.add_subparsers(dest="cmd", required=True)
        return self.groups[path[0]].add_parser(path[1], help=help)


GROUP_HELP = {
    "data": "synthetic data, conversion, curation, validation",
    "model": "model checkpoints",
    "registry": "MLflow model registry: register, promote, rollback, show",
    "config": "inspect shipped profiles",
    "pipeline": "pipeline helpers (the Kubeflow pipeline's own commands: python -m pipelines)",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ufvideo", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    tree = _Tree(parser)
    for command in STEP_COMMANDS:
        sub = tree.add(command.path, command.help)
        for item in command.flags:
            sub.add_argument(*item.names, **item.kwargs)
        _add_common(sub, config=command.config)
        sub.set_defaults(func=run_step, command=command, report=command.report)

    validate = tree.add(("data", "validate"), "check a curated directory; non-zero exit on any invalid record")
    validate.add_argument("dir")
    validate.add_argument("--deep", action="store_true", help="also decode every video to its end and every mask")
    validate.set_defaults(func=_cmd_validate)

    show = tree.add(("config", "show"), "print a profile (or one section) with overrides applied")
    show.add_argument("--section", default=None)
    _add_common(show, config=False)
    show.set_defaults(func=_cmd_config_show)

    from ufvideo.registry.versions import CANDIDATE

    pro = tree.add(("registry", "promote"), "gate a version; on pass it becomes 'champion'")
    pro.add_argument("--name", default=None, help=NAME_HELP)
    pro.add_argument("--version", default=CANDIDATE, help="version number or alias (default: candidate)")
    pro.add_argument("--policy", default=None, help="promotion policy YAML (default: shipped one for the profile)")
    pro.set_defaults(func=_cmd_promote)
    back = tree.add(("registry", "rollback"), "restore the previous champion")
    back.add_argument("--name", default=None, help=NAME_HELP)
    back.set_defaults(func=_cmd_rollback)
    table = tree.add(("registry", "show"), "versions, aliases and key metrics as a table")
    table.add_argument("--name", default=None, help=NAME_HELP)
    table.add_argument("--metric", action="append", default=[], help="metric column (bench.metric); repeatable")
    table.add_argument("--json", action="store_true", help="print rows as JSON instead of a table")
    table.set_defaults(func=_cmd_show)

    hist = tree.add(("pipeline", "history"), "a training stage's loss curve as CSV (DVC plots)")
    hist.add_argument("run_out", help="the stage's --out directory")
    hist.add_argument("--out", required=True, help="CSV file to write")
    hist.set_defaults(func=_cmd_history)

    demo = tree.add(("demo",), "run the main job end to end on the embedded default")
    demo.add_argument("--workdir", default="runs/demo")
    _add_common(demo, config=False)
    demo.set_defaults(func=_cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "command", None) is not None:
        _step_args(args.command, args)
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


# Errors the user fixes: the UFVideoError family, and a path the user named that is missing or not theirs to read.
# Everything else (ValueError included) is a bug or an environment failure and keeps its traceback (exit 1).
USER_ERRORS = (UFVideoError, FileNotFoundError, PermissionError)


def one_line(exc: BaseException) -> str:
    """The error's message on one line, with the path an OSError carries when its message lacks it."""
    text = str(exc)
    if isinstance(exc, OSError) and exc.filename and str(exc.filename) not in text:
        text = f"{exc.filename}: {exc.strerror or text}"
    return " ".join(text.split())


if __name__ == "__main__":
    sys.exit(main())
