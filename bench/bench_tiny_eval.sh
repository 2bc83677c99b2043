#!/usr/bin/env bash
# Tiny profile, synthetic data: stage 1 + stage 2 as shipped, then `ufvideo eval --benchmark synthetic` of the trained
# checkpoint and of an untrained tiny model, on the synthetic test split (24 unseen videos, 408 samples).
# Usage: [SEED=1] bench/bench_tiny_eval.sh [WORKDIR] [extra stage-2 overrides, e.g. num_epochs=30]
# SEED picks the synthetic dataset (default 0, the profile's); training keeps the profile's seed.
# Prints both metric tables; figures recorded in BENCHMARKS.md ("Tiny model on the synthetic benchmark").
set -euo pipefail
W=${1:-/tmp/ufvideo-bench-tiny-eval}; shift || true
B=$(cd "$(dirname "$0")/.." && pwd)/.venv/bin
mkdir -p "$W" && cd "$W"
export MLFLOW_TRACKING_URI=${MLFLOW_TRACKING_URI:-sqlite:///$W/mlflow.db}
"$B/ufvideo" data synth --out synth --seed "${SEED:-0}" > /dev/null  # the profile's 96 videos (72 train / 24 test)
SECONDS=0
"$B/ufvideo" train --stage 1 --data synth --out s1 > s1.json
echo "stage 1: ${SECONDS} s"; SECONDS=0
"$B/ufvideo" train --stage 2 --data synth --out s2 --init s1/final "$@" > s2.json
echo "stage 2: ${SECONDS} s"
"$B/python" - <<'PY'
from ufvideo.checkpoint import write_info
from ufvideo.data.synthetic import corpus_texts
from ufvideo.model import ufvideo_tiny

model, processor = ufvideo_tiny(seed=0, corpus=corpus_texts())
model.save_pretrained("untrained", processor=processor)
write_info("untrained", profile="tiny", stage=0, data_digest="none")
PY
for ckpt in s2/final untrained; do
  echo "== $ckpt"
  "$B/ufvideo" eval --checkpoint "$ckpt" --data-root synth --out "eval-${ckpt%%/*}" report=false | grep -v "not computed"
done
