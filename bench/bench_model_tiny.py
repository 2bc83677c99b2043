"""Tiny UFVideo on CPU: forward+backward of 2 samples x 8 frames at 64 px + SAM2 at 128 px, and greedy decoding.

Run: `python bench/bench_model_tiny.py [--threads 2]`; prints median seconds per call.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the test fixtures' sample batch
from tests.model.conftest import mixed_samples  # noqa: E402
from ufvideo.model import ufvideo_tiny  # noqa: E402


def timed(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    model, processor = ufvideo_tiny(seed=0)
    build = time.perf_counter() - start
    samples = mixed_samples()
    batch = processor(**samples)

    def train_step() -> None:
        model.zero_grad()
        model(**batch).loss.backward()

    gen = processor(samples["conversations"], samples["videos"], regions=samples["regions"], add_generation_prompt=True)
    step = timed(train_step, args.repeats)
    cached = timed(lambda: model.generate(gen, processor, max_new_tokens=32), 5)
    full = timed(lambda: model.generate(gen, processor, max_new_tokens=32, use_cache=False), 5)
    print(f"threads={args.threads} build={build:.2f}s fwd+bwd={step * 1000:.1f}ms")
    print(f"generate 32 tokens x2: kv-cache={cached * 1000:.1f}ms no-cache={full * 1000:.1f}ms")


if __name__ == "__main__":
    main()
