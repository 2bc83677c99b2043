"""The parts of `gpu_check.py`, each run in its own process: environment, tiny bf16 training + generation, mid-size
training throughput and LM-MFU (plain and under DeepSpeed ZeRO-2), and batched vs one-by-one generation.

Training goes through the project's own trainer (`ufvideo.train.run.make_trainer`: freeze policy, collator,
`UFVideoTrainer`), so tokens/s, TFLOP/s and MFU are the training telemetry's own numbers (`ThroughputMeter`, counted
as its module docstring says: the LLM's matmuls only), read from the trainer's per-step logs.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import importlib.util
import os
import platform
import socket
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from gpu_workload import SampleSet, build, prompt_batch, sample
from transformers import TrainerCallback

# Dense bf16 peak per GPU (vendor datasheets, without sparsity), matched on the device name in this order.
PEAK_TFLOPS = (("H100 PCIe", 756.0), ("H100", 989.4), ("H200", 989.4), ("H800", 989.4), ("A100", 312.0))
CPU_PEAK_TFLOPS = 0.15  # the tiny profile's stand-in value: on a CPU, MFU only shows the arithmetic runs


@dataclass(frozen=True)
class Settings:
    """How big a part runs: the GPU check proper, or the seconds-long CPU dry run on tiny shapes."""

    cpu: bool
    workdir: Path
    peak_tflops: float | None = None

    @property
    def device(self) -> str:
        return "cpu" if self.cpu else "cuda"

    @property
    def size(self) -> str:
        return "tiny" if self.cpu else "mid"

    def scale(self, gpu: int, cpu: int) -> int:
        return cpu if self.cpu else gpu


def peak_tflops(settings: Settings) -> float | None:
    """The MFU denominator: given, else the datasheet figure of the detected GPU (None when unknown)."""
    if settings.peak_tflops:
        return settings.peak_tflops
    if settings.cpu:
        return CPU_PEAK_TFLOPS
    name = torch.cuda.get_device_name()
    return next((tflops for key, tflops in PEAK_TFLOPS if key in name), None)


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def _matmul_tflops(device: str, side: int, repeats: int) -> float:
    """Measured bf16 matmul rate: the practical ceiling to read MFU against (the datasheet peak is higher)."""
    a = torch.randn(side, side, device=device, dtype=torch.bfloat16)
    b = torch.randn(side, side, device=device, dtype=torch.bfloat16)
    for _ in range(3):
        a @ b
    if device == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    if device == "cuda":
        torch.cuda.synchronize()
    return 2 * side**3 * repeats / (time.perf_counter() - start) / 1e12


def environment(settings: Settings) -> dict[str, Any]:
    from ufvideo.model.modeling import pick_attn_implementation

    out: dict[str, Any] = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cuda_available": torch.cuda.is_available(),
        **{name: _version(name) for name in ("transformers", "accelerate", "tokenizers", "deepspeed", "flash-attn")},
        "attn_implementation": "sdpa" if settings.cpu else pick_attn_implementation(),
        "peak_tflops": peak_tflops(settings),
    }
    if not settings.cpu:
        props = torch.cuda.get_device_properties(0)
        out.update(
            device=props.name,
            capability=f"{props.major}.{props.minor}",
            gpu_memory_gb=round(props.total_memory / 2**30, 1),
            multiprocessors=props.multi_processor_count,
            cudnn=torch.backends.cudnn.version(),
            bf16_supported=torch.cuda.is_bf16_supported(),
        )
    out["matmul_bf16_tflops"] = round(_matmul_tflops(settings.device, *settings.scale((8192, 20), (256, 3))), 3)
    return out


class _Recorder(TrainerCallback):
    """Keeps the trainer's per-step logs and step wall times, and stops every checkpoint save (not measured here)."""

    def __init__(self) -> None:
        self.logs: list[dict[str, float]] = []
        self.step_s: list[float] = []
        self._start = 0.0

    def on_step_begin(self, args: Any, state: Any, control: Any, **_: Any) -> None:
        self._start = time.perf_counter()

    def on_step_end(self, args: Any, state: Any, control: Any, **_: Any) -> None:
        self.step_s.append(time.perf_counter() - self._start)
        control.should_save = False

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **_: Any) -> None:
        if logs and "tokens_per_s" in logs:
            self.logs.append({k: float(v) for k, v in logs.items() if isinstance(v, int | float)})


def _median(rows: list[dict[str, float]], key: str) -> float | None:
    values = [row[key] for row in rows if key in row]
    return statistics.median(values) if values else None


