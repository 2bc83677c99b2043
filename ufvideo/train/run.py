"""`run(cfg)`: one training stage end to end (what the CLI, DVC and KFP call): model + freeze policy, curated data,
`UFVideoTrainer`, automatic resume from the newest complete step checkpoint, MLflow, final checkpoint export.

Launch (the global batch holds for any world size; gradient accumulation is derived from WORLD_SIZE):
  one process:  ufvideo train --stage 1 --profile ufvideo-7b [key=value ...]
  one node:     torchrun --nproc_per_node 8 -m ufvideo.train --stage 1 --profile ufvideo-7b
  multi-node:   torchrun --nnodes $NNODES --node_rank $NODE_RANK --nproc_per_node 8 \\
                  --master_addr $MASTER_ADDR --master_port $MASTER_PORT -m ufvideo.train --stage 2 ...
  (the training operator sets MASTER_ADDR, MASTER_PORT, NNODES and the node rank; `out` must be on storage every node
  sees, since step checkpoints are written by all ranks and resume reads them).
"""

from __future__ import annotations

import contextlib
import logging
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from transformers.trainer import TRAINING_ARGS_NAME
from transformers.trainer_callback import PrinterCallback

from ufvideo import distributed, storage, tracking
from ufvideo.checkpoint import CheckpointError, checkpoint_digest, materialize, publish, write_info
from ufvideo.config import ConfigError, to_dict
from ufvideo.data.dataset import CuratedDataset, LoadSettings
from ufvideo.data.shards import read_manifest
from ufvideo.spool import MetricSpool
from ufvideo.train import vision_warmup
from ufvideo.train.args import (
    TrainConfig,
    checkpoints_dir,
    gradient_accumulation,
    training_arguments,
)
from ufvideo.train.callbacks import (
    CompleteMarker,
    MLflowLogger,
    ThroughputMeter,
    llm_flops_per_token,
)
from ufvideo.train.console import ConsoleProgress
from ufvideo.train.preemption import Preempted, PreemptionCallback, sigterm_saves
from ufvideo.train.resume import resume_point
from ufvideo.train.stages import apply_policy, parameter_counts
from ufvideo.train.trainer import TrainCollator, UFVideoTrainer, lr_multiplier

log = logging.getLogger(__name__)
FINAL_DIR = "final"
SPOOL_FILE = "tracking-spool.jsonl"  # tracking calls MLflow did not take, replayed when it answers


def build_model(cfg: TrainConfig) -> tuple[Any, Any]:
    """(model, processor) to train. Stage 2 loads *everything* of the stage-1 checkpoint strictly, mask decoder and
    `[SEG]` head included (the public script silently re-initialises them); stage 1 may start from a converted
    base (no SAM decoder / `[SEG]` head yet: they keep their fresh init) or, on the tiny profile, from scratch."""
    from ufvideo.model import ufvideo_tiny
    from ufvideo.model.loader import load_checkpoint

    if cfg.init and cfg.model_overrides:
        raise ConfigError("model_overrides: only a tiny model built from scratch (no init) can take them")
    if cfg.init:
        directory = materialize(cfg.init)
        if cfg.stage == 2:
            _require_heads(directory)
        return load_checkpoint(directory, strict=cfg.stage == 2)  # an adapter init comes merged into its base
    if cfg.model != "tiny":
        raise ConfigError("init: the ufvideo-7b profile starts from a converted checkpoint; set init=<uri>")
    from ufvideo.data.synthetic import corpus_texts

    return ufvideo_tiny(seed=cfg.seed, corpus=corpus_texts(), **cfg.model_overrides)


def _require_heads(directory: Path) -> None:
    """Stage 2 must continue the stage-1 heads; a checkpoint without them is the wrong `init`, not a fresh start."""
    from ufvideo.model.adapters import ADAPTER_WEIGHTS
    from ufvideo.model.weights import read_header, weight_files

    adapter = directory / ADAPTER_WEIGHTS
    files = [adapter] if adapter.is_file() else weight_files(directory)  # adapter, one file or shards
    keys = {key for path in files for key in read_header(path)[0]}
    for prefix in ("seg_projector.", "sam.mask_decoder."):
        if not any(key.startswith(prefix) for key in keys):
            raise CheckpointError(
                f"{directory}: no {prefix}* weights; stage 2 starts from a stage-1 checkpoint that "
                "includes the trained mask decoder and [SEG] head"
            )


