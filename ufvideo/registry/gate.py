"""The promotion gate: a YAML policy of absolute thresholds per benchmark metric plus a no-regression tolerance
against the current champion, evaluated into a pass/fail decision whose reasons a human can act on.

Metrics are keyed `<benchmark>.<metric>` (as registered in the version tags, `metric.<benchmark>.<metric>`);
tolerances are absolute, in the metric's own units (points on the 0-100 scale for percentages).
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ufvideo.config import ConfigError, configs_dir, from_dict, load_yaml
from ufvideo.files import sha256_file

DEFAULT_POLICY = "default"
_EPS = 1e-9


@dataclass(frozen=True)
class MetricRule:
    """One benchmark metric's rule. `min`/`max` are absolute bounds; `tolerance` overrides the policy's."""

    min: float | None = None
    max: float | None = None
    tolerance: float | None = None
    higher_is_better: bool = True
    required: bool = True


@dataclass(frozen=True)
class Policy:
    """A promotion policy. `compare_all` extends the no-regression check from the listed metrics to every metric
    both the candidate and the champion carry; `min_metrics` rejects a candidate that was barely evaluated."""

    benchmarks: dict[str, dict[str, MetricRule]] = field(default_factory=dict)
    tolerance: float = 1.0
    compare_all: bool = True
    min_metrics: int = 1
    description: str = ""
    source: str = dataclasses.field(default="", compare=False)
    digest: str = dataclasses.field(default="", compare=False)

    def rules(self) -> dict[str, MetricRule]:
        return {f"{bench}.{metric}": rule for bench, rules in self.benchmarks.items() for metric, rule in rules.items()}


@dataclass
class Decision:
    """The gate's verdict: `reasons` are the failures (empty on pass), `checks` every comparison made."""

    passed: bool
    reasons: list[str]
    checks: list[str]
    champion: str | None = None


POLICY_ENV = "UFVIDEO_PROMOTION_POLICY"


def policy_path(profile: str | None = None) -> Path:
    """`$UFVIDEO_PROMOTION_POLICY` when set (an operator's policy file, for every profile), else the shipped policy
    for a profile (`configs/promotion/<profile>.yaml`), else the default one."""
    if os.environ.get(POLICY_ENV):
        return Path(os.environ[POLICY_ENV])
    folder = configs_dir() / "promotion"
    if profile and (folder / f"{profile}.yaml").is_file():
        return folder / f"{profile}.yaml"
    return folder / f"{DEFAULT_POLICY}.yaml"


def load_policy(path: str | os.PathLike[str] | None = None, profile: str | None = None) -> Policy:
    """Read and check a policy file (or the shipped one for `profile`); errors name the file and the key."""
    source = Path(path) if path is not None else policy_path(profile)
    if not source.is_file():
        raise FileNotFoundError(f"{source}: promotion policy not found")
    data = load_yaml(source)
    data.pop("source", None)
    data.pop("digest", None)
    try:
        policy = from_dict(Policy, data)
    except ConfigError as err:
        raise ConfigError(f"{source}: {err}") from err
    for key, rule in policy.rules().items():
        for bound in ("min", "max", "tolerance"):
            value = getattr(rule, bound)
            if value is not None and not math.isfinite(value):
                raise ConfigError(f"{source}: benchmarks.{key}.{bound} must be a finite number, got {value}")
        if rule.tolerance is not None and rule.tolerance < 0:
            raise ConfigError(f"{source}: benchmarks.{key}.tolerance must be >= 0, got {rule.tolerance}")
    if policy.tolerance < 0:
        raise ConfigError(f"{source}: tolerance must be >= 0, got {policy.tolerance}")
    return dataclasses.replace(policy, source=str(source), digest=sha256_file(source))


def _fmt(value: float) -> str:
    return f"{value:.4g}"


def _thresholds(key: str, value: float | None, rule: MetricRule) -> tuple[list[str], list[str]]:
    if value is None:
        if rule.required:
            return [f"{key}: missing (required by the policy)"], []
        return [], [f"{key}: missing (optional)"]
    failures, checks = [], []
    if rule.min is not None:
        ok = value >= rule.min - _EPS
        (checks if ok else failures).append(f"{key}: {_fmt(value)} {'>=' if ok else '<'} minimum {_fmt(rule.min)}")
    if rule.max is not None:
        ok = value <= rule.max + _EPS
        (checks if ok else failures).append(f"{key}: {_fmt(value)} {'<=' if ok else '>'} maximum {_fmt(rule.max)}")
    return failures, checks


def _regression(
    key: str, value: float, previous: float, rule: MetricRule | None, policy: Policy, champion: str
) -> tuple[bool, str]:
    higher = rule.higher_is_better if rule is not None else True
    tolerance = rule.tolerance if rule is not None and rule.tolerance is not None else policy.tolerance
    drop = (previous - value) if higher else (value - previous)
    ok = drop <= tolerance + _EPS
    verb = "within" if ok else "beyond"
    message = (
        f"{key}: {_fmt(previous)} (champion v{champion}) -> {_fmt(value)}, "
        f"{'drop' if drop > 0 else 'change'} {_fmt(abs(drop))} {verb} tolerance {_fmt(tolerance)}"
    )
    return ok, message


def evaluate(
    candidate: Mapping[str, float | None],
    policy: Policy,
    champion: Mapping[str, float | None] | None = None,
    champion_version: str | None = None,
) -> Decision:
    """Apply `policy` to the candidate's metrics, and to its change against the champion's when there is one."""
    reasons: list[str] = []
    checks: list[str] = []
    present = {key: value for key, value in candidate.items() if value is not None}
    if len(present) < policy.min_metrics:
        reasons.append(f"only {len(present)} metric(s) with a value; the policy needs at least {policy.min_metrics}")
    rules = policy.rules()
    for key, rule in sorted(rules.items()):
        failures, passed = _thresholds(key, candidate.get(key), rule)
        reasons += failures
        checks += passed + failures
    if champion is not None:
        keys = set(rules)
        if policy.compare_all:
            keys |= set(present) & {key for key, value in champion.items() if value is not None}
        for key in sorted(keys):
            value, previous = candidate.get(key), champion.get(key)
            if value is None or previous is None:
                continue
            ok, message = _regression(key, value, previous, rules.get(key), policy, champion_version or "?")
            checks.append(message)
            if not ok:
                reasons.append(f"regression: {message}")
    return Decision(passed=not reasons, reasons=reasons, checks=checks, champion=champion_version)