def train(settings: Settings, model: Any, processor: Any, profile: str, steps: int, warmup: int, **values: Any) -> dict:
    """`steps` optimizer steps through the project's trainer; rates are medians over the steps after `warmup`."""
    from ufvideo.contract import load_step_config
    from ufvideo.train.callbacks import MLflowLogger
    from ufvideo.train.run import make_trainer

    base = {"out": str(settings.workdir / profile), "use_cpu": settings.cpu, "max_steps": steps, "logging_steps": 1}
    base.update(save_steps=10**9, peak_tflops=peak_tflops(settings), dataloader_num_workers=settings.scale(4, 0))
    cfg = load_step_config("train_stage1", profile, flags={**base, **values})
    cfg = dataclasses.replace(cfg, deepspeed=values.get("deepspeed"), tf32=cfg.tf32 and not settings.cpu)
    dataset = SampleSet(model.config, size=steps * cfg.global_batch_size)
    recorder = _Recorder()
    trainer = make_trainer(cfg, model, processor, dataset, callbacks=[recorder])
    trainer.remove_callback(MLflowLogger)  # nothing is tracked here (and the GPU machine has no MLflow)
    trainer.train()
    measured = recorder.logs[warmup:] or recorder.logs
    result: dict[str, Any] = {
        "steps": len(recorder.logs),
        "measured_steps": len(measured),
        "per_device_batch_size": cfg.per_device_batch_size,
        "bf16": cfg.bf16,
        "gradient_checkpointing": cfg.gradient_checkpointing,
        "deepspeed": cfg.deepspeed,
        "freeze_policy": cfg.freeze_policy,
        "flops_per_token": trainer.meter.flops_per_token,
        "peak_tflops": cfg.peak_tflops,
        "losses": [row.get("loss") for row in recorder.logs],
        "step_s": [round(s, 4) for s in recorder.step_s],
    }
    for key in ("tokens_per_s", "samples_per_s", "tflops_per_s", "mfu", "dataloader_wait_frac"):
        result[key] = _median(measured, key)
    batch = trainer.data_collator([dataset[i] for i in range(cfg.per_device_batch_size)])
    result["tokens_per_step"] = int(batch["attention_mask"].sum())  # every sample has the same length
    result["losses_finite"] = all(v is not None and v == v and abs(v) != float("inf") for v in result["losses"])
    return result


def _model_summary(model: Any) -> dict[str, Any]:
    cfg = model.config
    return {
        "params_total": sum(p.numel() for p in model.parameters()),
        "params_llm": sum(p.numel() for p in model.language_model.parameters()),
        "params_vision": sum(p.numel() for p in model.vision_tower.parameters()),
        "num_frames": cfg.num_frames,
        "image_size": cfg.image_size,
        "num_frames_sam": cfg.num_frames_sam,
        "sam_image_size": cfg.sam_image_size,
        "video_tokens": cfg.num_video_tokens(),
        "llm_hidden": cfg.text_config.hidden_size,
        "llm_layers": cfg.text_config.num_hidden_layers,
        "attn_implementation": cfg.text_config._attn_implementation,
    }


def tiny_train(settings: Settings) -> dict[str, Any]:
    """The tiny profile's model and stage-1 recipe in bf16 for a few steps, then greedy generation in bf16."""
    from ufvideo.model import ufvideo_tiny

    model, processor = ufvideo_tiny(seed=0)
    steps = settings.scale(6, 3)
    values = {"bf16": True, "global_batch_size": 4, "per_device_batch_size": 4}
    result = train(settings, model, processor, "tiny", steps, warmup=1, **values)
    model = model.to(device=settings.device, dtype=torch.bfloat16).eval()
    examples = [sample(model.config, i, seed=1) for i in range(2)]
    generations = model.generate(prompt_batch(processor, examples), processor, max_new_tokens=16)
    result["generated"] = [g.text for g in generations]
    result["generated_tokens"] = [len(g.token_ids) for g in generations]
    return result


def midsize_train(settings: Settings, deepspeed: str | None = None) -> dict[str, Any]:
    """The mid-size model, full fine-tune (the stage-2 policy) with the 7B recipe's bf16, TF32 and activation
    checkpointing, optionally under a DeepSpeed preset."""
    model, processor = build(settings.size, settings.device)
    batch = 2  # the recipe's per-device batch
    steps, warmup = settings.scale(8, 3), settings.scale(3, 1)
    values = {"freeze_policy": "full", "global_batch_size": batch, "per_device_batch_size": batch}
    result = {"model": _model_summary(model)}
    result.update(train(settings, model, processor, "ufvideo-7b", steps, warmup, deepspeed=deepspeed, **values))
    return result


