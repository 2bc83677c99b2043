"""How many torch threads a CPU training loop uses beside its data-loader workers.

Why: torch starts one OpenMP thread per available CPU, and the loader's workers are separate processes that also
need a CPU. On the 2-core laptop profile (one loader worker) that made three busy threads on two cores; OpenMP's
threads wait for each other at the end of every parallel region, so whichever one the scheduler parks stalls the
whole step. Measured on the tiny profile's stage 2 (BENCHMARKS.md, "Tiny-profile training"): 73-76 s with 2 torch
threads, 57-58 s with 1, for the same 330 steps. So the loop takes the CPUs the workers leave, and at least one.

An explicit `OMP_NUM_THREADS` always wins, and GPU runs are left alone (their CPU threads only feed the device).
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator

import torch

log = logging.getLogger(__name__)


def available_cpus() -> int:
    """CPUs this process may run on (its affinity mask, which containers and `taskset` set), else os.cpu_count()."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def loop_threads(cpus: int, workers: int) -> int:
    """Torch threads for the training loop: the CPUs that `workers` loader processes leave, at least one."""
    return max(1, cpus - max(0, workers))


@contextlib.contextmanager
def for_training(on_cpu: bool, workers: int) -> Iterator[int]:
    """Run the block with `loop_threads` torch threads on a CPU run without OMP_NUM_THREADS; restore afterwards.
    Yields the thread count in effect."""
    before = torch.get_num_threads()
    if not on_cpu or "OMP_NUM_THREADS" in os.environ:
        yield before
        return
    threads = loop_threads(available_cpus(), workers)
    if threads != before:
        log.info("training loop: %d torch thread(s) beside %d loader worker(s)", threads, workers)
    torch.set_num_threads(threads)
    try:
        yield threads
    finally:
        torch.set_num_threads(before)
