"""Promotion as a compare-and-set: concurrent `promote` processes against a live `mlflow server` end as a serial
run would, and the registry lock they take is released, waited for, and broken when its holder died."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.registry.helpers import fake_checkpoint, write_metrics, write_policy
from ufvideo.registry import versions
from ufvideo.registry.lock import LockTimeout, registry_lock
from ufvideo.registry.versions import CHAMPION

POLICY = """
tolerance: 1.0
min_metrics: 1
benchmarks:
  mvbench:
    accuracy: {min: 40.0}
"""
# Each process imports everything, then sleeps until the shared start time: the two gates run at the same moment.
PROMOTE_AT = """
import sys, time
from ufvideo.registry import versions
start, name, version, policy = float(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
time.sleep(max(0.0, start - time.time()))
print(versions.promote(name, version, policy).decision.passed)
"""


def _register(tmp_path: Path, name: str, seed: int, accuracy: float) -> str:
    ckpt = fake_checkpoint(tmp_path / f"ckpt{seed}", seed=seed)
    metrics = write_metrics(tmp_path / f"eval{seed}", "mvbench", {"accuracy": accuracy}, ckpt)
    return versions.register(str(ckpt), [str(metrics)], name=name).version


def test_concurrent_promotions_end_as_a_serial_run_would(tmp_path, mlflow_s3_tracking, registry_name):
    policy = str(write_policy(tmp_path / "policy.yaml", POLICY))
    first = _register(tmp_path, registry_name, 1, 50.0)
    better = _register(tmp_path, registry_name, 2, 60.0)
    worse = _register(tmp_path, registry_name, 3, 55.0)  # beats v1, but regresses 5 points against v2
    assert versions.promote(registry_name, first, policy).decision.passed
    start = time.time() + 12.0  # time enough for both interpreters to import mlflow on a loaded 2-core box
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", PROMOTE_AT, str(start), registry_name, version, policy],
            env=dict(os.environ),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for version in (worse, better)
    ]
    outputs = [proc.communicate(timeout=180) for proc in procs]
    assert all(proc.returncode == 0 for proc in procs), [err[-2000:] for _, err in outputs]
    assert time.time() > start, "the processes started late: the race was not run"
    client = versions.client()
    assert client.get_model_version_by_alias(registry_name, CHAMPION).version == better
    judged_against = {v: client.get_model_version(registry_name, v).tags["gate.champion"] for v in (worse, better)}
    # Serially, the second promotion is judged against the champion the first one left; racing, both saw v1.
    assert judged_against in ({worse: first, better: worse}, {worse: better, better: first}), judged_against
    assert not any(m.name.endswith(".lock") for m in client.search_registered_models(f"name LIKE '{registry_name}%'"))


def test_the_lock_waits_for_its_holder_and_breaks_a_dead_ones(mlflow_s3_tracking, registry_name):
    with (
        registry_lock(registry_name),
        pytest.raises(LockTimeout, match="held by another promotion"),
        registry_lock(registry_name, wait=0.5),
    ):
        pass
    holder = json.dumps({"host": "gone", "pid": 1, "since": time.time() - 3600})
    versions.client().create_registered_model(f"{registry_name}.lock", description=holder)  # a holder that died
    with registry_lock(registry_name, wait=5.0, stale_after=60.0):
        pass
