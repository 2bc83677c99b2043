"""Side-by-side timing of J and F: the literal reference (bench/reference_jf.py) against ufvideo.eval.metrics.

Run from the repository root: `.venv/bin/python bench/bench_jf.py [--frames 30] [--repeats 5]`. Needs the dev
packages opencv-python-headless and scikit-image (for the reference). Each case first checks that both give
identical per-frame values, then reports the median wall time of `--repeats` runs, alternating reference and ours.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from reference_jf import reference_f, reference_j  # noqa: E402

from ufvideo.eval.metrics import contour_accuracy, region_and_contour  # noqa: E402

RESOLUTIONS = {"480p": (480, 854), "720p": (720, 1280)}


def reference_jf(pred: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return reference_j(pred, gt), reference_f(pred, gt)


CONTENDERS = (("J+F", reference_jf, region_and_contour), ("F", reference_f, contour_accuracy))


def blob_sequence(height: int, width: int, frames: int, seed: int, shift: tuple[float, float]) -> np.ndarray:
    """A wobbly moving object: an ellipse whose radius varies with angle, drifting over the frames."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:height, :width].astype(np.float32)
    phases = rng.uniform(0, 2 * np.pi, size=3)
    out = np.empty((frames, height, width), bool)
    for t in range(frames):
        cy = height * (0.45 + 0.1 * np.sin(t / 9)) + shift[0]
        cx = width * (0.4 + 0.2 * t / max(frames, 1)) + shift[1]
        angle = np.arctan2(yy - cy, xx - cx)
        wobble = 1 + 0.12 * np.sin(3 * angle + phases[0] + t / 5) + 0.05 * np.sin(7 * angle + phases[1])
        dist = np.hypot((yy - cy) / (0.28 * height), (xx - cx) / (0.18 * width))
        out[t] = dist < wobble
    return out


def scenario(name: str, height: int, width: int, frames: int) -> tuple[np.ndarray, np.ndarray]:
    """'good': a prediction a few pixels off with speckle; 'poor': an object elsewhere in the frame."""
    gt = blob_sequence(height, width, frames, seed=1, shift=(0.0, 0.0))
    if name == "good":
        pred = blob_sequence(height, width, frames, seed=1, shift=(height * 0.01, -width * 0.006))
        speckle = np.random.default_rng(2).random(pred.shape) < 0.0005
        return pred ^ speckle, gt
    pred = blob_sequence(height, width, frames, seed=3, shift=(-height * 0.3, width * 0.35))
    return pred, gt


def paired_medians(reference: Callable[[], object], ours: Callable[[], object], repeats: int) -> tuple[float, float]:
    """Median seconds of each, runs alternating so both see the same background load on a shared box."""
    reference()  # warm-up: imports, allocator, caches
    ours()
    ref_times, our_times = [], []
    for _ in range(repeats):
        for fn, times in ((reference, ref_times), (ours, our_times)):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
    return statistics.median(ref_times), statistics.median(our_times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--frames", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    print("| resolution    | frames | metric | case  | reference s | ours s  | speedup |")
    print("|---------------|-------:|--------|-------|------------:|--------:|--------:|")
    for label, (height, width) in RESOLUTIONS.items():
        for case in ("good", "poor"):
            pred, gt = scenario(case, height, width, args.frames)
            ours_j, ours_f = region_and_contour(pred, gt)
            if not (np.array_equal(ours_j, reference_j(pred, gt)) and np.array_equal(ours_f, reference_f(pred, gt))):
                raise SystemExit(f"{label} {case}: fast J/F differ from the reference; timings would be meaningless")
            for metric, ref_fn, ours_fn in CONTENDERS:
                ref_s, ours_s = paired_medians(
                    lambda f=ref_fn, p=pred, g=gt: f(p, g), lambda f=ours_fn, p=pred, g=gt: f(p, g), args.repeats
                )
                print(
                    f"| {label + f' {height}x{width}':<13} | {args.frames:>6} | {metric:<6} | {case:<5} "
                    f"| {ref_s:>11.4f} | {ours_s:>7.4f} | {ref_s / ours_s:>6.1f}x |"
                )


if __name__ == "__main__":
    main()
