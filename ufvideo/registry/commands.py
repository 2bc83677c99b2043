"""The registry step's faces: `run(RegisterConfig)` for DVC and KFP, and the `ufvideo registry ...` subcommands.

Exit codes: 0 success, 1 a promotion the gate rejected (reasons on stderr), 2 bad input (file, version, alias).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from typing import Any

from ufvideo.registry.versions import (
    CANDIDATE,
    Promotion,
    RegistryError,
    aliases_by_version,
    model_name,
    promote,
    register,
    rollback,
    version_metrics,
    versions,
)

GATE_REJECTED = 1


class PromotionRejected(RuntimeError):
    """The gate refused a candidate; `reasons` lists why (also written to the version's `gate.reasons` tag)."""

    def __init__(self, name: str, version: str, reasons: list[str]) -> None:
        super().__init__(f"{name} v{version} not promoted: " + "; ".join(reasons))
        self.reasons = reasons


@dataclass
class RegisterConfig:
    """The register step. `out` (optional) receives the result as JSON, for DVC outs and KFP outputs;
    `fail_on_reject` makes a rejected promotion raise, so a pipeline run shows it as failed."""

    checkpoint: str
    metrics: list[str] = field(default_factory=list)
    name: str | None = None
    policy: str | None = None
    promote: bool = False
    pipeline_run_id: str | None = None
    out: str | None = None
    fail_on_reject: bool = True


def _promotion_dict(promotion: Promotion) -> dict[str, Any]:
    return {
        "version": promotion.version,
        "passed": promotion.decision.passed,
        "reasons": promotion.decision.reasons,
        "checks": promotion.decision.checks,
        "champion_before": promotion.champion_before,
        "champion_after": promotion.champion_after,
    }


def run(cfg: RegisterConfig) -> dict[str, Any]:
    """Register the checkpoint (idempotent) and, with `cfg.promote`, run the gate on that version."""
    from ufvideo import storage

    registration = register(cfg.checkpoint, cfg.metrics, cfg.name, cfg.pipeline_run_id)
    result: dict[str, Any] = {
        "name": registration.name,
        "version": registration.version,
        "created": registration.created,
        "checkpoint": {"uri": registration.checkpoint_uri, "digest": registration.checkpoint_digest},
        "promotion": None,
    }
    promotion = None
    if cfg.promote:
        promotion = promote(registration.name, registration.version, cfg.policy)
        result["promotion"] = _promotion_dict(promotion)
    if cfg.out:
        storage.write_text(cfg.out, json.dumps(result, indent=2, sort_keys=True) + "\n")
    if promotion is not None and not promotion.decision.passed and cfg.fail_on_reject:
        raise PromotionRejected(registration.name, registration.version, promotion.decision.reasons)
    return result


# --------------------------------------------------------------------------- show


def _fmt_metric(value: float | None) -> str:
    return "null" if value is None else f"{value:.2f}"


def show_rows(name: str | None = None, metrics: list[str] | None = None) -> list[dict[str, str]]:
    """One row per version, newest first: aliases, lineage, gate decision and the key metrics (`metrics`, else
    those the newest version's policy gates on, else every metric any version carries)."""
    name = model_name(name)
    found = versions(name)
    if not found:
        raise RegistryError(f"model {name!r} has no registered versions")
    aliases = aliases_by_version(name)
    per_version = {mv.version: version_metrics(mv.tags) for mv in found}
    keys = metrics or _key_metrics(found[-1].tags.get("profile"), per_version)
    rows = []
    for mv in reversed(found):  # newest first, like the registry UI
        row = {
            "version": str(mv.version),
            "aliases": ",".join(aliases.get(str(mv.version), [])) or "-",
            "profile": mv.tags.get("profile", ""),
            "stage": mv.tags.get("stage", ""),
            "gate": mv.tags.get("gate.decision", "-"),
            "checkpoint": mv.tags.get("checkpoint_digest", "")[:12],
            "registered": mv.tags.get("registered_at", "")[:19],
        }
        row.update({key: _fmt_metric(per_version[mv.version].get(key)) for key in keys})
        rows.append(row)
    return rows


def _key_metrics(profile: str | None, per_version: dict[str, dict[str, float | None]]) -> list[str]:
    """The metrics the profile's policy gates on (those are what a promotion decision turns on), else all."""
    from ufvideo.registry.gate import load_policy

    available = {key for values in per_version.values() for key in values}
    gated = [key for key in sorted(load_policy(profile=profile).rules()) if key in available]
    return gated or sorted(available)


def format_table(rows: list[dict[str, str]]) -> str:
    if not rows:
        return ""
    columns = list(rows[0])
    widths = {col: max(len(col), *(len(row.get(col, "")) for row in rows)) for col in columns}
    lines = ["  ".join(col.ljust(widths[col]) for col in columns)]
    lines.append("  ".join("-" * widths[col] for col in columns))
    lines += ["  ".join(row.get(col, "").ljust(widths[col]) for col in columns) for row in rows]
    return "\n".join(line.rstrip() for line in lines)


# --------------------------------------------------------------------------- CLI handlers


def _mlflow_errors(handler: Any) -> Any:
    """Report MLflow failures (server down, bad name) as one line and exit 2, like other input errors."""

    def wrapped(args: argparse.Namespace) -> int:
        from mlflow.exceptions import MlflowException

        try:
            return handler(args)
        except (MlflowException, RegistryError) as err:
            print(f"ufvideo registry: error: {err}", file=sys.stderr)
            return 2

    wrapped.__doc__ = handler.__doc__
    return wrapped


@_mlflow_errors
def cmd_register(args: argparse.Namespace) -> int:
    """`ufvideo registry register --checkpoint URI --metrics FILE... [--name] [--run-id] [--promote]`."""
    cfg = RegisterConfig(
        checkpoint=args.checkpoint,
        metrics=list(args.metrics or []),
        name=args.name,
        policy=args.policy,
        promote=args.promote,
        pipeline_run_id=args.run_id,
        out=args.out,
        fail_on_reject=False,
    )
    result = run(cfg)
    state = "registered" if result["created"] else "already registered as"
    print(f"{result['name']}: {state} v{result['version']} (checkpoint {result['checkpoint']['digest'][:12]})")
    if result["promotion"] is not None:
        code = _report_promotion(result["name"], result["promotion"])
        return 0 if args.allow_reject else code
    return 0


def _report_promotion(name: str, promotion: dict[str, Any]) -> int:
    for check in promotion["checks"]:
        print(f"  check: {check}")
    if promotion["passed"]:
        print(f"{name}: v{promotion['version']} is champion (was {promotion['champion_before'] or 'none'})")
        return 0
    print(f"{name}: v{promotion['version']} NOT promoted; champion stays {promotion['champion_before'] or 'none'}")
    for reason in promotion["reasons"]:
        print(f"  reason: {reason}", file=sys.stderr)
    return GATE_REJECTED


@_mlflow_errors
def cmd_promote(args: argparse.Namespace) -> int:
    """`ufvideo registry promote [--name] [--version N|ALIAS] [--policy FILE]`; exit 1 when the gate rejects."""
    promotion = promote(args.name, args.version, args.policy)
    return _report_promotion(promotion.name, _promotion_dict(promotion))


@_mlflow_errors
def cmd_rollback(args: argparse.Namespace) -> int:
    """`ufvideo registry rollback [--name]`: champion back to the version it replaced."""
    name = model_name(args.name)
    before, after = rollback(name)
    print(f"{name}: champion v{before} -> v{after}")
    return 0


@_mlflow_errors
def cmd_show(args: argparse.Namespace) -> int:
    """`ufvideo registry show [--name] [--metric bench.metric ...] [--json]`."""
    rows = show_rows(args.name, args.metric or None)
    print(json.dumps(rows, indent=2) if args.json else format_table(rows))
    return 0


def add_parser(groups: Any) -> argparse.ArgumentParser:
    """Add `registry {register,promote,rollback,show}` to the `ufvideo` subparsers object `groups`."""
    registry = groups.add_parser("registry", help="MLflow model registry: register, promote, rollback, show")
    commands = registry.add_subparsers(dest="cmd", required=True)
    name_help = "registered model name (default: $UFVIDEO_MODEL_NAME or 'ufvideo')"

    reg = commands.add_parser("register", help="register a checkpoint + its eval metrics (alias 'candidate')")
    reg.add_argument("--checkpoint", required=True, help="checkpoint directory: local path or s3:// prefix")
    reg.add_argument("--metrics", action="append", default=[], help="eval metrics.json (or its dir); repeatable")
    reg.add_argument("--name", default=None, help=name_help)
    reg.add_argument("--run-id", default=None, help="pipeline run id to nest under (default: $MLFLOW_RUN_ID)")
    reg.add_argument("--promote", action="store_true", help="run the promotion gate on the new version")
    reg.add_argument(
        "--allow-reject",
        action="store_true",
        help="exit 0 when the gate rejects (the decision is in --out): a pipeline's outcome, not its failure",
    )
    reg.add_argument("--policy", default=None, help="promotion policy YAML (default: shipped one for the profile)")
    reg.add_argument("--out", default=None, help="write the result as JSON here")
    reg.set_defaults(func=cmd_register)

    pro = commands.add_parser("promote", help="gate a version; on pass it becomes 'champion'")
    pro.add_argument("--name", default=None, help=name_help)
    pro.add_argument("--version", default=CANDIDATE, help="version number or alias (default: candidate)")
    pro.add_argument("--policy", default=None, help="promotion policy YAML (default: shipped one for the profile)")
    pro.set_defaults(func=cmd_promote)

    back = commands.add_parser("rollback", help="restore the previous champion")
    back.add_argument("--name", default=None, help=name_help)
    back.set_defaults(func=cmd_rollback)

    show = commands.add_parser("show", help="versions, aliases and key metrics as a table")
    show.add_argument("--name", default=None, help=name_help)
    show.add_argument("--metric", action="append", default=[], help="metric column (bench.metric); repeatable")
    show.add_argument("--json", action="store_true", help="print rows as JSON instead of a table")
    show.set_defaults(func=cmd_show)
    return registry
