"""The HF `Trainer` subclass of UFVideo: combined loss with its parts logged, one graph on every rank, length-grouped
deterministic batches, and the collator that caps text length; everything else is stock `Trainer`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import torch
from safetensors.torch import save_file
from torch.utils.data import Sampler
from transformers import Trainer
from transformers.trainer import TRAINING_ARGS_NAME
from transformers.trainer_utils import rotate_checkpoints

from ufvideo.checkpoint import CheckpointError
from ufvideo.data.dataset import Collator
from ufvideo.files import umask_mode
from ufvideo.model.adapters import load_adapter_state, read_adapter_config, save_adapter
from ufvideo.train.callbacks import ThroughputMeter, mark_complete

# Mega-batches of this many global batches are sorted by length: similar lengths share a micro-batch (less padding)
# while the order across mega-batches stays random.
MEGABATCH_MULT = 8


class GroupedSampler(Sampler[int]):
    """Random order, then length-sorted within mega-batches; a pure function of (seed, epoch), so a resumed run
    replays exactly the batches the interrupted one would have seen."""

    def __init__(
        self, lengths: Sequence[int], group_size: int, seed: int, group_by_length: bool = True, dataset: Any = None
    ) -> None:
        self.lengths = list(lengths)
        self.dataset = dataset
        self.group_size = max(1, group_size)
        self.seed, self.epoch = seed, 0
        self.group_by_length = group_by_length

    def set_epoch(self, epoch: int) -> None:
        # accelerate forwards set_epoch to the sampler only; the dataset needs it too (it redraws SAM frames).
        self.epoch = int(epoch)
        if self.dataset is not None and hasattr(self.dataset, "set_epoch"):
            self.dataset.set_epoch(self.epoch)

    def __len__(self) -> int:
        return len(self.lengths)

    def __iter__(self) -> Iterator[int]:
        generator = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        order = torch.randperm(len(self.lengths), generator=generator).tolist()
        if not self.group_by_length:
            return iter(order)
        size = self.group_size * MEGABATCH_MULT
        out: list[int] = []
        for start in range(0, len(order), size):
            out += sorted(order[start : start + size], key=lambda i: -self.lengths[i])
        return iter(out)


class TrainCollator:
    """`Collator` plus two training needs: samples without `[SEG]` get an empty target list (so targets stay aligned
    with the batch), and text beyond `max_length` tokens is cut from the end (placeholders never are)."""

    def __init__(self, processor: Any, max_length: int) -> None:
        self.collator = Collator(processor)
        self.max_length = max_length
        settings = processor.settings
        self.placeholder_ids = (settings.video_token_id, processor.region_token_id)
        self.seg_token_id = processor.seg_token_id
        self.pad_token_id = processor.pad_token_id

    def __call__(self, examples: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        batch = self.collator([{**e, "targets": e["targets"] or []} for e in examples])
        for b, example in enumerate(examples):
            self._truncate(batch, b, str(example.get("id", b)))
        keep = int(batch["attention_mask"].sum(1).max())
        for key in ("input_ids", "attention_mask", "labels"):
            batch[key] = batch[key][:, :keep]
        return batch

    def _truncate(self, batch: dict[str, Any], b: int, sample_id: str) -> None:
        ids = batch["input_ids"][b]
        length = int(batch["attention_mask"][b].sum())
        placeholder = torch.isin(ids[:length], torch.tensor(self.placeholder_ids))
        text = (~placeholder).cumsum(0)
        if int(text[-1]) <= self.max_length:
            return
        cut = int((text <= self.max_length).sum())
        if bool(placeholder[cut:].any()):
            raise ValueError(
                f"sample {sample_id}: longer than max_length={self.max_length} text tokens before its "
                "last video/region placeholder; raise max_length or drop the record"
            )
        kept_segs = int((ids[:cut] == self.seg_token_id).sum())
        ids[cut:] = self.pad_token_id
        batch["attention_mask"][b, cut:] = 0
        batch["labels"][b, cut:] = -100
        if "target_masks" in batch:  # the [SEG]s that were cut lose their targets
            batch["target_masks"][b] = batch["target_masks"][b][:kept_segs]
            batch["target_valid"][b] = batch["target_valid"][b][:kept_segs]


class UFVideoTrainer(Trainer):
    """`Trainer` with the UFVideo loss parts, a zero-weighted touch of the optional branches, and timing."""

    def __init__(
        self,
        *args: Any,
        meter: ThroughputMeter,
        no_decay: Sequence[str] = (),
        group_by_length: bool = True,
        lr_multipliers: Mapping[str, float] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.lr_multipliers = dict(lr_multipliers or {})
        self.meter = meter
        self.no_decay = set(no_decay)
        self.group_by_length = group_by_length
        # Our loss is a per-batch mean: let Trainer divide it by the accumulation steps (no num_items_in_batch).
        self.model_accepts_loss_kwargs = False
        self.loss_is_scaled_for_ga = False
        self.freeze_state: Any = None  # set by make_trainer: the policy's row masks and LoRA settings
        self.adapter_base: dict[str, str] | None = None  # under LoRA: the base checkpoint's uri and digest

    def _get_train_sampler(self, train_dataset: Any = None) -> Sampler[int]:
        dataset = self.train_dataset if train_dataset is None else train_dataset
        group = self.args.per_device_train_batch_size * self.args.gradient_accumulation_steps * self.args.world_size
        return GroupedSampler(
            dataset.lengths, group, self.args.seed, group_by_length=self.group_by_length, dataset=dataset
        )

    def get_decay_parameter_names(self, model: torch.nn.Module) -> list[str]:
        # Row-masked matrices (stage-1 embeddings) must not decay: decay would move the frozen rows.
        return [name for name in super().get_decay_parameter_names(model) if name not in self.no_decay]

    def create_optimizer(self, model: torch.nn.Module | None = None) -> torch.optim.Optimizer:
        """Stock optimizer, but with one parameter group per (decay, learning-rate multiplier) when the recipe
        sets `lr_multipliers`; the scheduler scales every group's own initial rate."""
        if not self.lr_multipliers or self.optimizer is not None:
            return super().create_optimizer(model)
        opt_model = self.model if model is None else model
        decay = set(self.get_decay_parameter_names(opt_model))
        groups: dict[tuple[bool, float], list[torch.nn.Parameter]] = {}
        for name, param in opt_model.named_parameters():
            if param.requires_grad:
                key = (name in decay, lr_multiplier(name, self.lr_multipliers))
                groups.setdefault(key, []).append(param)
        base = self.args.learning_rate
        param_groups = [
            {"params": params, "weight_decay": self.args.weight_decay if decays else 0.0, "lr": base * multiplier}
            for (decays, multiplier), params in sorted(groups.items(), key=lambda item: item[0])
        ]
        optimizer_cls, optimizer_kwargs = self.get_optimizer_cls_and_kwargs(self.args, opt_model)
        self.optimizer = optimizer_cls(param_groups, **optimizer_kwargs)
        return self.optimizer

    def get_batch_samples(self, epoch_iterator: Iterator, num_batches: int, device: torch.device) -> tuple[list, Any]:
        start = time.perf_counter()
        batches, count = super().get_batch_samples(epoch_iterator, num_batches, device)
        self.meter.add_wait(time.perf_counter() - start)
        return batches, count

    def compute_loss(
        self,
        model: torch.nn.Module,
        inputs: dict[str, Any],
        return_outputs: bool = False,
        num_items_in_batch: Any = None,
    ) -> Any:
        outputs = model(**inputs)
        # Batches without [SEG] or <region> skip SAM and the region encoder; this zero-weighted term keeps their
        # trainable parameters in every graph, so all ranks reduce the same gradients (DDP/ZeRO need that).
        loss = outputs.loss + 0.0 * _touch(self.accelerator.unwrap_model(model))
        self.meter.add_batch(
            tokens=int(inputs["attention_mask"].sum()),
            samples=int(inputs["input_ids"].shape[0]),
            ce=_item(outputs.ce_loss),
            bce=_item(outputs.bce_loss),
            dice=_item(outputs.dice_loss),
            masks=int(outputs.num_masks or 0),
        )
        return (loss, outputs) if return_outputs else loss

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        if "loss" in logs:  # the per-step training log (not the end-of-training summary)
            logs.update(self.meter.collect(self._reduce_sum, self.state.global_step))
        super().log(logs, start_time)

    def _save(self, output_dir: str | None = None, state_dict: dict[str, torch.Tensor] | None = None) -> None:
        # Trainer hands over the state dict it gathered (ZeRO-3) or that views DeepSpeed's flat buffers (ZeRO-1/2);
        # both must be written as plain tensors, which `save_pretrained` of the model does not do.
        output_dir = output_dir or self.args.output_dir
        if not self.args.should_save:
            return
        model = self.accelerator.unwrap_model(self.model)
        if self.adapter_base is not None:  # LoRA: adapters + the fully trained modules, never the frozen base
            save_adapter(model, output_dir, self.freeze_state.adapter, self.adapter_base, self.freeze_state.row_masked)
        else:
            save_weights(model, output_dir, state_dict)
        if self.processing_class is not None:
            self.processing_class.save_pretrained(output_dir)
        torch.save(self.args, os.path.join(output_dir, TRAINING_ARGS_NAME))

    def _load_from_checkpoint(self, resume_from_checkpoint: str, model: torch.nn.Module | None = None) -> None:
        """Resume: an adapter step checkpoint is loaded into the adapted model (HF's loader knows full weights and
        `PeftModel`s only); it must have been trained on the same base."""
        document = read_adapter_config(resume_from_checkpoint)
        if document is None:
            return super()._load_from_checkpoint(resume_from_checkpoint, model)
        if self.adapter_base is None or document["base"]["digest"] != self.adapter_base["digest"]:
            raise CheckpointError(f"{resume_from_checkpoint}: an adapter checkpoint of another base or policy")
        load_adapter_state(self.model if model is None else model, resume_from_checkpoint)

    def _save_checkpoint(self, model: Any, trial: Any) -> None:
        # HF rotates old checkpoints at the end of its save, before any callback runs: with save_total_limit=1 a kill
        # right then would leave no *complete* checkpoint. So: save without rotation, mark complete, then rotate.
        limit = self.args.save_total_limit
        self.args.save_total_limit = None
        try:
            super()._save_checkpoint(model, trial)
        finally:
            self.args.save_total_limit = limit
        run_dir = self._get_output_dir(trial=trial)
        mark_complete(run_dir, self.state.global_step, self.is_world_process_zero())
        if self.args.should_save:
            rotate_checkpoints(
                output_dir=run_dir,
                save_total_limit=limit,
                best_model_checkpoint=self.state.best_model_checkpoint,
                use_mtime=True,
            )

    def _reduce_sum(self, values: list[float]) -> list[float]:
        tensor = torch.tensor(values, dtype=torch.float64, device=self.args.device)
        if self.args.world_size > 1:
            tensor = self.accelerator.reduce(tensor, reduction="sum")
        return tensor.tolist()


