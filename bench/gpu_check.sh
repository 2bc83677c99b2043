#!/usr/bin/env bash
# The GPU check (bench/gpu_check.py) on a lent GPU machine that has no network (BENCHMARKS.md, "GPU check").
#   here, once, with a package index:  bash bench/gpu_check.sh wheels   # fills .whl/ (git-ignored, ~55 MB)
#   on the GPU machine:                bash bench/gpu_check.sh device [gpu_check.py flags]
# The device half installs the wheels into /tmp/site on top of the machine's own packages and writes
# $OUT/gpu_check/gpu_check.{json,md}. The machine's image (torch 2.11 CUDA, transformers 5.17, accelerate, tokenizers,
# safetensors, numpy, PyYAML, Pillow) lacks what ufvideo needs beyond that: transformers >= 5.23 (SubConfigSpec,
# TrainingArguments.activation_checkpointing), PyAV and pycocotools (imported by the training modules) and DeepSpeed
# (a pure-Python wheel built here; its ops are JIT-built where used) with the dependencies the image does not have.
set -euo pipefail
cd "$(dirname "$0")/.."
WHEELS=.whl
BINARY=(av==18.1.0 pycocotools==2.0.11 pydantic-core==2.50.5)
PURE=(transformers==5.23.0 hjson==3.1.0 pydantic==2.14.4 annotated-types==0.8.0 typing-inspection==0.4.5
  typing-extensions==4.16.0)
PLATFORMS=(--platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64)

case "${1:-}" in
  wheels)
    rm -rf "$WHEELS" && mkdir -p "$WHEELS"
    exclude="$(git rev-parse --git-path info/exclude)"
    grep -qx "/$WHEELS/" "$exclude" 2>/dev/null || echo "/$WHEELS/" >>"$exclude"
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
      "${PLATFORMS[@]}" -d "$WHEELS" "${BINARY[@]}" "${PURE[@]}"
    DS_BUILD_OPS=0 python3 -m pip wheel -q --no-deps -w "$WHEELS" deepspeed==0.19.8
    ls "$WHEELS" && du -sh "$WHEELS"
    ;;
  device)
    shift
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
      "$WHEELS"/*.whl
    export PYTHONPATH=/tmp/site PYTHONUNBUFFERED=1
    exec timeout 560 python3 bench/gpu_check.py --out "${OUT:-runs}/gpu_check" "$@"
    ;;
  *)
    echo "usage: $0 wheels | device [gpu_check.py flags]" >&2
    exit 2
    ;;
esac
