"""Every benchmark module; importing this package registers them all in `ufvideo.eval.registry`."""

from __future__ import annotations

from ufvideo.eval.benchmarks import charades, mvbench, revos, rvos, synthetic, ufvideo_bench, videorefer

__all__ = ["charades", "mvbench", "revos", "rvos", "synthetic", "ufvideo_bench", "videorefer"]
