"""The benchmark table: name -> the module and the literal `Benchmark` declaration that define it, imported on demand
(as `ufvideo.data.sources` does for converters) so there are no registration side effects and no import cycle.

Adding a benchmark: write its module with one `Benchmark(...)` per benchmark, then add its row here.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from ufvideo.config import ConfigError

if TYPE_CHECKING:
    from ufvideo.eval.registry import Benchmark

TABLE: dict[str, tuple[str, str]] = {
    "mvbench": ("mvbench", "BENCHMARK"),
    "charades_sta": ("charades", "BENCHMARK"),
    "mevis_valid_u": ("rvos", "MEVIS_VALID_U"),
    "mevis_valid": ("rvos", "MEVIS_VALID"),
    "ref_youtube_vos": ("rvos", "REF_YOUTUBE_VOS"),
    "ref_davis17": ("rvos", "REF_DAVIS17"),
    "revos": ("revos", "BENCHMARK"),
    "videorefer_d_single": ("videorefer", "VIDEOREFER_D_SINGLE"),
    "videorefer_d_multi": ("videorefer", "VIDEOREFER_D_MULTI"),
    "videorefer_q_single": ("videorefer", "VIDEOREFER_Q_SINGLE"),
    "videorefer_q_multi": ("videorefer", "VIDEOREFER_Q_MULTI"),
    "pixrqa": ("ufvideo_bench", "PIXRQA"),
    "pixhqa": ("ufvideo_bench", "PIXHQA"),
    "pixtrqa": ("ufvideo_bench", "PIXTRQA"),
    "synthetic": ("synthetic", "BENCHMARK"),
}


def get_benchmark(name: str) -> Benchmark:
    """The declaration of benchmark `name` (its module is imported on first use)."""
    if name not in TABLE:
        raise ConfigError(f"unknown benchmark {name!r}; known: {', '.join(sorted(TABLE))}")
    module, attribute = TABLE[name]
    return getattr(importlib.import_module(f"ufvideo.eval.benchmarks.{module}"), attribute)


def benchmark_names() -> list[str]:
    return sorted(TABLE)
