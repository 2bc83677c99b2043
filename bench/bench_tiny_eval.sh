#!/usr/bin/env bash
# Tiny profile, synthetic data: stage 1 + stage 2 as shipped, then `ufvideo eval --benchmark synthetic` of the trained
# checkpoint (with the profile's controls: blind training-split prior and shuffled video) and of an untrained tiny
# model, on the synthetic test split; then the connector/probe diagnosis of bench_video_signal.py.
# Usage: [SEED=1] bench/bench_tiny_eval.sh [WORKDIR] [extra overrides for both stages, e.g. num_epochs=2]
# SEED picks the synthetic dataset (default 0, the profile's); training keeps the profile's seed.
# Figures recorded in BENCHMARKS.md ("Tiny model on the synthetic benchmark").
set -euo pipefail
W=${1:-/tmp/ufvideo-bench-tiny-eval}; shift || true
R=$(cd "$(dirname "$0")/.." && pwd)
B=$R/.venv/bin
mkdir -p "$W" && cd "$W"
export MLFLOW_TRACKING_URI=${MLFLOW_TRACKING_URI:-sqlite:///$W/mlflow.db}
"$B/ufvideo" data synth --out synth --seed "${SEED:-0}" > /dev/null  # the profile's dataset size and split
SECONDS=0
"$B/ufvideo" train --stage 1 --data synth --out s1 "$@" > s1.json
echo "stage 1: ${SECONDS} s"; SECONDS=0
"$B/ufvideo" train --stage 2 --data synth --out s2 --init s1/final "$@" > s2.json
echo "stage 2: ${SECONDS} s"
"$B/python" - <<'PY'
from ufvideo.checkpoint import write_info
from ufvideo.data.synthetic import corpus_texts
from ufvideo.model import ufvideo_tiny

model, processor = ufvideo_tiny(seed=42, corpus=corpus_texts())
model.save_pretrained("untrained", processor=processor)
write_info("untrained", profile="tiny", stage=0, data_digest="none")
PY
SECONDS=0
"$B/ufvideo" eval --checkpoint s2/final --data-root synth --out eval-s2 > /dev/null
echo "evaluation with controls: ${SECONDS} s"
"$B/ufvideo" eval --checkpoint untrained --data-root synth --out eval-untrained controls=[] report=false > /dev/null
"$B/python" - <<'PY'
import json

from ufvideo.eval.control import format_value, summary_rows

doc = json.load(open("eval-s2/metrics.json"))
untrained = json.load(open("eval-untrained/metrics.json"))["metrics"]
print("| metric | untrained | blind prior | shuffled video | trained | video dependence |")
print("|---|---:|---:|---:|---:|---:|")
for name, trained, prior, shuffled, dependence in summary_rows(doc):
    cells = [untrained.get(name), prior, shuffled, trained, dependence]
    print(f"| {name} | " + " | ".join(format_value(v) for v in cells) + " |")
PY
"$B/python" "$R/bench/bench_video_signal.py" --data synth untrained s1/final s2/final