def warm_up_vision(
    cfg: TrainConfig, model: Any, processor: Any, dataset: CuratedDataset, resume: str | None
) -> dict[str, float]:
    """The tiny vision warm-up (`cfg.vision_warmup`) on a model built from scratch; its metrics, or {} when off or
    when `init` or the resumed checkpoint already brings the vision path (warming it again would overwrite it)."""
    if not cfg.vision_warmup.epochs:
        return {}
    if cfg.init or resume:
        log.info("vision warm-up skipped: %s brings the vision path", resume or cfg.init)
        return {}
    return vision_warmup.run(model, processor, dataset, cfg.vision_warmup)


def _load_settings(cfg: TrainConfig, model: Any) -> LoadSettings:
    frames = model.config.num_frames
    if cfg.num_frames is not None and cfg.num_frames != frames:
        raise ConfigError(f"num_frames: {cfg.num_frames} differs from the model's num_frames {frames}")
    return LoadSettings(frames, cfg.num_sam_frames, model.config.num_video_tokens(), cfg.frame_cache_mb)


def make_trainer(
    cfg: TrainConfig,
    model: Any,
    processor: Any,
    dataset: CuratedDataset,
    callbacks: Sequence[Any] = (),
    spool: MetricSpool | None = None,
) -> UFVideoTrainer:
    """The configured trainer (policy already applied to `model`); exposed for tests and notebooks."""
    args = training_arguments(cfg)
    freeze = apply_policy(model, cfg.freeze_policy, cfg.train_vision_tower, cfg.lora, cfg.seed)
    for name, param in model.named_parameters():  # a 0 multiplier freezes what the policy would train
        if param.requires_grad and lr_multiplier(name, cfg.lr_multipliers) == 0.0:
            param.requires_grad_(False)
    meter = ThroughputMeter(llm_flops_per_token(model, set(freeze.row_masked)), cfg.peak_tflops)
    trainer = UFVideoTrainer(
        model=model,
        args=args,
        train_dataset=dataset,
        data_collator=TrainCollator(processor, cfg.max_length),
        processing_class=processor,
        callbacks=[MLflowLogger(spool), CompleteMarker(), ConsoleProgress(cfg.stage), *callbacks],
        meter=meter,
        no_decay=list(freeze.row_masked),
        group_by_length=cfg.group_by_length,
        lr_multipliers=cfg.lr_multipliers,
    )
    trainer.remove_callback(PrinterCallback)  # a raw dict per log; ConsoleProgress shows them as a progress bar
    trainer.freeze_state = freeze
    if cfg.freeze_policy == "lora":
        from ufvideo.model.loader import base_reference

        trainer.adapter_base = base_reference(str(cfg.init))
    return trainer


def resolved_params(cfg: TrainConfig, trainer: UFVideoTrainer, data_digest: str) -> dict[str, Any]:
    """Everything that decides the run, as MLflow params: our config, derived values and HF's arguments."""
    args = trainer.args
    derived = {
        "world_size": args.world_size,
        "gradient_accumulation_steps": args.gradient_accumulation_steps,
        "flops_per_token": trainer.meter.flops_per_token,
        "data_digest": data_digest,
        **parameter_counts(trainer.model),
    }
    hf = {k: v for k, v in args.to_dict().items() if not k.startswith(("push_to_hub", "hub_"))}
    return {"train": to_dict(cfg), "derived": derived, "hf": hf}


def export_checkpoint(trainer: UFVideoTrainer, directory: Path) -> None:
    """Final weights + processor as a `save_pretrained` directory; every rank calls it (ZeRO-3 gathers shards)."""
    if trainer.is_world_process_zero():
        shutil.rmtree(directory, ignore_errors=True)
    trainer.save_model(str(directory))
    if trainer.is_world_process_zero():
        (directory / TRAINING_ARGS_NAME).unlink(missing_ok=True)  # a pickle of our config: not part of a checkpoint


def preflight(cfg: TrainConfig) -> None:
    """Everything that can fail cheaply fails here, in one line, before the model is built: the batch arithmetic,
    the tracking server, the output location (bucket exists, writable)."""
    gradient_accumulation(cfg.global_batch_size, cfg.per_device_batch_size, distributed.world_size())
    if distributed.rank() == 0:
        tracking.preflight()
        if cfg.output_uri:
            storage.check_writable(cfg.output_uri)


def run(cfg: TrainConfig, callbacks: Sequence[Any] = ()) -> dict[str, Any]:
    """Train one stage; returns {"checkpoint": {"uri", "digest"}, "metrics": {...}, "resumed_from", ...}.

    `callbacks` are extra `TrainerCallback`s (e.g. a platform's progress reporter). SIGTERM saves a checkpoint at
    the end of the current step and raises `Preempted` (exit 143, run KILLED); the next run resumes from it.
    """
    with tracking.bounded_requests():
        return _run(cfg, callbacks)


