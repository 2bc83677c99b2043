"""A stand-in for the training operator's status writer, for the API-server tier: it watches TrainJobs or
PyTorchJobs on the real API server and patches their status subresource the way the operator would.

What happens to a job is chosen by the end of its name: `-ok` succeeds, `-fail` fails, anything else only gets
`Created` (the launcher's timeout path). The conditions follow each CRD's status schema (the API server rejects a
malformed one), with the condition types the operators write: Trainer v2 `Created`/`Complete`/`Failed`, training
operator v1 `Created`/`Running`/`Succeeded`/`Failed`.
"""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any

from kubernetes import client, config, watch

from ufvideo.pipeline.launch import KINDS

FAIL_REASON, FAIL_MESSAGE = "BackoffLimitExceeded", "pod node-0 exited with 1 (CUDA out of memory)"


def _condition(kind: str, type_: str, reason: str, message: str) -> dict[str, Any]:
    now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    cond = {"type": type_, "status": "True", "reason": reason, "message": message, "lastTransitionTime": now}
    if kind == "pytorchjob":
        cond["lastUpdateTime"] = now
    return cond


def _steps(kind: str, name: str) -> list[dict[str, Any]]:
    """The condition lists the operator would write, one status update each."""
    created = _condition(kind, "Created", f"{'PyTorchJob' if kind == 'pytorchjob' else 'TrainJob'}Created", "")
    steps = [[created]]
    if kind == "pytorchjob":
        steps.append([created, _condition(kind, "Running", "PyTorchJobRunning", "all pods running")])
    last = steps[-1]
    if name.endswith("-ok"):
        done = ("Succeeded", "PyTorchJobSucceeded") if kind == "pytorchjob" else ("Complete", "JobsCompleted")
        steps.append([*last, _condition(kind, *done, "training finished")])
    elif name.endswith("-fail"):
        steps.append([*last, _condition(kind, "Failed", FAIL_REASON, FAIL_MESSAGE)])
    return [{"status": {"conditions": conds}} for conds in steps]


class Controller:
    """Watch one kind in one namespace on a thread; every new job gets its status steps patched in."""

    def __init__(self, kubeconfig: str, kind: str, namespace: str) -> None:
        self.api = client.CustomObjectsApi(config.new_client_from_config(config_file=kubeconfig))
        self.kind, self.namespace = kind, namespace
        self.handled: list[str] = []
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> Controller:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _loop(self) -> None:
        group, version, plural, _ = KINDS[self.kind]
        while not self._stop.is_set():
            stream = watch.Watch().stream(
                self.api.list_namespaced_custom_object, group, version, self.namespace, plural, timeout_seconds=1
            )
            for event in stream:
                name = event["object"]["metadata"]["name"]
                if event["type"] != "ADDED" or name in self.handled:
                    continue
                self.handled.append(name)
                try:
                    for body in _steps(self.kind, name):
                        self.api.patch_namespaced_custom_object_status(
                            group, version, self.namespace, plural, name, body
                        )
                except client.ApiException as err:  # a status the schema rejects: the test reports it
                    self.errors.append(f"{name}: {err.status} {err.body}")
