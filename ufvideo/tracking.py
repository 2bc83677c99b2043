"""MLflow helpers: one run per pipeline step, nested under the pipeline run, tagged with code and data versions.

mlflow is imported inside functions so that `import ufvideo` stays cheap for steps that never log.
Only small things are logged here (params, metrics, tags); large objects go through `ufvideo.storage`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from ufvideo.errors import UFVideoError

DEFAULT_DB_FILE = "mlflow.db"
DEFAULT_EXPERIMENT = "ufvideo"
# MLflow's server-side limits (mlflow.utils.validation); longer values are rejected, not clipped.
MAX_PARAM_LENGTH = 6000
MAX_TAG_LENGTH = 8000
TRUNCATED_TAG = "ufvideo.truncated_params"
_TRUNCATION_MARK = "...[truncated]"


def tracking_uri() -> str:
    """`MLFLOW_TRACKING_URI`, else `mlflow.db` in the working directory (no server needed).

    The default is made absolute when resolved: mlflow caches one store per URI string, so a relative
    `sqlite:///mlflow.db` used from two working directories in one process would silently share the first one.
    """
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{Path.cwd() / DEFAULT_DB_FILE}"


def client() -> Any:
    """An `MlflowClient` on the configured tracking URI (runs and the model registry)."""
    import mlflow

    mlflow.set_tracking_uri(tracking_uri())
    return mlflow.MlflowClient()


def experiment_name(experiment: str | None = None) -> str:
    return experiment or os.environ.get("MLFLOW_EXPERIMENT_NAME") or DEFAULT_EXPERIMENT


def git_commit() -> str:
    """The code version: `UFVIDEO_GIT_COMMIT` (set by image builds, which ship no .git), else `git rev-parse`."""
    if commit := os.environ.get("UFVIDEO_GIT_COMMIT"):
        return commit
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    commit = result.stdout.strip()
    return commit if result.returncode == 0 and commit else "unknown"


def _as_mapping(obj: Any) -> Mapping[str, Any] | None:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return dataclasses.asdict(obj)
    return obj if isinstance(obj, Mapping) else None


def flatten_params(params: Mapping[str, Any] | Any, prefix: str = "") -> dict[str, str]:
    """Nested dicts (or config dataclasses) -> `{"a.b.c": "value"}`, the flat string form MLflow stores.

    Lists are JSON-encoded so `[1, 2]` and `["a"]` read back unambiguously.
    """
    mapping = _as_mapping(params)
    if mapping is None:
        raise TypeError(f"flatten_params: expected a mapping or dataclass, got {type(params).__name__}")
    flat: dict[str, str] = {}
    for key, value in mapping.items():
        name = f"{prefix}{key}"
        nested = _as_mapping(value)
        if nested is not None and nested:
            flat.update(flatten_params(nested, prefix=f"{name}."))
        elif isinstance(value, list | tuple):
            flat[name] = json.dumps(value, default=str)
        else:
            flat[name] = "{}" if nested is not None else str(value)
    return flat


def _truncate(params: dict[str, str]) -> tuple[dict[str, str], list[str]]:
    """Clip values over MLflow's limit (it would reject the whole batch) and report which keys were clipped."""
    clipped = []
    out = {}
    for key, value in params.items():
        if len(value) > MAX_PARAM_LENGTH:
            value = value[: MAX_PARAM_LENGTH - len(_TRUNCATION_MARK)] + _TRUNCATION_MARK
            clipped.append(key)
        out[key] = value
    return out, clipped


def log_params(params: Mapping[str, Any] | Any) -> dict[str, str]:
    """Flatten and log params to the active run; returns what was logged (after truncation)."""
    import mlflow

    flat, clipped = _truncate(flatten_params(params))
    if flat:
        mlflow.log_params(flat)
    if clipped:
        mlflow.set_tag(TRUNCATED_TAG, ",".join(clipped)[:MAX_TAG_LENGTH])
    return flat


