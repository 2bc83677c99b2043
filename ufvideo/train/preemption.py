"""Preemption: SIGTERM (what Kubernetes sends an evicted pod, and what a dying parent sends through PDEATHSIG) ends
training at the next step boundary with a saved, complete-marked checkpoint, and the MLflow run KILLED.

The signal handler only sets a flag; the callback turns it into `should_save` + `should_training_stop` at the end
of the current optimizer step, so the checkpoint is the same one a scheduled save would write and resume continues
from it exactly. Under torchrun every rank must stop at the same step (the save is collective), so the flag is
max-reduced over ranks at each step end. Time to exit is one step plus one save: the pod's
`terminationGracePeriodSeconds` must cover that.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from transformers import TrainerCallback

log = logging.getLogger(__name__)
EXIT_CODE = 128 + signal.SIGTERM  # what a process killed by SIGTERM reports; schedulers read it as "preempted"


class Preempted(SystemExit):
    """Raised after the preemption checkpoint is saved; exits 143 and marks the tracking run KILLED."""

    def __init__(self, message: str) -> None:
        super().__init__(EXIT_CODE)
        self.message = message

    def __str__(self) -> str:
        return self.message


class PreemptionCallback(TrainerCallback):
    """Stops training, with a checkpoint, at the first step end after SIGTERM."""

    def __init__(self) -> None:
        self.requested = False
        self.stopped_at: int | None = None

    def request(self, signum: int = signal.SIGTERM, _frame: Any = None) -> None:
        if not self.requested:
            log.warning("signal %d: saving a checkpoint at the end of this step, then exiting", signum)
        self.requested = True
        signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a second SIGTERM kills at once

    def _any_rank_requested(self, args: Any) -> bool:
        if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
            return self.requested
        flag = torch.tensor([1.0 if self.requested else 0.0], device=args.device)
        torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
        return bool(flag.item())

    def on_step_end(self, args: Any, state: Any, control: Any, **_: Any) -> None:
        if self._any_rank_requested(args):
            self.requested = True
            self.stopped_at = state.global_step
            control.should_save = True
            control.should_training_stop = True


@contextmanager
def sigterm_saves(callback: PreemptionCallback) -> Iterator[PreemptionCallback]:
    """Route SIGTERM to `callback` for the block (main thread only: Python delivers signals there)."""
    if threading.current_thread() is not threading.main_thread():
        yield callback
        return
    previous = signal.signal(signal.SIGTERM, callback.request)
    try:
        yield callback
    finally:
        signal.signal(signal.SIGTERM, previous)
