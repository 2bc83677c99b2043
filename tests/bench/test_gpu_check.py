"""`bench/gpu_check.py --cpu`: the GPU check's dry run on tiny shapes runs every part through the same processes,
trainer and telemetry as the GPU run, and writes the report the GPU run will write."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import transformers

from ufvideo.train.callbacks import llm_flops_per_token
from ufvideo.train.stages import apply_policy

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "bench" / "gpu_check.py"
PARTS = ["environment", "tiny_train", "midsize_train", "generation", "midsize_zero2"]


@pytest.fixture(scope="module")
def dry_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess, dict, str]:
    out = tmp_path_factory.mktemp("gpu_check")
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--cpu", "--out", str(out)], capture_output=True, text=True, timeout=1200
    )
    report = json.loads((out / "gpu_check.json").read_text())
    return proc, report, (out / "gpu_check.md").read_text()


def _deepspeed_importable() -> bool:
    try:
        import deepspeed  # noqa: F401
    except Exception:  # noqa: BLE001 - any import failure: the part must say it skipped
        return False
    return True


def test_every_part_runs_and_the_run_succeeds(dry_run) -> None:
    proc, report, markdown = dry_run
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert list(report["parts"]) == PARTS
    zero2 = report["parts"]["midsize_zero2"]
    if _deepspeed_importable():
        assert zero2["status"] == "ok", zero2
    else:
        assert zero2["status"] == "skipped" and zero2["reason"].startswith("deepspeed is not importable")
    assert all(part["status"] == "ok" for name, part in report["parts"].items() if name != "midsize_zero2")
    for name, part in report["parts"].items():
        assert part["seconds"] > 0 and part["peak_memory_gb"] > 0, name
        assert f"| {name} | {part['status']} |" in markdown
    assert report["mode"] == "cpu dry run" and report["elapsed_s"] <= report["budget_s"]


def test_environment_names_the_stack(dry_run) -> None:
    env = dry_run[1]["parts"]["environment"]
    assert env["torch"] == torch.__version__ and env["transformers"] == transformers.__version__
    assert env["attn_implementation"] == "sdpa" and env["matmul_bf16_tflops"] > 0


def test_training_reports_the_telemetry_of_the_trainer(dry_run) -> None:
    """tokens/s, TFLOP/s and MFU are the `ThroughputMeter`'s: its FLOPs per token, the batch's real tokens."""
    from gpu_workload import SampleSet, build  # bench/ is on sys.path (tests/bench/conftest.py)

    from ufvideo.train.trainer import TrainCollator

    part = dry_run[1]["parts"]["midsize_train"]
    model, processor = build("tiny", "cpu")
    freeze = apply_policy(model, "full")
    assert part["flops_per_token"] == llm_flops_per_token(model, set(freeze.row_masked))
    batch = TrainCollator(processor, 2048)([SampleSet(model.config, 2)[i] for i in range(2)])
    assert part["tokens_per_step"] == int(batch["attention_mask"].sum())
    assert part["bf16"] and part["gradient_checkpointing"] and part["freeze_policy"] == "full"
    assert part["steps"] == 3 and part["measured_steps"] == 2 and part["losses_finite"]
    assert part["tflops_per_s"] == pytest.approx(part["tokens_per_s"] * part["flops_per_token"] / 1e12)
    assert part["mfu"] == pytest.approx(part["tflops_per_s"] / part["peak_tflops"])
    tiny = dry_run[1]["parts"]["tiny_train"]
    assert tiny["bf16"] and tiny["losses_finite"] and tiny["freeze_policy"] == "align"
    assert len(tiny["generated"]) == 2 and all(0 < n <= 16 for n in tiny["generated_tokens"])


def test_batched_generation_equals_one_by_one(dry_run) -> None:
    part = dry_run[1]["parts"]["generation"]
    assert part["dtype"] == "float32" and part["identical"] == part["samples"] == 3 and part["mismatches"] == []
    assert 0 < part["generated_tokens"] <= part["samples"] * part["max_new_tokens"]
    assert part["batched_s"] > 0 and part["speedup"] == pytest.approx(part["one_by_one_s"] / part["batched_s"])


def test_a_spent_budget_skips_parts_with_the_reason(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--cpu", "--out", str(tmp_path), "--budget-s", "5", "--parts", "generation"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    part = json.loads((tmp_path / "gpu_check.json").read_text())["parts"]["generation"]
    assert part["status"] == "skipped" and part["reason"].startswith("global time budget spent")