def save_weights(model: torch.nn.Module, directory: str | os.PathLike[str], state_dict: dict | None = None) -> None:
    """config.json + model.safetensors in the layout `UFVideoForConditionalGeneration.from_pretrained` reads."""
    from ufvideo.model.modeling import WEIGHTS_NAME

    os.makedirs(directory, exist_ok=True)
    model.config.save_pretrained(str(directory))
    state = model.state_dict() if state_dict is None else state_dict
    # copy=True: parameters may be views into one flat DeepSpeed buffer, which safetensors refuses to write.
    tensors = {name: tensor.detach().to("cpu", copy=True).contiguous() for name, tensor in state.items()}
    save_file(tensors, os.path.join(str(directory), WEIGHTS_NAME), metadata={"format": "pt"})
    umask_mode(os.path.join(str(directory), WEIGHTS_NAME))


def lr_multiplier(name: str, multipliers: Mapping[str, float]) -> float:
    """The multiplier of the longest module prefix of `name` (whole dotted components), 1.0 when none matches."""
    best, length = 1.0, -1
    for prefix, multiplier in multipliers.items():
        if (name == prefix or name.startswith(prefix + ".")) and len(prefix) > length:
            best, length = float(multiplier), len(prefix)
    return best


def _touch(model: torch.nn.Module) -> torch.Tensor:
    """Sum of one element of every trainable parameter of the optional branches (to be weighted by zero).

    Under ZeRO-3 parameters are partitioned outside their module's forward, so they cannot be touched this way;
    there DeepSpeed zero-fills missing gradients itself (single-process tested; the recipes use ZeRO-2).
    """
    total = torch.zeros((), device=next(model.parameters()).device)
    for module in (model.region_encoder, model.seg_projector, model.sam.mask_decoder):
        for param in module.parameters():
            if param.requires_grad and not hasattr(param, "ds_id"):
                total = total + param.reshape(-1)[0].float()
    return total


def _item(value: torch.Tensor | None) -> float | None:
    return None if value is None else float(value.detach())