def midsize_zero2(settings: Settings) -> dict[str, Any]:
    """`midsize_train` through DeepSpeed ZeRO-2 (the recipe's preset) as a one-process world."""
    try:
        import deepspeed  # noqa: F401
    except Exception as exc:  # noqa: BLE001 - any import failure means the part cannot run here
        return {"status": "skipped", "reason": f"deepspeed is not importable: {type(exc).__name__}: {exc}"}
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    world = {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "RANK": "0", "LOCAL_RANK": "0", "WORLD_SIZE": "1"}
    os.environ.update(world)
    return midsize_train(settings, deepspeed="zero2")


def _decode_all(model: Any, processor: Any, batched: dict, singles: list[dict], tokens: int) -> dict[str, Any]:
    """Batched and one-by-one decoding of the same prompts: wall times and where the token ids differ."""
    sync = torch.cuda.synchronize if torch.cuda.is_available() else (lambda: None)
    sync()
    start = time.perf_counter()
    together = model.generate(batched, processor, max_new_tokens=tokens)
    sync()
    middle = time.perf_counter()
    alone = [model.generate(inputs, processor, max_new_tokens=tokens)[0] for inputs in singles]
    sync()
    end = time.perf_counter()
    mismatches = []
    for index, (a, b) in enumerate(zip(together, alone, strict=True)):
        if a.token_ids != b.token_ids:
            first = next((i for i, (x, y) in enumerate(zip(a.token_ids, b.token_ids)) if x != y), None)
            first = min(len(a.token_ids), len(b.token_ids)) if first is None else first
            mismatches.append(
                {"sample": index, "first_difference": first, "lengths": [len(a.token_ids), len(b.token_ids)]}
            )
    return {
        "batched_s": middle - start,
        "one_by_one_s": end - middle,
        "speedup": (end - middle) / (middle - start),
        "generated_tokens": sum(len(g.token_ids) for g in together),
        "identical": len(together) - len(mismatches),
        "mismatches": mismatches,
    }


def generation(settings: Settings) -> dict[str, Any]:
    """Greedy KV-cache decoding of the same samples as one batch and one by one (bf16 on a GPU, fp32 on a CPU), then
    the identity check again in fp32 without TF32, where batching must not change a single token."""
    model, processor = build(settings.size, settings.device)
    dtype = torch.float32 if settings.cpu else torch.bfloat16
    model = model.to(dtype).eval()
    count, tokens = settings.scale(8, 3), settings.scale(128, 8)
    examples = [sample(model.config, i, seed=2) for i in range(count)]
    batched = prompt_batch(processor, examples)
    singles = [prompt_batch(processor, [e]) for e in examples]
    model.generate(prompt_batch(processor, examples[:2]), processor, max_new_tokens=4)  # warm-up: kernels, allocator
    model.generate(singles[0], processor, max_new_tokens=4)
    result: dict[str, Any] = {"samples": count, "max_new_tokens": tokens, "dtype": str(dtype).removeprefix("torch.")}
    result["prompt_tokens"] = int(batched["attention_mask"].sum(1).max())
    result.update(_decode_all(model, processor, batched, singles, tokens))
    if not settings.cpu:
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        exact = _decode_all(model.float(), processor, batched, singles, 16)
        result["fp32_identical"] = exact["identical"]
        result["fp32_mismatches"] = exact["mismatches"]
    return result


PARTS: dict[str, Callable[[Settings], dict[str, Any]]] = {
    "environment": environment,
    "tiny_train": tiny_train,
    "midsize_train": midsize_train,
    "generation": generation,
    "midsize_zero2": midsize_zero2,
}


def peak_memory(settings: Settings) -> dict[str, Any]:
    """Peak memory of this part's process: allocated / reserved by PyTorch on the GPU, or the CPU's max RSS."""
    if not settings.cpu and torch.cuda.is_initialized():
        return {
            "peak_memory_gb": round(torch.cuda.max_memory_allocated() / 2**30, 2),
            "peak_reserved_gb": round(torch.cuda.max_memory_reserved() / 2**30, 2),
            "memory_kind": "cuda max_memory_allocated",
        }
    import resource

    rss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"peak_memory_gb": round(rss_kb / 2**20, 2), "memory_kind": "process max RSS" + (" (CPU)" * settings.cpu)}


def run(name: str, settings: Settings) -> dict[str, Any]:
    """One part, timed, with its peak memory; a failure is returned as data, never raised."""
    start = time.perf_counter()
    try:
        result = {"status": "ok", **PARTS[name](settings)}
    except Exception as exc:  # noqa: BLE001 - the check records every failure and goes on with the next part
        import traceback

        result = {
            "status": "error",
            "error": f"{type(exc).__name__}: {exc}",
            "traceback": traceback.format_exc()[-4000:],
        }
    result["seconds"] = round(time.perf_counter() - start, 2)
    result.update(peak_memory(settings))
    print(f"[{name}] {result['status']} in {result['seconds']} s", file=sys.stderr)
    return result
