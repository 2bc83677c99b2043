"""Process lifetime: a child that must not outlive the process that started it.

`ufvideo train` under `dvc repro` or a pipeline launcher, and `convert`'s worker pool, are children; when their
parent is killed (even with SIGKILL, which it cannot forward) Linux sends them SIGTERM through `PR_SET_PDEATHSIG`,
so training takes its preemption path (checkpoint, run KILLED) instead of running on as an orphan.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import signal
import sys

log = logging.getLogger(__name__)
_PR_SET_PDEATHSIG = 1
ENV = "UFVIDEO_DIE_WITH_PARENT"


def supervised() -> bool:
    """Die with the parent when a supervisor started us: DVC (it sets `DVC_ROOT`), or `UFVIDEO_DIE_WITH_PARENT=1`
    (pipelines, launchers). Off by default otherwise: `nohup ufvideo train ... &` must outlive its login shell.
    `UFVIDEO_DIE_WITH_PARENT=0` turns it off everywhere."""
    wanted = os.environ.get(ENV, "")
    if wanted == "0" or (wanted != "1" and "DVC_ROOT" not in os.environ):
        return False
    return die_with_parent()


def die_with_parent(sig: int = signal.SIGTERM) -> bool:
    """Ask the kernel to send `sig` to this process when its parent exits; True where supported (Linux).

    The parent may already be gone by the time this runs (then the process was re-parented): it signals itself.
    """
    if not sys.platform.startswith("linux"):
        return False
    parent = os.getppid()
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0) != 0:
            log.debug("prctl(PR_SET_PDEATHSIG) failed: errno %d", ctypes.get_errno())
            return False
    except (OSError, AttributeError):
        return False
    if parent == 1 or os.getppid() != parent:  # orphaned before the request took effect
        os.kill(os.getpid(), sig)
    return True
