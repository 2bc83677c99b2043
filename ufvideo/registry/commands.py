"""The register step (`RegisterConfig` + `run`) and what `ufvideo registry ...` prints (show table, gate report).

Exit codes: 0 success, 1 a promotion the gate rejected (reasons on stderr), 2 bad input (file, version, alias).
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator
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

    with mlflow_errors():
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
        with mlflow_errors():
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


# --------------------------------------------------------------------------- what the CLI prints


@contextlib.contextmanager
def mlflow_errors() -> Iterator[None]:
    """An MLflow failure (server down, unknown name) as a RegistryError: a one-line user error at the CLI."""
    from mlflow.exceptions import MlflowException

    try:
        yield
    except MlflowException as err:
        raise RegistryError(str(err)) from err


def report_promotion(name: str, promotion: dict[str, Any]) -> int:
    """Print the gate's checks and decision; GATE_REJECTED (1) when it refused, else 0."""
    for check in promotion["checks"]:
        print(f"  check: {check}")
    if promotion["passed"]:
        print(f"{name}: v{promotion['version']} is champion (was {promotion['champion_before'] or 'none'})")
        return 0
    print(f"{name}: v{promotion['version']} NOT promoted; champion stays {promotion['champion_before'] or 'none'}")
    for reason in promotion["reasons"]:
        print(f"  reason: {reason}", file=sys.stderr)
    return GATE_REJECTED


def promote_version(name: str | None, version: str = CANDIDATE, policy: str | None = None) -> int:
    """Gate `version` (number or alias); exit code 0 when it became champion, 1 when the gate rejected it."""
    with mlflow_errors():
        promotion = promote(name, version, policy)
    return report_promotion(promotion.name, _promotion_dict(promotion))


def rollback_champion(name: str | None) -> int:
    """Champion back to the version it replaced."""
    name = model_name(name)
    with mlflow_errors():
        before, after = rollback(name)
    print(f"{name}: champion v{before} -> v{after}")
    return 0
