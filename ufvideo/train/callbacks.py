"""Training-time bookkeeping: throughput and MFU, MLflow metric logging, and complete-checkpoint marking for resume.

FLOPs counted for TFLOP/s and MFU: the LLM's matrix multiplies only, per token of the LLM sequence (text, video and
region tokens, padding excluded): 2N forward + 2N backward to the inputs + 2N_t backward to the weights, with N the
LLM parameters without the input embedding and N_t the trainable part of them. Full fine-tuning is the usual 6N;
with a frozen LLM (stage 1) it is 4N. SigLIP, the connector, the region encoder, SAM2, the attention score matmuls
and gradient-checkpointing recompute are not counted, so MFU here is a lower bound on hardware utilisation.
"""

from __future__ import annotations

import logging
import math
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from transformers import TrainerCallback

from ufvideo import distributed
from ufvideo.files import atomic_write

log = logging.getLogger(__name__)
COMPLETE_MARK = "UFVIDEO_COMPLETE"  # written last into a step checkpoint, after every rank has saved
CHECKPOINT_PREFIX = "checkpoint-"


def llm_flops_per_token(model: torch.nn.Module, row_masked: set[str] = frozenset()) -> float:
    """6N-style model FLOPs per token (see the module docstring for exactly what is counted)."""
    lm = model.language_model
    embedding = lm.get_input_embeddings().weight
    total = trainable = 0
    for name, param in lm.named_parameters():
        if param is embedding:
            continue
        total += param.numel()
        if param.requires_grad and f"language_model.{name}" not in row_masked:
            trainable += param.numel()
    return 4.0 * total + 2.0 * trainable


class ThroughputMeter:
    """Accumulates per-micro-batch counts between two logs and turns them into rates (summed over ranks)."""

    KEYS = ("tokens", "samples", "ce_sum", "ce_n", "bce_sum", "dice_sum", "masks", "wait", "batches")

    def __init__(self, flops_per_token: float, peak_tflops: float | None = None) -> None:
        self.flops_per_token = flops_per_token
        self.peak_tflops = peak_tflops
        self._reset()

    def _reset(self) -> None:
        self.values = dict.fromkeys(self.KEYS, 0.0)
        self.since = time.perf_counter()
        self.last_step: int | None = None

    def add_wait(self, seconds: float) -> None:
        self.values["wait"] += seconds

    def add_batch(
        self, tokens: int, samples: int, ce: float | None, bce: float | None, dice: float | None, masks: int
    ) -> None:
        v = self.values
        v["tokens"] += tokens
        v["samples"] += samples
        v["batches"] += 1
        if ce is not None:
            v["ce_sum"] += ce
            v["ce_n"] += 1
        if masks and bce is not None and dice is not None:  # mask losses are means over masks: weight by count
            v["bce_sum"] += bce * masks
            v["dice_sum"] += dice * masks
            v["masks"] += masks

    def collect(self, reduce_sum: Callable[[list[float]], list[float]], step: int) -> dict[str, float]:
        """Metrics since the previous call; `reduce_sum` sums the counters over ranks (identity on one process)."""
        elapsed = max(time.perf_counter() - self.since, 1e-9)
        v = dict(zip(self.KEYS, reduce_sum([self.values[k] for k in self.KEYS]), strict=True))
        ranks = distributed.world_size()
        out = {
            "tokens_per_s": v["tokens"] / elapsed,
            "samples_per_s": v["samples"] / elapsed,
            "tflops_per_s": v["tokens"] * self.flops_per_token / elapsed / 1e12,
            "dataloader_wait_s": v["wait"] / ranks,
            "dataloader_wait_frac": min(1.0, v["wait"] / ranks / elapsed),
        }
        if self.peak_tflops:
            out["mfu"] = out["tflops_per_s"] / (self.peak_tflops * ranks)
        if v["ce_n"]:
            out["ce_loss"] = v["ce_sum"] / v["ce_n"]
        if v["masks"]:
            out["bce_loss"] = v["bce_sum"] / v["masks"]
            out["dice_loss"] = v["dice_sum"] / v["masks"]
        out["num_masks"] = v["masks"]
        self._reset()
        return out


class MLflowLogger(TrainerCallback):
    """Every `Trainer` log -> metrics of the active MLflow run (rank 0 only; no artifacts, ever).

    With a `spool`, a tracking failure is a warning and the metrics wait in the spool: training never stops for it.
    """

    def __init__(self, spool: Any = None) -> None:
        self.spool = spool

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **_: Any) -> None:
        import mlflow

        from ufvideo.tracking import log_metrics

        active = mlflow.active_run()
        if not state.is_world_process_zero or not logs or active is None:
            return
        numbers = {k: v for k, v in logs.items() if isinstance(v, int | float) and not isinstance(v, bool)}
        finite = {k: float(v) for k, v in numbers.items() if math.isfinite(float(v))}
        if self.spool is None:
            log_metrics(finite, step=state.global_step)
        elif finite:
            self.spool.log_metrics(active.info.run_id, finite, step=state.global_step)


def mark_complete(output_dir: str | os.PathLike[str], step: int, is_main: bool) -> None:
    """Mark `checkpoint-<step>` complete once every rank has written its part (a barrier under torchrun).

    `UFVideoTrainer` calls this before HF's checkpoint rotation may delete older checkpoints, so the newest
    complete checkpoint always exists on disk; `CompleteMarker.on_save` repeats it (idempotent) for trainers
    that do not.
    """
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.barrier()
    directory = Path(output_dir) / f"{CHECKPOINT_PREFIX}{step}"
    if is_main and directory.is_dir() and not (directory / COMPLETE_MARK).is_file():
        with atomic_write(directory / COMPLETE_MARK) as handle:
            handle.write(f"{step}\n")


class CompleteMarker(TrainerCallback):
    """After a step checkpoint is fully written by every rank, mark it complete; resume only trusts marked ones."""

    def on_save(self, args: Any, state: Any, control: Any, **_: Any) -> None:
        mark_complete(args.output_dir, state.global_step, state.is_world_process_zero)


def _step_of(path: Path) -> int:
    try:
        return int(path.name[len(CHECKPOINT_PREFIX) :])
    except ValueError:
        return -1


def latest_complete_checkpoint(directory: str | os.PathLike[str], clean: bool = False) -> str | None:
    """Newest `checkpoint-N` carrying the completion mark; with `clean`, newer unmarked ones (a save cut short by a
    pre-emption) are deleted so checkpoint rotation never counts them."""
    root = Path(directory)
    if not root.is_dir():
        return None
    found = sorted((p for p in root.glob(f"{CHECKPOINT_PREFIX}*") if p.is_dir() and _step_of(p) >= 0), key=_step_of)
    complete = [p for p in found if (p / COMPLETE_MARK).is_file()]
    latest = complete[-1] if complete else None
    if clean:
        for path in found:
            if not (path / COMPLETE_MARK).is_file() and (latest is None or _step_of(path) > _step_of(latest)):
                log.warning("removing incomplete checkpoint %s", path)
                shutil.rmtree(path, ignore_errors=True)
    return None if latest is None else str(latest)