def _run(cfg: TrainConfig, callbacks: Sequence[Any]) -> dict[str, Any]:
    rank = distributed.rank()
    preflight(cfg)
    data_digest = read_manifest(cfg.data)["digest"]
    model, processor = build_model(cfg)
    dataset = CuratedDataset(cfg.data, cfg.split, _load_settings(cfg, model), seed=cfg.seed)
    resume = resume_point(cfg, data_digest, clean=rank == 0)
    if resume:
        log.info("resuming stage %d from %s", cfg.stage, resume)
    warmup = warm_up_vision(cfg, model, processor, dataset, resume)
    preemption = PreemptionCallback()
    spool = MetricSpool(Path(cfg.out) / SPOOL_FILE)
    trainer = make_trainer(cfg, model, processor, dataset, [preemption, *callbacks], spool=spool)
    if rank == 0 and spool.path.is_file():
        with contextlib.suppress(Exception):  # metrics of an earlier attempt that the server never took
            spool.replay()
    tracked = (
        tracking.start_run(
            f"train_stage{cfg.stage}",
            params=resolved_params(cfg, trainer, data_digest),
            data_digest=data_digest,
            tags={"ufvideo.resumed_from": resume or "", "ufvideo.profile": cfg.model},
            spool=spool,
        )
        if rank == 0
        else contextlib.nullcontext()
    )
    with tracked, sigterm_saves(preemption):
        if warmup and rank == 0:
            tracking.log_metrics({"vision_warmup": warmup})
        output = trainer.train(resume_from_checkpoint=resume)
        if preemption.requested:
            step = preemption.stopped_at if preemption.stopped_at is not None else trainer.state.global_step
            message = f"preempted: saved {checkpoints_dir(cfg) / f'checkpoint-{step}'}; rerun to resume"
            log.warning(message)
            raise Preempted(message)
        final = Path(cfg.out) / FINAL_DIR
        export_checkpoint(trainer, final)
        result = _publish(cfg, trainer, final, data_digest, output, resume, spool) if rank == 0 else {}
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.barrier()
    return result


def _publish(
    cfg: TrainConfig,
    trainer: UFVideoTrainer,
    final: Path,
    data_digest: str,
    output: Any,
    resume: str | None,
    spool: MetricSpool,
) -> dict[str, Any]:
    """ufvideo.json, copy to `output_uri`, digest, summary metrics (rank 0, inside the MLflow run)."""
    write_info(
        final,
        profile=cfg.model,
        stage=cfg.stage,
        data_digest=data_digest,
        git_commit=tracking.git_commit(),
        init=cfg.init,
        freeze_policy=cfg.freeze_policy,
        global_step=output.global_step,
        **_adapter_info(cfg, trainer),
    )
    # The whole loss curve (step checkpoints only hold it up to their step), for DVC plots and reports.
    trainer.state.save_to_json(str(Path(cfg.out) / "trainer_state.json"))
    uri = cfg.output_uri or str(final)
    digest = publish(final, uri) if uri != str(final) else checkpoint_digest(final)
    last = {}
    for entry in trainer.state.log_history:
        last.update({k: v for k, v in entry.items() if k in ("ce_loss", "bce_loss", "dice_loss", "loss")})
    metrics = {
        **{k: float(v) for k, v in output.metrics.items() if isinstance(v, int | float)},
        **{f"final_{k}": float(v) for k, v in last.items()},
        "global_step": float(output.global_step),
    }
    import mlflow

    run_id = mlflow.active_run().info.run_id
    spool.log_metrics(run_id, metrics, step=int(output.global_step))
    spool.set_tags(run_id, {"ufvideo.checkpoint_uri": uri, "ufvideo.checkpoint_digest": digest})
    return {
        "checkpoint": {"uri": uri, "digest": digest},
        "metrics": metrics,
        "stage": cfg.stage,
        "data_digest": data_digest,
        "resumed_from": resume,
        "run_id": run_id,
    }


def _adapter_info(cfg: TrainConfig, trainer: UFVideoTrainer) -> dict[str, Any]:
    """ufvideo.json of an adapter checkpoint names its base (uri + digest) and the LoRA settings."""
    if trainer.adapter_base is None:
        return {}
    return {"base_checkpoint": trainer.adapter_base, "lora": to_dict(cfg.lora)}
