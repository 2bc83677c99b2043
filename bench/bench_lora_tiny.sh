#!/usr/bin/env bash
# LoRA against full fine-tuning in stage 2 of the tiny profile on the synthetic data: one stage 1 (as shipped), then
# stage 2 twice from it, `freeze_policy=full` and `freeze_policy=lora` (the profile's lora settings), each evaluated
# with `ufvideo eval --benchmark synthetic` and the profile's controls; prints the parameters each policy trains and
# the per-task table (full, lora, lora / full). Figures in BENCHMARKS.md ("LoRA on the tiny profile").
# Usage: [SEED=0] bench/bench_lora_tiny.sh [WORKDIR] [extra overrides for every stage, e.g. dataloader_num_workers=0]
set -euo pipefail
W=${1:-/tmp/ufvideo-bench-lora}; shift || true
R=$(cd "$(dirname "$0")/.." && pwd)
B=$R/.venv/bin
mkdir -p "$W" && cd "$W"
export MLFLOW_TRACKING_URI=${MLFLOW_TRACKING_URI:-sqlite:///$W/mlflow.db}
"$B/ufvideo" data synth --out synth --seed "${SEED:-0}" > /dev/null
SECONDS=0
"$B/ufvideo" train --stage 1 --data synth --out s1 "$@" > s1.json
echo "stage 1: ${SECONDS} s"
for policy in full lora; do
  SECONDS=0
  "$B/ufvideo" train --stage 2 --data synth --out "s2-$policy" --init s1/final "freeze_policy=$policy" "$@" \
    > "s2-$policy.json"
  echo "stage 2 ($policy): ${SECONDS} s"
  SECONDS=0
  "$B/ufvideo" eval --checkpoint "s2-$policy/final" --data-root synth --out "eval-$policy" > /dev/null
  echo "evaluation with controls ($policy): ${SECONDS} s"
done
du -sk s1/final s2-full/final s2-lora/final
"$B/python" - "$@" <<'PY'
import json
import sys

from ufvideo.eval.control import format_value, summary_rows
from ufvideo.model import ufvideo_tiny
from ufvideo.data.synthetic import corpus_texts
from ufvideo.contract import load_step_config
from ufvideo.train.stages import apply_policy
from ufvideo.train.trainer import lr_multiplier


def counts(policy: str) -> tuple[int, int, int]:
    """(trainable tensors' parameters, values training changes, LLM values training changes) under `policy`."""
    overrides = ["init=s1/final", f"freeze_policy={policy}", *sys.argv[1:]]
    cfg = load_step_config("train_stage2", "tiny", overrides=overrides)
    model, _ = ufvideo_tiny(seed=0, corpus=corpus_texts())
    state = apply_policy(model, policy, cfg.train_vision_tower, cfg.lora)
    tensors = changed = llm = 0
    for name, param in model.named_parameters():
        if not param.requires_grad or lr_multiplier(name, cfg.lr_multipliers) == 0.0:
            continue
        values = len(state.row_masked[name]) * param.shape[1] if name in state.row_masked else param.numel()
        tensors, changed = tensors + param.numel(), changed + values
        llm += values if name.startswith("language_model.") else 0
    return tensors, changed, llm


full, lora = counts("full"), counts("lora")
print("| parameters trained in stage 2 | full | lora | full / lora |")
print("|---|---:|---:|---:|")
for label, a, b in zip(("trainable tensors", "values changed by training", "LLM values changed"), full, lora):
    print(f"| {label} | {a:,} | {b:,} | {a / b:.1f}x |")
docs = {p: json.load(open(f"eval-{p}/metrics.json")) for p in ("full", "lora")}
rows = {p: {name: (trained, prior, shuffled) for name, trained, prior, shuffled, _ in summary_rows(docs[p])} for p in docs}
print("\n| metric (test split) | blind prior | full | lora | lora / full | shuffled full / lora |")
print("|---|---:|---:|---:|---:|---:|")
for name, (trained, prior, shuffled) in rows["full"].items():
    other, _, other_shuffled = rows["lora"][name]
    ratio = other / trained if isinstance(trained, float) and isinstance(other, float) and trained else None
    cells = [format_value(prior), format_value(trained), format_value(other), "-" if ratio is None else f"{ratio:.2f}"]
    cells.append(f"{format_value(shuffled)} / {format_value(other_shuffled)}")
    print(f"| {name} | " + " | ".join(cells) + " |")
PY