def _flatten_metrics(metrics: Mapping[str, Any], prefix: str = "") -> dict[str, float]:
    flat: dict[str, float] = {}
    for key, value in metrics.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(_flatten_metrics(value, prefix=f"{name}."))
            continue
        try:
            flat[name] = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"metric {name!r}: {value!r} is not a number") from None
    return flat


def log_metrics(metrics: Mapping[str, Any], step: int | None = None) -> dict[str, float]:
    """Log numeric metrics (nested dicts get dotted names) to the active run; returns what was logged.

    Non-finite values are dropped: MLflow stores NaN but its UI and comparisons treat it badly,
    and an empty benchmark should be visible as a missing metric, not a fake number.
    """
    import mlflow

    if mlflow.active_run() is None:
        raise RuntimeError("log_metrics: no active MLflow run; wrap the step in ufvideo.tracking.start_run(...)")
    flat = {key: value for key, value in _flatten_metrics(metrics).items() if math.isfinite(value)}
    if flat:
        mlflow.log_metrics(flat, step=step)
    return flat


def log_throughput(name: str, count: float, seconds: float, step: int | None = None) -> float:
    """Log `<name>_per_s` (e.g. `train_samples_per_s`); the rate every step reports so runs compare on speed."""
    if seconds <= 0:
        raise ValueError(f"log_throughput({name!r}): elapsed seconds must be positive, got {seconds}")
    rate = count / seconds
    log_metrics({f"{name}_per_s": rate}, step=step)
    return rate


def _parent_run_id() -> str | None:
    """The run a step nests under: an active in-process run first, else the platform's `MLFLOW_RUN_ID`."""
    import mlflow

    active = mlflow.active_run()
    if active is not None:
        return active.info.run_id
    return os.environ.get("MLFLOW_RUN_ID") or None


def _step_experiment_id(parent: str | None, experiment: str | None) -> str:
    """A nested run lives in its parent's experiment (the UI only nests within one experiment)."""
    import mlflow
    from mlflow.exceptions import MlflowException

    if parent is not None:
        try:
            return mlflow.MlflowClient().get_run(parent).info.experiment_id
        except MlflowException as err:
            raise RuntimeError(f"parent run {parent!r} (MLFLOW_RUN_ID) not found at {tracking_uri()}: {err}") from err
    return _experiment_id(experiment_name(experiment))


def _experiment_id(name: str) -> str:
    """Get or create an experiment by name, without `mlflow.set_experiment`'s process-wide side effects."""
    import mlflow
    from mlflow.exceptions import MlflowException

    client = mlflow.MlflowClient()
    found = client.get_experiment_by_name(name)
    if found is None:
        try:
            return client.create_experiment(name)
        except MlflowException:  # another step created it meanwhile
            found = client.get_experiment_by_name(name)
            if found is None:
                raise
    if found.lifecycle_stage != "active":
        raise RuntimeError(f"experiment {name!r} at {tracking_uri()} is deleted; restore it or pick another name")
    return found.experiment_id


def step_tags(step: str, data_digest: str | None = None, tags: Mapping[str, Any] | None = None) -> dict[str, str]:
    commit = git_commit()
    out = {"ufvideo.step": step, "ufvideo.git_commit": commit, "mlflow.source.git.commit": commit}
    if data_digest:
        out["ufvideo.data_digest"] = data_digest
    out.update({key: str(value)[:MAX_TAG_LENGTH] for key, value in (tags or {}).items()})
    return out


@contextlib.contextmanager
def run_id_env(value: str | None) -> Iterator[None]:
    """Set `MLFLOW_RUN_ID` for the block and restore it after; mlflow's own end_run deletes it."""
    previous = os.environ.get("MLFLOW_RUN_ID")
    try:
        if value is None:
            os.environ.pop("MLFLOW_RUN_ID", None)
        else:
            os.environ["MLFLOW_RUN_ID"] = value
        yield
    finally:
        if previous is None:
            os.environ.pop("MLFLOW_RUN_ID", None)
        else:
            os.environ["MLFLOW_RUN_ID"] = previous


