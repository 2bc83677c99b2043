"""One prepared GPU validation + performance run of UFVideo, written for a short lease on one H100/H200.

Parts (each in its own process, so a CUDA fault, a hang or an out-of-memory loses only that part):
  environment    GPU, CUDA, torch, transformers, deepspeed, attention kernel, a measured bf16 matmul rate
  tiny_train     the tiny profile's model and stage-1 recipe trained a few steps in bf16, then generating in bf16
  midsize_train  SigLIP-so400m tower, STC connector, Qwen2-1.5B-shaped LLM, SAM2 Hiera-L, 32 frames at 384 px,
                 4 SAM frames: full fine-tune steps in bf16 with gradient checkpointing; tokens/s and LM-MFU as the
                 training telemetry reports them
  generation     batched vs one-by-one greedy decoding of the same samples: speed-up and identical outputs
  midsize_zero2  midsize_train through DeepSpeed ZeRO-2 on one GPU (skipped, with the reason, without deepspeed)
Each part records its peak memory. Results go to OUT/gpu_check.json and OUT/gpu_check.md, rewritten after every
part, so whatever finished survives a later failure or the global time budget running out.

  python bench/gpu_check.py --out DIR                 # on the GPU (<= --budget-s seconds, default 420)
  python bench/gpu_check.py --cpu --out DIR           # dry run on tiny shapes (tests/bench runs it)
  python bench/gpu_check.py --out DIR --parts generation midsize_zero2   # rerun some parts only
Exit status 1 when a part failed or timed out, 0 otherwise (skipped parts included).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(HERE), str(ROOT)]  # gpu_parts/gpu_workload beside this file; ufvideo from the checkout

# (part, longest it may take on the GPU, in the CPU dry run) in seconds; the order is the order of importance. On a
# loaded 2-core CPU the dry run's parts are slow to import, not to run, and DeepSpeed JIT-builds a C++ op there.
PLAN = (
    ("environment", 60, 180),
    ("tiny_train", 120, 240),
    ("midsize_train", 180, 240),
    ("generation", 180, 240),
    ("midsize_zero2", 200, 480),
)
MIN_PART_S = 20  # a part is not started with less time than this left in the budget
SCHEMA = 1


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="directory for gpu_check.json and gpu_check.md")
    parser.add_argument("--cpu", action="store_true", help="dry run on the CPU with tiny shapes")
    parser.add_argument("--budget-s", type=float, default=None, help="global time budget (default 420 GPU, 900 CPU)")
    parser.add_argument("--parts", nargs="+", choices=[name for name, *_ in PLAN], default=None)
    parser.add_argument("--peak-tflops", type=float, default=None, help="MFU denominator (default: by GPU name)")
    parser.add_argument("--part", choices=[name for name, *_ in PLAN], help=argparse.SUPPRESS)  # child process
    parser.add_argument("--result", help=argparse.SUPPRESS)
    parser.add_argument("--workdir", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _child(args: argparse.Namespace) -> int:
    """Run one part in this process and write its result as JSON (the parent reads it)."""
    from gpu_parts import Settings, run

    settings = Settings(cpu=args.cpu, workdir=Path(args.workdir), peak_tflops=args.peak_tflops)
    result = run(args.part, settings)
    _write_atomic(Path(args.result), json.dumps(result, indent=2, default=str))
    return 0


def _tail(path: Path, chars: int = 3000) -> str:
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError:
        return ""


def _run_part(name: str, args: argparse.Namespace, timeout: float, scratch: Path) -> dict[str, Any]:
    """The part in a child process (own session, so a timeout also ends its dataloader workers)."""
    result_file, log_file = scratch / f"{name}.json", scratch / f"{name}.log"
    command = [sys.executable, str(Path(__file__).resolve()), "--out", args.out, "--part", name]
    command += ["--result", str(result_file), "--workdir", str(scratch / name)]
    command += ["--cpu"] * args.cpu + (["--peak-tflops", str(args.peak_tflops)] if args.peak_tflops else [])
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "TOKENIZERS_PARALLELISM": "false"}
    if args.cpu:  # DeepSpeed's CPU backend JIT-builds an op: a part killed mid-build must not leave a shared lock
        env.setdefault("TORCH_EXTENSIONS_DIR", str(scratch / "torch_extensions"))
    start = time.perf_counter()
    with open(log_file, "w") as log:
        proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        try:
            code = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            seconds = round(time.perf_counter() - start, 2)
            return {
                "status": "timeout",
                "seconds": seconds,
                "reason": f"killed after {timeout:.0f} s",
                "log": _tail(log_file),
            }
    if code != 0 or not result_file.is_file():
        seconds = round(time.perf_counter() - start, 2)
        return {"status": "error", "seconds": seconds, "error": f"exit status {code}", "log": _tail(log_file)}
    result = json.loads(result_file.read_text())
    if result.get("status") == "error":
        result["log"] = _tail(log_file)
    return result


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}g}" if abs(value) < 10 else f"{value:,.0f}"
    return str(value)


def _figures(name: str, part: dict[str, Any]) -> str:
    """The one-line summary of a part for the Markdown table."""
    if part.get("status") != "ok":
        return str(part.get("reason") or part.get("error") or "")
    if name == "environment":
        keys = ("device", "torch", "cuda", "transformers", "deepspeed", "attn_implementation", "matmul_bf16_tflops")
        return ", ".join(f"{k} {_fmt(part.get(k))}" for k in keys)
    if name == "generation":
        parts = [f"speed-up {_fmt(part['speedup'])}x", f"identical {part['identical']}/{part['samples']}"]
        if "fp32_identical" in part:
            parts.append(f"fp32 identical {part['fp32_identical']}/{part['samples']}")
        parts += [f"batched {_fmt(part['batched_s'])} s", f"one by one {_fmt(part['one_by_one_s'])} s"]
        return ", ".join(parts + [f"{part['samples']} x {part['max_new_tokens']} new tokens ({part['dtype']})"])
    keys = ("tokens_per_s", "tflops_per_s", "mfu", "tokens_per_step", "dataloader_wait_frac")
    line = ", ".join(f"{k} {_fmt(part.get(k))}" for k in keys)
    if name == "tiny_train":
        line += f", losses {[round(v, 3) for v in part['losses'] if v is not None]}, generated {part['generated']}"
    return line


def markdown(report: dict[str, Any]) -> str:
    env = report["parts"].get("environment", {})
    lines = [
        f"# UFVideo GPU check ({report['mode']}, {report['started']})",
        "",
        f"- Machine: {env.get('device', 'CPU')}, {_fmt(env.get('gpu_memory_gb'))} GiB, {env.get('cpu_count')} CPUs;"
        f" Python {env.get('python')}, torch {env.get('torch')} (CUDA {env.get('cuda')}), transformers"
        f" {env.get('transformers')}, accelerate {env.get('accelerate')}, deepspeed {env.get('deepspeed')},"
        f" attention {env.get('attn_implementation')}",
        f"- Command: `{report['command']}`; {report['elapsed_s']} s of a {report['budget_s']:.0f} s budget",
        f"- MFU: the training telemetry's (LLM matmuls only) against {_fmt(env.get('peak_tflops'))} TFLOP/s; a measured"
        f" bf16 matmul reached {_fmt(env.get('matmul_bf16_tflops'))} TFLOP/s",
        "",
        "| part | status | s | peak memory GiB | figures |",
        "|---|---|---:|---:|---|",
    ]
    for name, part in report["parts"].items():
        memory = _fmt(part.get("peak_memory_gb"))
        row = [name, part.get("status", "?"), _fmt(part.get("seconds")), memory, _figures(name, part)]
        lines.append("| " + " | ".join(cell.replace("|", "/").replace("\n", " ") for cell in row) + " |")
    return "\n".join(lines) + "\n"


def _write(out: Path, report: dict[str, Any]) -> None:
    """JSON first: a part whose figures the Markdown cannot render must not cost the raw results."""
    _write_atomic(out / "gpu_check.json", json.dumps(report, indent=2, default=str) + "\n")
    try:
        text = markdown(report)
    except Exception as exc:  # noqa: BLE001 - the JSON holds everything; say why the table is missing
        reason = f"{type(exc).__name__}: {exc}"
        text = f"# UFVideo GPU check\n\nThe table could not be rendered ({reason}); see gpu_check.json.\n"
    _write_atomic(out / "gpu_check.md", text)


def run(args: argparse.Namespace) -> int:
    """All requested parts in order, within the budget; the report is rewritten after each part."""
    started = time.perf_counter()
    budget = args.budget_s or (900.0 if args.cpu else 420.0)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {
        "schema": SCHEMA,
        "mode": "cpu dry run" if args.cpu else "gpu",
        "started": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC"),
        "command": " ".join(["python", "bench/gpu_check.py", *sys.argv[1:]]),
        "budget_s": budget,
        "elapsed_s": 0.0,
        "parts": {},
    }
    wanted = args.parts or [name for name, *_ in PLAN]
    with tempfile.TemporaryDirectory(prefix="gpu_check_") as scratch:
        for name, gpu_cap, cpu_cap in PLAN:
            if name not in wanted:
                continue
            left = budget - (time.perf_counter() - started)
            if left < MIN_PART_S:
                part = {"status": "skipped", "reason": f"global time budget spent ({left:.0f} s left)"}
            else:
                timeout = min(left, cpu_cap if args.cpu else gpu_cap)
                print(f"gpu_check: {name} (up to {timeout:.0f} s)", flush=True)
                part = _run_part(name, args, timeout, Path(scratch))
                print(f"gpu_check: {name} -> {part.get('status')} in {part.get('seconds')} s", flush=True)
            report["parts"][name] = part
            report["elapsed_s"] = round(time.perf_counter() - started, 1)
            _write(out, report)
    print((out / "gpu_check.md").read_text(), flush=True)
    failed = [name for name, part in report["parts"].items() if part.get("status") in ("error", "timeout")]
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    return _child(args) if args.part else run(args)


if __name__ == "__main__":
    sys.exit(main())
