"""Wall time of the synthetic generator (`ufvideo data synth`), split into scene sampling, rendering and mp4
encoding, and record building (RLE encoding included), plus the whole `run` end to end.

Run from the repository root: `.venv/bin/python bench/bench_synthetic.py [--videos 8 64] [--repeats 3]`.
Reports the median of `--repeats` runs; each run writes to a fresh temporary directory.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from ufvideo.data.synthetic import SynthConfig, build_records, corpus_texts, scene_for
from ufvideo.data.synthetic import generate as run
from ufvideo.data.synthetic.scene import render_frames
from ufvideo.data.video import write_video


def _median_seconds(fn: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def stages(videos: int, repeats: int) -> dict[str, float]:
    """Per-stage seconds for `videos` videos; the stages run back to back as `run` does."""
    cfg = SynthConfig(out="unused", seed=0, videos=videos)
    with tempfile.TemporaryDirectory() as tmp:
        scenes = [scene_for(cfg, i) for i in range(videos)]
        return {
            "sample scenes (+ visible masks)": _median_seconds(
                lambda: [scene_for(cfg, i) for i in range(videos)], repeats
            ),
            "render + encode mp4": _median_seconds(
                lambda: [write_video(Path(tmp) / f"{s.index}.mp4", render_frames(s), cfg.fps) for s in scenes], repeats
            ),
            "build records (RLE)": _median_seconds(lambda: [build_records(s) for s in scenes], repeats),
        }


def end_to_end(videos: int, repeats: int) -> float:
    def once() -> None:
        with tempfile.TemporaryDirectory() as tmp:
            run(SynthConfig(out=str(Path(tmp) / "synth"), seed=0, videos=videos))

    return _median_seconds(once, repeats)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, nargs="+", default=[8, 64])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    for videos in args.videos:
        print(f"--videos {videos}: run() end to end {end_to_end(videos, args.repeats):.2f} s")
        for name, seconds in stages(videos, args.repeats).items():
            print(f"    {name:<32} {seconds:.2f} s")
    print(f"corpus_texts() (64 scenes, no video): {_median_seconds(corpus_texts, args.repeats):.2f} s")


if __name__ == "__main__":
    main()
