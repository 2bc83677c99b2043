"""The typed training config (profile sections `train_stage1` / `train_stage2`) and the HF `TrainingArguments` it
resolves to, including the global-batch arithmetic that keeps a recipe's batch fixed on any number of GPUs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from ufvideo import distributed
from ufvideo.config import ConfigError
from ufvideo.model.adapters import AdapterConfig
from ufvideo.train.vision_warmup import VisionWarmup

if TYPE_CHECKING:
    from transformers import TrainingArguments

DEEPSPEED_PRESETS = ("zero2", "zero2_offload", "zero3")


@dataclass
class TrainConfig:
    """One training stage. Every field is logged to MLflow; `None` means "take it from the model / data"."""

    stage: Literal[1, 2] = 1
    data: str = "data/curated"  # curated directory (manifest.json + shards)
    split: str = "train"
    out: str = "runs/train"  # working directory: step checkpoints (for resume) and the final export
    output_uri: str | None = None  # where the final checkpoint is copied (local path or s3://); None: `out`/final
    init: str | None = None  # checkpoint to start from; stage 2 requires the stage-1 checkpoint
    model: Literal["tiny", "ufvideo-7b"] = "tiny"  # profile recorded in ufvideo.json; tiny may start from scratch
    freeze_policy: Literal["align", "full", "lora"] = "align"
    lora: AdapterConfig = field(default_factory=AdapterConfig)  # used by freeze_policy=lora only
    # tiny profile only, when it starts from scratch: UFVideoConfig fields set on the built model (e.g. a size)
    model_overrides: dict[str, Any] = field(default_factory=dict)
    train_vision_tower: bool = False  # tiny profile only: its SigLIP is random, not pretrained (stages.apply_policy)
    # tiny profile, stage 1 from scratch: pretrain the random SigLIP + connector on the synthetic renderer's labels
    # first (train/vision_warmup.py); epochs 0 = off. Skipped when `init` (or a resumed checkpoint) brings the
    # vision path.
    vision_warmup: VisionWarmup = field(default_factory=VisionWarmup)
    seed: int = 42
    # batch: the global batch is the recipe; gradient accumulation follows from the world size
    global_batch_size: int = 8
    per_device_batch_size: int = 2
    # optimisation
    learning_rate: float = 2e-5
    lr_scheduler_type: str = "cosine"
    lr_scheduler_kwargs: dict[str, float] = field(default_factory=dict)
    warmup_ratio: float = 0.03
    weight_decay: float = 0.0
    # learning_rate x multiplier for the parameters under a module prefix (e.g. {connector: 0.3}); the longest
    # matching prefix wins, unlisted parameters keep the base rate, 0 freezes them. Why: the tiny profile's random
    # connector collapsed the video at the LLM's rate (BENCHMARKS.md, "the connector collapse").
    lr_multipliers: dict[str, float] = field(default_factory=dict)
    max_grad_norm: float = 1.0
    num_epochs: float = 2.0
    max_steps: int = -1  # > 0 overrides num_epochs
    # data
    num_frames: int | None = None  # None: the model's config.num_frames (must match it when set)
    num_sam_frames: int = 4
    max_length: int = 2048  # text tokens per sample, video/region placeholders not counted
    group_by_length: bool = True
    dataloader_num_workers: int = 2
    # MiB of decoded frames each loader process keeps for the next record of the same video (0: off). The synthetic
    # set reads every video 17 times per epoch; decoding it once per worker cuts the loader's work for the CPU loop.
    frame_cache_mb: int = 0
    # precision and memory
    bf16: bool = False
    tf32: bool = False
    gradient_checkpointing: bool = False
    deepspeed: str | None = None  # a preset name (zero2, zero2_offload, zero3) or a path to a DeepSpeed JSON
    use_cpu: bool = False
    # checkpoints and logging
    save_steps: int = 100
    save_total_limit: int = 4
    logging_steps: int = 1
    peak_tflops: float | None = None  # per-device peak for MFU (e.g. 312 for A100 bf16); None: MFU not logged

    def __post_init__(self) -> None:
        if self.stage not in (1, 2):
            raise ConfigError(f"stage: must be 1 or 2, got {self.stage!r}")
        for name in ("global_batch_size", "per_device_batch_size", "save_steps", "logging_steps", "max_length"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name}: must be >= 1, got {getattr(self, name)}")
        if self.frame_cache_mb < 0:
            raise ConfigError(f"frame_cache_mb: must be >= 0 (0 turns the cache off), got {self.frame_cache_mb}")
        if self.num_sam_frames < 1:
            raise ConfigError(f"num_sam_frames: must be >= 1, got {self.num_sam_frames}")
        if not 0.0 <= self.warmup_ratio < 1.0:
            raise ConfigError(f"warmup_ratio: must lie in [0, 1), got {self.warmup_ratio}")
        for prefix, multiplier in self.lr_multipliers.items():
            if not multiplier >= 0:
                raise ConfigError(f"lr_multipliers.{prefix}: must be >= 0 (0 freezes), got {multiplier}")
        if self.max_steps <= 0 and self.num_epochs <= 0:
            raise ConfigError("num_epochs: must be > 0 unless max_steps is set")
        if self.stage == 2 and not self.init:
            raise ConfigError("init: stage 2 starts from the stage-1 checkpoint; set init=<checkpoint uri>")
        if self.freeze_policy == "lora":
            check_lora(self)


def check_lora(cfg: TrainConfig) -> None:
    """An adapter checkpoint names its base, so LoRA needs an `init`; ZeRO-3 partitions the weights the adapter file
    is cut from, and 4-bit weights cannot be partitioned by DeepSpeed at all."""
    if not cfg.init:
        raise ConfigError("init: freeze_policy=lora adapts a base checkpoint; set init=<checkpoint uri>")
    if cfg.deepspeed and "zero3" in cfg.deepspeed:
        raise ConfigError("deepspeed: freeze_policy=lora runs under ZeRO-2 (zero2, zero2_offload), not ZeRO-3")
    if cfg.lora.quantize != "none" and cfg.deepspeed:
        raise ConfigError("deepspeed: lora.quantize=nf4 (QLoRA) runs without DeepSpeed (one GPU per process, DDP)")


def gradient_accumulation(global_batch: int, per_device: int, world: int) -> int:
    """Steps to accumulate so that per_device x world x steps == global_batch exactly (else a ConfigError)."""
    if world < 1 or per_device < 1:
        raise ConfigError(f"world size ({world}) and per_device_batch_size ({per_device}) must be >= 1")
    per_step = per_device * world
    if global_batch % per_step:
        raise ConfigError(
            f"global_batch_size {global_batch} is not divisible by per_device_batch_size {per_device} x "
            f"world size {world} = {per_step}; change per_device_batch_size or the number of GPUs"
        )
    return global_batch // per_step


def deepspeed_config(name_or_path: str | None) -> str | None:
    """A preset name -> the shipped JSON in `ufvideo/configs/deepspeed/`; a path is returned as is (checked)."""
    if not name_or_path:
        return None
    if name_or_path in DEEPSPEED_PRESETS:
        return str(Path(str(resources.files("ufvideo") / "configs" / "deepspeed")) / f"{name_or_path}.json")
    if not Path(name_or_path).is_file():
        presets = ", ".join(DEEPSPEED_PRESETS)
        raise ConfigError(f"deepspeed: {name_or_path!r} is neither a preset ({presets}) nor a file")
    return name_or_path


def checkpoints_dir(cfg: TrainConfig) -> Path:
    return Path(cfg.out) / "checkpoints"


def training_arguments(cfg: TrainConfig, world: int | None = None) -> TrainingArguments:
    """The HF arguments of a stage; reporting is ours (`callbacks.MLflowLogger`), so `report_to` is "none"."""
    from transformers import TrainingArguments

    world = distributed.world_size() if world is None else world
    accumulation = gradient_accumulation(cfg.global_batch_size, cfg.per_device_batch_size, world)
    kwargs: dict[str, Any] = {}
    if cfg.lr_scheduler_kwargs:
        kwargs["lr_scheduler_kwargs"] = dict(cfg.lr_scheduler_kwargs)
    if cfg.gradient_checkpointing:
        kwargs["activation_checkpointing_kwargs"] = {"use_reentrant": False}
    return TrainingArguments(
        output_dir=str(checkpoints_dir(cfg)),
        seed=cfg.seed,
        data_seed=cfg.seed,
        per_device_train_batch_size=cfg.per_device_batch_size,
        gradient_accumulation_steps=accumulation,
        learning_rate=cfg.learning_rate,
        lr_scheduler_type=cfg.lr_scheduler_type,
        warmup_steps=cfg.warmup_ratio,  # transformers 5: a value < 1 is a fraction of the total steps
        weight_decay=cfg.weight_decay,
        max_grad_norm=cfg.max_grad_norm,
        num_train_epochs=cfg.num_epochs,
        max_steps=cfg.max_steps,
        bf16=cfg.bf16,
        tf32=cfg.tf32 or None,
        activation_checkpointing=cfg.gradient_checkpointing,
        deepspeed=deepspeed_config(cfg.deepspeed),
        use_cpu=cfg.use_cpu,
        dataloader_num_workers=cfg.dataloader_num_workers,
        dataloader_persistent_workers=False,  # a fresh worker pool per epoch sees the dataset's new epoch
        remove_unused_columns=False,  # the batch is the processor's dict; every key goes to forward
        save_strategy="steps",
        save_steps=cfg.save_steps,
        save_total_limit=cfg.save_total_limit,
        logging_strategy="steps",
        logging_steps=cfg.logging_steps,
        report_to="none",
        disable_tqdm=True,
        ddp_find_unused_parameters=False,  # every trainable parameter is in every graph (zero-weighted dummy)
        **kwargs,
    )
