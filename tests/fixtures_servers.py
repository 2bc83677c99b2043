"""Session-scoped fixtures that run real servers on loopback: a moto S3 server and an MLflow tracking server.

Both are launched from the interpreter's own bin directory (so CI's venv is used), on free ports,
in their own process group, and are stopped with the whole group at the end of the session.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

__all__ = ["mlflow_isolated", "mlflow_server", "mlflow_tracking", "moto_server", "s3_bucket"]

_BIN = Path(sys.executable).parent


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _command(script: str, module_args: list[str]) -> list[str]:
    """Prefer the console script next to the interpreter; fall back to `python -m` if it is missing."""
    exe = _BIN / script
    return [str(exe)] if exe.exists() else [sys.executable, "-m", *module_args]


def _responds(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except urllib.error.HTTPError:
        return True  # the server answered, even if this path wants auth
    except OSError:
        return False


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)  # the group holds the server's workers too
        proc.wait(timeout=10)
    except ProcessLookupError:
        return
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


def _launch(name: str, cmd: list[str], url: str, log: Path, env: dict[str, str], timeout: float) -> subprocess.Popen:
    """Start a server and wait until `url` answers, failing with the tail of its log if it never does."""
    with open(log, "wb") as sink:
        proc = subprocess.Popen(cmd, stdout=sink, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _responds(url):
            return proc
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    _stop(proc)
    tail = log.read_text(errors="replace")[-3000:]
    pytest.fail(
        f"{name} did not answer {url} within {timeout:.0f} s (exit code {proc.returncode}).\n"
        f"command: {' '.join(cmd)}\nlog tail ({log}):\n{tail}",
        pytrace=False,
    )


@pytest.fixture(scope="session")
def moto_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A moto S3 server; yields its endpoint URL and points the AWS_* env at it for the session."""
    port = _free_port()
    endpoint = f"http://127.0.0.1:{port}"
    log = tmp_path_factory.mktemp("moto") / "moto_server.log"
    proc = _launch(
        "moto_server",
        [*_command("moto_server", ["moto.server"]), "-H", "127.0.0.1", "-p", str(port)],
        f"{endpoint}/moto-api/",
        log,
        dict(os.environ),
        timeout=30,
    )
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AWS_ENDPOINT_URL", endpoint)
        mp.setenv("AWS_ACCESS_KEY_ID", "testing")
        mp.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        mp.setenv("AWS_DEFAULT_REGION", "us-east-1")
        for name in ("AWS_ENDPOINT_URL_S3", "AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_REGION"):
            mp.delenv(name, raising=False)
        try:
            yield endpoint
        finally:
            _stop(proc)


@pytest.fixture
def s3_bucket(moto_server: str) -> str:
    """A fresh, empty bucket per test (moto keeps state for the whole session); yields `s3://name`."""
    import boto3

    name = f"test-{uuid.uuid4().hex[:16]}"
    boto3.client("s3", endpoint_url=moto_server, region_name="us-east-1").create_bucket(Bucket=name)
    return f"s3://{name}"


@contextlib.contextmanager
def running_mlflow_server(
    root: Path, artifact_root: str, label: str = "mlflow server", extra_env: dict[str, str] | None = None
) -> Iterator[str]:
    """An `mlflow server` on sqlite under `root` with artifacts at `artifact_root` (a dir or s3://); yields its URI."""
    port = _free_port()
    uri = f"http://127.0.0.1:{port}"
    env = dict(os.environ)
    env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] = "false"  # otherwise 7 job-runner processes, 2.4 GB RSS
    env.update(extra_env or {})
    cmd = [
        *_command("mlflow", ["mlflow"]),
        "server",
        "--backend-store-uri",
        f"sqlite:///{root / 'mlflow.db'}",
        "--default-artifact-root",
        artifact_root,
        "--no-serve-artifacts",  # large objects never travel through the tracking server
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
    ]
    proc = _launch(label, cmd, f"{uri}/health", root / "mlflow_server.log", env, timeout=90)
    try:
        yield uri
    finally:
        _stop(proc)


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An `mlflow server` on sqlite with artifacts on local disk; yields its tracking URI.

    It does not set MLFLOW_TRACKING_URI itself (use `mlflow_tracking`), so tests that never ask
    for it keep their own tracking target.
    """
    root = tmp_path_factory.mktemp("mlflow")
    with running_mlflow_server(root, str(root / "artifacts")) as uri:
        yield uri


@pytest.fixture
def mlflow_isolated(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No inherited MLflow env or process globals, and none left behind for the next test.

    mlflow's `set_tracking_uri`/`set_experiment` also write MLFLOW_TRACKING_URI/MLFLOW_EXPERIMENT_ID into
    os.environ; setting each name first makes monkeypatch record it, so its undo removes what mlflow added.
    """
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_RUN_ID", "MLFLOW_EXPERIMENT_NAME", "MLFLOW_EXPERIMENT_ID"):
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)
    _reset_mlflow_globals()
    yield
    _reset_mlflow_globals()  # runs before monkeypatch restores the env, since this fixture depends on it


@pytest.fixture
def mlflow_tracking(mlflow_server: str, mlflow_isolated: None, monkeypatch: pytest.MonkeyPatch) -> str:
    """Point this test at the live server, with no inherited run or experiment; yields the tracking URI."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server)
    return mlflow_server


def _reset_mlflow_globals() -> None:
    import mlflow
    import mlflow.tracking.fluent as fluent

    while mlflow.active_run() is not None:  # a failing test must not leave its run active for the next one
        mlflow.end_run("FAILED")
    mlflow.set_tracking_uri(None)  # type: ignore[arg-type]  # None means "read it from the env" again
    fluent._active_experiment_id = None  # private, but the only way to forget a set_experiment()
