"""A blind baseline for the synthetic benchmark: answer every test question of a task with that task's most common
training answer, and score it with the benchmark's own parser and metrics.

Why: the untrained model scores 0 on text tasks because it cannot even produce the answer format, so "better than
untrained" says little on its own; this baseline is what a model learns from the answers alone, without looking at
the video (e.g. a constant whole-video span for grounding, the most frequent letter for multiple choice).
Run: `.venv/bin/python bench/bench_prior_baseline.py SYNTH_DIR` (the directory `ufvideo data synth` wrote).
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

from ufvideo.data.shards import iter_records
from ufvideo.eval.benchmarks.synthetic import synthetic_load, synthetic_parse, synthetic_score
from ufvideo.eval.registry import ScoreContext
from ufvideo.eval.types import Prediction

TEXT_ONLY = ("qa", "mcqa", "caption", "referring", "tvg", "dvc")  # mask tasks need masks, not text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("synth_dir", type=Path)
    args = parser.parse_args()
    answers: dict[str, Counter[str]] = {}
    for record in iter_records(args.synth_dir, split="train"):
        answer = next(t["value"] for t in record["conversations"] if t["from"] == "gpt")
        answers.setdefault(record["task"], Counter())[answer] += 1
    rows = [
        synthetic_parse(Prediction(s.id, text=answers[s.task].most_common(1)[0][0]), s)
        for s in synthetic_load(args.synth_dir)
        if s.task in TEXT_ONLY
    ]
    metrics = synthetic_score(rows, ScoreContext()).metrics
    print(json.dumps({k: round(v, 2) for k, v in metrics.items() if v is not None}, indent=1))


if __name__ == "__main__":
    main()
