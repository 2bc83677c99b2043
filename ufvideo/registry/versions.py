"""Registered-model versions with lineage tags, and the alias moves: `candidate` on registration, `champion` on a
passed gate (the one it replaced kept as `previous-champion`), and rollback along that chain.

How a version points at its weights: the version's source is a small logged pyfunc (MLmodel, `serving.py`, a
`checkpoint.json` pointer) whose `model_config` names the checkpoint URI and digest; the weights stay where training
wrote them and are read from there by `load_context`. The URI is also the version's `checkpoint_uri` tag and its
description. `create_model_version(source=<checkpoint>)` was rejected: a version must load as
`models:/NAME@champion`, which needs an MLmodel at the source, and writing one into the checkpoint would change the
checkpoint's digest (and MLflow refuses local-path sources outside a run's artifacts).
The deprecated registry stages are never used: aliases are the only pointers, tags the only state.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from ufvideo import storage
from ufvideo.errors import UFVideoError
from ufvideo.registry.gate import Decision, evaluate, load_policy
from ufvideo.registry.lock import registry_lock
from ufvideo.tracking import client

DEFAULT_NAME = "ufvideo"
NAME_ENV = "UFVIDEO_MODEL_NAME"
CANDIDATE, CHAMPION, PREVIOUS = "candidate", "champion", "previous-champion"
METRIC_PREFIX = "metric."
NULL = "null"
_log = logging.getLogger(__name__)


class RegistryError(UFVideoError):
    """A registry operation that cannot proceed; the message names the model, version or file involved."""


@dataclass
class Registration:
    name: str
    version: str
    created: bool
    checkpoint_uri: str
    checkpoint_digest: str
    tags: dict[str, str] = field(default_factory=dict)


@dataclass
class Promotion:
    name: str
    version: str
    decision: Decision
    champion_before: str | None
    champion_after: str | None


def model_name(name: str | None = None) -> str:
    return name or os.environ.get(NAME_ENV) or DEFAULT_NAME


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


# --------------------------------------------------------------------------- metrics files


def _metric_value(value: Any, where: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise RegistryError(f"{where}: {value!r} is not a number or null")
    return float(value) if math.isfinite(value) else None


DEPENDENCE = "video_dependence"


def load_metrics(files: Sequence[str], checkpoint_digest: str | None = None) -> dict[str, float | None]:
    """`metrics.json` files (or the eval `--out` dirs holding them) -> `{"<benchmark>.<metric>": value | None}`.

    A file whose `checkpoint.digest` names other weights is refused: its numbers say nothing about this checkpoint.
    """
    merged: dict[str, float | None] = {}
    for file in files:
        path = storage.join(file, "metrics.json") if not str(file).endswith(".json") else str(file)
        try:
            data = json.loads(storage.read_text(path))
        except json.JSONDecodeError as err:
            raise RegistryError(f"{path}: invalid JSON: {err}") from err
        if not isinstance(data, dict) or not isinstance(data.get("benchmark"), str) or not data["benchmark"]:
            raise RegistryError(f"{path}: expected an object with a 'benchmark' name (eval metrics.json)")
        if not isinstance(data.get("metrics"), dict):
            raise RegistryError(f"{path}: field 'metrics' must be an object of metric -> number | null")
        evaluated = (data.get("checkpoint") or {}).get("digest")
        if checkpoint_digest and evaluated and evaluated != checkpoint_digest:
            raise RegistryError(
                f"{path}: evaluated checkpoint digest {evaluated[:12]} differs from the registered checkpoint's "
                f"{checkpoint_digest[:12]}; these metrics belong to other weights"
            )
        # The video dependence (trained minus shuffled-video control) is registered beside the metrics, so a gate
        # can demand that a model reads its input, not only that it beats a threshold (configs/promotion/tiny.yaml).
        dependence = {f"{DEPENDENCE}.{k}": v for k, v in (data.get(DEPENDENCE) or {}).items()}
        for metric, value in {**data["metrics"], **dependence}.items():
            key = f"{data['benchmark']}.{metric}"
            if key in merged:
                raise RegistryError(f"{path}: metric {key} is also given by an earlier metrics file")
            merged[key] = _metric_value(value, f"{path}: metrics.{metric}")
    return merged


def version_metrics(tags: Mapping[str, str]) -> dict[str, float | None]:
    """The `metric.<benchmark>.<metric>` tags of a version, back as numbers (None for recorded nulls)."""
    metrics: dict[str, float | None] = {}
    for key, value in tags.items():
        if key.startswith(METRIC_PREFIX):
            try:
                metrics[key[len(METRIC_PREFIX) :]] = None if value == NULL else float(value)
            except ValueError:
                metrics[key[len(METRIC_PREFIX) :]] = None
    return metrics


# --------------------------------------------------------------------------- lookups


def versions(name: str) -> list[Any]:
    """Every version of a registered model, oldest first (empty if the model does not exist)."""
    found = client().search_model_versions(f"name = '{name}'")
    return sorted(found, key=lambda mv: int(mv.version))


def find_by_digest(name: str, digest: str) -> Any | None:
    for mv in versions(name):
        if mv.tags.get("checkpoint_digest") == digest:
            return mv
    return None


def alias_version(name: str, alias: str) -> Any | None:
    """The version an alias points at, or None when the alias (or the model) does not exist."""
    from mlflow.exceptions import MlflowException

    try:
        return client().get_model_version_by_alias(name, alias)
    except MlflowException as err:
        if err.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND"):
            return None
        raise


def resolve(name: str, version: str | None) -> Any:
    """A version number, or an alias (`candidate` when not given) -> the ModelVersion."""
    from mlflow.exceptions import MlflowException

    ref = version or CANDIDATE
    if ref.isdigit():
        try:
            return client().get_model_version(name, ref)
        except MlflowException as err:
            raise RegistryError(f"model {name!r} has no version {ref}") from err
    found = alias_version(name, ref)
    if found is None:
        raise RegistryError(f"model {name!r} has no alias {ref!r}; register a checkpoint first")
    return found


def aliases_by_version(name: str) -> dict[str, list[str]]:
    aliases = client().get_registered_model(name).aliases or {}
    out: dict[str, list[str]] = {}
    for alias, version in aliases.items():
        out.setdefault(str(version), []).append(alias)
    return {version: sorted(names) for version, names in out.items()}


# --------------------------------------------------------------------------- register


def _parent_run(run_id: str | None) -> contextlib.AbstractContextManager[None]:
    """Nest the register run under an explicit pipeline run id, as if the platform had set MLFLOW_RUN_ID."""
    from ufvideo import tracking

    return tracking.run_id_env(run_id or os.environ.get("MLFLOW_RUN_ID"))


def _lineage_tags(
    uri: str, digest: str, info: Mapping[str, Any], metrics: Mapping[str, float | None], run_id: str
) -> dict[str, str]:
    from ufvideo.registry.lineage import lineage
    from ufvideo.tracking import git_commit

    tags = {
        "checkpoint_uri": uri,
        "checkpoint_digest": digest,
        "data_digest": str(info.get("data_digest", "")),
        "git_commit": str(info.get("git_commit") or git_commit()),
        "pipeline_run_id": run_id,
        "stage": str(info.get("stage", "")),
        "profile": str(info.get("profile", "")),
        "checkpoint_created": str(info.get("created", "")),
        "registered_at": _now(),
        **lineage(uri, digest),  # checkpoint_kind; an adapter's or a merged checkpoint's base and adapter digests
    }
    tags.update({f"{METRIC_PREFIX}{key}": NULL if value is None else repr(value) for key, value in metrics.items()})
    return tags


def _ensure_model(name: str) -> None:
    from mlflow.exceptions import MlflowException

    try:
        client().create_registered_model(name, description="UFVideo checkpoints; aliases candidate / champion")
    except MlflowException as err:
        if err.error_code != "RESOURCE_ALREADY_EXISTS":
            raise


def register(
    checkpoint: str, metrics_files: Sequence[str] = (), name: str | None = None, pipeline_run_id: str | None = None
) -> Registration:
    """Register a checkpoint as a new version (alias `candidate`), or return the version that already holds it.

    Identity is the checkpoint digest, so re-running a pipeline step (or registering a copy of the same weights
    from another location) never creates a duplicate. Two registrations racing on the same new checkpoint can
    still both create a version; pipelines run this step once per checkpoint.
    """
    import mlflow

    from ufvideo.checkpoint import checkpoint_digest, read_info
    from ufvideo.registry.pyfunc import log_model
    from ufvideo.tracking import log_metrics, start_run

    name = model_name(name)
    # A local checkpoint is recorded by absolute path: the version is loaded from other working directories.
    checkpoint = str(checkpoint) if storage.is_s3(checkpoint) else os.path.abspath(checkpoint)
    info = read_info(checkpoint)
    digest = checkpoint_digest(checkpoint)
    metrics = load_metrics(metrics_files, digest)
    existing = find_by_digest(name, digest)
    if existing is not None:
        known = version_metrics(existing.tags)
        if changed := sorted(key for key, value in metrics.items() if key not in known or known[key] != value):
            _log.warning(
                "%s v%s already holds this checkpoint; metrics left as they were: %s", name, existing.version, changed
            )
        return Registration(name, str(existing.version), False, checkpoint, digest, dict(existing.tags))
    _ensure_model(name)
    with _parent_run(pipeline_run_id):
        parent = os.environ.get("MLFLOW_RUN_ID") or ""
        run_tags = {"ufvideo.checkpoint": checkpoint}
        with start_run("register", data_digest=str(info.get("data_digest", "")), tags=run_tags) as run:
            log_metrics({key: value for key, value in metrics.items() if value is not None})
            tags = _lineage_tags(checkpoint, digest, info, metrics, parent or run.info.run_id)
            model_info = log_model(checkpoint, digest, info)
            version = mlflow.register_model(model_info.model_uri, name, tags=tags)
    client().set_registered_model_alias(name, CANDIDATE, version.version)
    client().update_model_version(
        name, version.version, description=f"UFVideo {info.get('profile')} stage {info.get('stage')}: {checkpoint}"
    )
    return Registration(name, str(version.version), True, checkpoint, digest, tags)


# --------------------------------------------------------------------------- promote / rollback


def _write_decision(name: str, version: str, decision: Decision, policy_source: str, policy_digest: str) -> None:
    values = {
        "gate.decision": "pass" if decision.passed else "fail",
        "gate.reasons": json.dumps(decision.reasons),
        "gate.checks": json.dumps(decision.checks),
        "gate.policy": policy_source,
        "gate.policy_digest": policy_digest,
        "gate.champion": decision.champion or "",
        "gate.time": _now(),
    }
    for key, value in values.items():
        client().set_model_version_tag(name, version, key, value)


def promote(name: str | None = None, version: str | None = None, policy: str | None = None) -> Promotion:
    """Run the gate on a version (default: the `candidate`); on pass move `champion` to it, keeping the old one.

    A failed gate changes no alias; its reasons are written to the version's `gate.*` tags either way. The champion
    is read, judged against and replaced under the registry lock, so concurrent promotions end as some serial
    order of them would: none passes its gate against a champion that another one has meanwhile replaced.
    """
    name = model_name(name)
    with registry_lock(name):
        return _promote(name, version, policy)


def _promote(name: str, version: str | None, policy: str | None) -> Promotion:
    candidate = resolve(name, version)
    champion = alias_version(name, CHAMPION)
    before = str(champion.version) if champion is not None else None
    if before == str(candidate.version):
        decision = Decision(True, [], [f"v{before} is already the champion"], before)
        return Promotion(name, before, decision, before, before)
    rules = load_policy(policy, profile=candidate.tags.get("profile"))
    decision = evaluate(
        version_metrics(candidate.tags),
        rules,
        version_metrics(champion.tags) if champion is not None else None,
        before,
    )
    _write_decision(name, str(candidate.version), decision, rules.source, rules.digest)
    if not decision.passed:
        return Promotion(name, str(candidate.version), decision, before, before)
    registry = client()
    if before is not None:
        registry.set_registered_model_alias(name, PREVIOUS, before)
        registry.set_model_version_tag(name, candidate.version, "previous_champion", before)
    registry.set_registered_model_alias(name, CHAMPION, candidate.version)
    registry.set_model_version_tag(name, candidate.version, "promoted_at", _now())
    return Promotion(name, str(candidate.version), decision, before, str(candidate.version))


def rollback(name: str | None = None) -> tuple[str, str]:
    """Point `champion` back at the version it replaced; returns (from, to). Repeated calls walk further back."""
    name = model_name(name)
    with registry_lock(name):
        return _rollback(name)


def _rollback(name: str) -> tuple[str, str]:
    champion = alias_version(name, CHAMPION)
    if champion is None:
        raise RegistryError(f"model {name!r} has no champion to roll back")
    target = champion.tags.get("previous_champion")
    if not target:
        previous = alias_version(name, PREVIOUS)
        target = str(previous.version) if previous is not None else ""
    if not target or target == str(champion.version):
        raise RegistryError(f"model {name!r}: champion v{champion.version} has no previous champion to restore")
    registry = client()
    restored = registry.get_model_version(name, target)
    registry.set_registered_model_alias(name, CHAMPION, target)
    older = restored.tags.get("previous_champion")
    if older:
        registry.set_registered_model_alias(name, PREVIOUS, older)
    else:
        with contextlib.suppress(Exception):
            registry.delete_registered_model_alias(name, PREVIOUS)
    registry.set_model_version_tag(name, champion.version, "rolled_back_at", _now())
    return str(champion.version), target
