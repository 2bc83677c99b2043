"""The CPU training loop leaves its loader workers a CPU each (ufvideo/train/cpu_threads.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch

from ufvideo.train import cpu_threads


@pytest.mark.parametrize(("cpus", "workers", "expected"), [(2, 1, 1), (2, 0, 2), (8, 2, 6), (1, 3, 1), (4, -1, 4)])
def test_loop_threads_take_what_the_workers_leave(cpus: int, workers: int, expected: int) -> None:
    assert cpu_threads.loop_threads(cpus, workers) == expected


@pytest.fixture
def threads_restored() -> Iterator[int]:
    before = torch.get_num_threads()
    yield before
    torch.set_num_threads(before)


def test_for_training_sets_the_loop_threads_and_restores_them(
    monkeypatch: pytest.MonkeyPatch, threads_restored: int
) -> None:
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(cpu_threads, "available_cpus", lambda: 3)
    torch.set_num_threads(3)
    with cpu_threads.for_training(on_cpu=True, workers=1) as threads:
        assert threads == 2 and torch.get_num_threads() == 2
    assert torch.get_num_threads() == 3


def test_for_training_restores_after_an_error(monkeypatch: pytest.MonkeyPatch, threads_restored: int) -> None:
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(cpu_threads, "available_cpus", lambda: 2)
    torch.set_num_threads(2)
    with pytest.raises(RuntimeError, match="boom"), cpu_threads.for_training(on_cpu=True, workers=1):
        assert torch.get_num_threads() == 1
        raise RuntimeError("boom")
    assert torch.get_num_threads() == 2


@pytest.mark.parametrize(("env", "on_cpu"), [({"OMP_NUM_THREADS": "2"}, True), ({}, False)])
def test_for_training_leaves_explicit_settings_and_gpu_runs_alone(
    monkeypatch: pytest.MonkeyPatch, threads_restored: int, env: dict[str, str], on_cpu: bool
) -> None:
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(cpu_threads, "available_cpus", lambda: 2)
    torch.set_num_threads(2)
    with cpu_threads.for_training(on_cpu=on_cpu, workers=1) as threads:
        assert threads == 2 and torch.get_num_threads() == 2
