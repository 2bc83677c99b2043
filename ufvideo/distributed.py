"""This process's place in a torchrun / training-operator job, read in one place: rank, world size, local rank.

Why one module: training (gradient accumulation), its throughput meter and evaluation (each rank predicts a slice)
must agree on the same environment, and a bad value must fail the same way everywhere.
"""

from __future__ import annotations

import os

from ufvideo.config import ConfigError


def _read(name: str, default: int) -> int:
    raw = os.environ.get(name, "") or str(default)
    try:
        return int(raw)
    except ValueError as exc:
        raise ConfigError(f"{name}={raw!r}: expected an integer (set by torchrun / the training operator)") from exc


def world_size() -> int:
    """Processes of this job as torchrun/the training operator announce them (`WORLD_SIZE`); 1 when unset."""
    return max(1, _read("WORLD_SIZE", 1))


def rank() -> int:
    """This process's global rank (`RANK`); 0 when unset."""
    return _read("RANK", 0)


def local_rank() -> int | None:
    """The rank within this node (`LOCAL_RANK`), which picks the GPU; None outside torchrun."""
    return _read("LOCAL_RANK", 0) if "LOCAL_RANK" in os.environ else None


def rank_and_world() -> tuple[int, int]:
    """(rank, world size), checked to fit together."""
    current, world = rank(), world_size()
    if not 0 <= current < world:
        raise ConfigError(f"RANK={current} is outside WORLD_SIZE={world}")
    return current, world
