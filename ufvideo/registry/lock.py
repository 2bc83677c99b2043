"""A registry-side mutex, so that a promotion's gate decision and its alias moves happen as one step.

MLflow has no compare-and-set on aliases, but creating a registered model is atomic on every backend (a unique
name in the store), so the lock is a registered model `<name>.lock` that exists while someone holds it. It lives
in the registry itself, so it serializes promotions from any machine that talks to the same tracking server. A
holder that died leaves the lock behind; after `stale_after` seconds it is broken (and that is logged).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import time
from collections.abc import Iterator

from ufvideo.tracking import client

log = logging.getLogger(__name__)
LOCK_SUFFIX = ".lock"


class LockTimeout(TimeoutError):
    """The lock stayed held by someone else for longer than the caller would wait."""


def _holder() -> str:
    return json.dumps({"host": socket.gethostname(), "pid": os.getpid(), "since": time.time()})


def _age(description: str | None) -> float:
    try:
        return time.time() - float(json.loads(description or "{}").get("since", 0.0))
    except (ValueError, TypeError, AttributeError):
        return float("inf")


def _try_acquire(lock: str) -> bool:
    from mlflow.exceptions import MlflowException

    try:
        client().create_registered_model(lock, description=_holder())
        return True
    except MlflowException as err:
        if err.error_code == "RESOURCE_ALREADY_EXISTS":
            return False
        raise


def _break_if_stale(lock: str, stale_after: float) -> None:
    from mlflow.exceptions import MlflowException

    try:
        held = client().get_registered_model(lock)
    except MlflowException:
        return  # released meanwhile
    if _age(held.description) > stale_after:
        log.warning("breaking the registry lock %s left by %s (older than %.0f s)", lock, held.description, stale_after)
        with contextlib.suppress(MlflowException):
            client().delete_registered_model(lock)


@contextlib.contextmanager
def registry_lock(name: str, wait: float = 120.0, stale_after: float = 600.0, poll: float = 0.2) -> Iterator[None]:
    """Hold `<name>.lock` for the block; waits up to `wait` seconds for another holder to finish."""
    lock = f"{name}{LOCK_SUFFIX}"
    deadline = time.monotonic() + wait
    while not _try_acquire(lock):
        if time.monotonic() > deadline:
            raise LockTimeout(f"registry lock {lock!r} is held by another promotion for more than {wait:.0f} s")
        _break_if_stale(lock, stale_after)
        time.sleep(poll)
    try:
        yield
    finally:
        client().delete_registered_model(lock)