@contextlib.contextmanager
def start_run(
    step: str,
    experiment: str | None = None,
    params: Any = None,
    tags: Mapping[str, Any] | None = None,
    data_digest: str | None = None,
    spool: Any = None,
) -> Iterator[Any]:
    """Open the MLflow run for one pipeline step and yield mlflow's `ActiveRun`.

    `params` (a nested mapping or a config dataclass) are flattened and logged on entry.
    Every step gets its own new run, named after the step. It nests under the active in-process run
    if there is one, else under `MLFLOW_RUN_ID` (the pipeline run the platform or `pipeline_run`
    created; never resumed, so steps cannot clash on immutable params). A nested run lives in its
    parent's experiment, so `experiment` (else `MLFLOW_EXPERIMENT_NAME`, else "ufvideo") only names
    the experiment of a top-level run. Inside the block
    `MLFLOW_RUN_ID` names the step run, so child processes and third-party callbacks log there;
    the previous value is restored on exit. A failing block marks the run FAILED (KILLED for a signal or an
    interrupt) and re-raises; with a `spool`, an ending the server does not take is spooled instead of raising.
    """
    import mlflow

    mlflow.set_tracking_uri(tracking_uri())
    parent = _parent_run_id()
    experiment_id = _step_experiment_id(parent, experiment)
    nested = mlflow.active_run() is not None
    with run_id_env(None):  # else mlflow.start_run would resume the parent instead of creating the step run
        run = mlflow.start_run(
            experiment_id=experiment_id,
            run_name=step,
            nested=nested,
            parent_run_id=parent,
            tags=step_tags(step, data_digest, tags),
        )
    with run_id_env(run.info.run_id):
        try:
            if params is not None:
                log_params(params)
            yield run
        except BaseException as exc:
            end_active_run(run_status(exc), spool)
            raise
        end_active_run("FINISHED", spool)


def run_status(exc: BaseException) -> str:
    """MLflow status for a step that ended with `exc`: KILLED for a signal or interrupt, FAILED for an error."""
    if isinstance(exc, KeyboardInterrupt) or (isinstance(exc, SystemExit) and exc.code not in (0, None)):
        return "KILLED"
    return "FINISHED" if isinstance(exc, SystemExit) else "FAILED"


def end_active_run(status: str, spool: Any = None) -> None:
    """End the active run with `status`. When the server does not answer, the run is still closed in this process
    and, given a `spool` (`ufvideo.spool.MetricSpool`), its ending is kept there to be sent later; without one
    the failure propagates."""
    import mlflow

    run = mlflow.active_run()
    if run is None:
        return
    if spool is None:
        mlflow.end_run(status)
        return
    spool.end_run(run.info.run_id, status)  # sent now, or spooled until the server answers
    _pop_active_run()


def _pop_active_run() -> None:
    """Forget the active run in this process without a server call (mlflow.end_run would make one)."""
    from mlflow.tracking import fluent

    stack = fluent._active_run_stack.get()
    if stack:
        stack.pop()


def preflight(timeout: float = 5.0) -> None:
    """Fail in one line, before any heavy work, when the tracking server cannot be reached.

    Only an HTTP tracking URI needs a server; sqlite and file stores are checked when first opened.
    """
    import urllib.error
    import urllib.request

    uri = tracking_uri()
    if not uri.startswith(("http://", "https://")):
        return
    url = uri.rstrip("/") + "/health"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - the configured tracking URI
            response.read(64)
    except urllib.error.HTTPError:
        return  # it answered (a proxy may want auth on /health): it is there
    except (OSError, ValueError) as err:
        reason = getattr(err, "reason", err)
        raise TrackingUnavailable(
            f"MLflow tracking server {uri} (MLFLOW_TRACKING_URI) did not answer within {timeout:g} s: {reason}; "
            "start it, or point MLFLOW_TRACKING_URI elsewhere (e.g. sqlite:///mlflow.db)"
        ) from err


