"""Children die with their parent: a process that asked for it (convert's workers, `ufvideo` under dvc) gets
SIGTERM when its parent is SIGKILLed, instead of running on as an orphan."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ufvideo import process

# The parent starts a child that asked (or not) to die with it, reports the child's pid, then waits forever.
PARENT = """
import subprocess, sys
child = subprocess.Popen([sys.executable, "-c", sys.argv[1]])
print(child.pid, flush=True)
child.wait()
"""
CHILD = "import time; from ufvideo.process import die_with_parent; {} ; time.sleep(120)"


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[-1][0] != "Z"
    except FileNotFoundError:
        return False


def _orphan_survives(setup: str) -> bool:
    parent = subprocess.Popen([sys.executable, "-c", PARENT, CHILD.format(setup)], stdout=subprocess.PIPE, text=True)
    pid = int(parent.stdout.readline())
    time.sleep(1.0)  # the child's request is made
    os.kill(parent.pid, signal.SIGKILL)
    parent.wait(timeout=10)
    deadline = time.monotonic() + 10
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    survived = _alive(pid)
    if survived:
        os.kill(pid, signal.SIGKILL)
    return survived


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux-only")
def test_a_child_that_asked_dies_with_its_parent() -> None:
    assert _orphan_survives("pass")  # the control: without the request the orphan runs on
    assert not _orphan_survives("die_with_parent()")


def test_only_supervised_runs_ask(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[bool] = []
    monkeypatch.setattr(process, "die_with_parent", lambda: asked.append(True) or True)
    monkeypatch.delenv("DVC_ROOT", raising=False)
    monkeypatch.delenv(process.ENV, raising=False)
    assert not process.supervised()  # `nohup ufvideo train &` must outlive its shell
    monkeypatch.setenv("DVC_ROOT", "/repo")
    assert process.supervised()
    monkeypatch.setenv(process.ENV, "0")
    assert not process.supervised() and asked == [True]