@contextlib.contextmanager
def bounded_requests(timeout: int = 10, retries: int = 1, backoff: int = 1) -> Iterator[None]:
    """Within the block, bound how long one MLflow HTTP call may block (mlflow's defaults: 120 s timeout, retries
    for ~4 minutes), unless the operator set these variables; for training, where a stuck call stalls every GPU."""
    wanted = {
        "MLFLOW_HTTP_REQUEST_TIMEOUT": str(timeout),
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES": str(retries),
        "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": str(backoff),
    }
    added = [name for name in wanted if name not in os.environ]
    os.environ.update({name: wanted[name] for name in added})
    try:
        yield
    finally:
        for name in added:
            os.environ.pop(name, None)


class TrackingUnavailable(UFVideoError, RuntimeError):
    """The configured MLflow tracking server cannot be reached."""


def create_pipeline_run(name: str, experiment: str | None = None, tags: Mapping[str, Any] | None = None) -> str:
    """Create (but do not activate) the parent run of a pipeline; pass its id to steps as `MLFLOW_RUN_ID`."""
    import mlflow

    mlflow.set_tracking_uri(tracking_uri())
    experiment_id = _experiment_id(experiment_name(experiment))
    all_tags = {"mlflow.runName": name, "ufvideo.pipeline": name, "ufvideo.git_commit": git_commit()}
    all_tags.update({key: str(value) for key, value in (tags or {}).items()})
    return mlflow.MlflowClient().create_run(experiment_id, tags=all_tags, run_name=name).info.run_id


def end_pipeline_run(run_id: str, status: str = "FINISHED") -> None:
    """Close a pipeline run created by `create_pipeline_run` (status FINISHED, FAILED or KILLED)."""
    import mlflow

    mlflow.set_tracking_uri(tracking_uri())
    mlflow.MlflowClient().set_terminated(run_id, status)


@contextlib.contextmanager
def pipeline_run(name: str, experiment: str | None = None, tags: Mapping[str, Any] | None = None) -> Iterator[str]:
    """The in-process form of a pipeline run: steps started inside nest under it via `MLFLOW_RUN_ID`."""
    run_id = create_pipeline_run(name, experiment, tags)
    try:
        with run_id_env(run_id):
            yield run_id
    except BaseException:
        end_pipeline_run(run_id, "FAILED")
        raise
    end_pipeline_run(run_id, "FINISHED")


KFP_RUN_TAG = "ufvideo.kfp_run_id"


@contextlib.contextmanager
def pipeline_parent(run_id: str, name: str = "ufvideo-pipeline") -> Iterator[str | None]:
    """Nest the steps' MLflow runs under one parent per orchestrator run (a KFP run id), found by its tag or made.

    A platform-provided `MLFLOW_RUN_ID` wins, and an empty `run_id` means no parent. The first step of a run
    creates the parent; training is never cached, so the parallel evaluations always find it and cannot race to
    create two. `pipeline_run` is the in-process form (the demo), this the one for steps in separate pods.
    """
    if os.environ.get("MLFLOW_RUN_ID") or not run_id:
        yield os.environ.get("MLFLOW_RUN_ID")
        return
    import mlflow

    mlflow.set_tracking_uri(tracking_uri())
    client = mlflow.MlflowClient()
    experiment = client.get_experiment_by_name(experiment_name())
    query = f"tags.`{KFP_RUN_TAG}` = '{run_id}'"
    found = client.search_runs([experiment.experiment_id], query, max_results=1) if experiment else []
    parent = found[0].info.run_id if found else create_pipeline_run(name, tags={KFP_RUN_TAG: run_id})
    with run_id_env(parent):
        yield parent
