"""Named freeze policies of the two training stages and the gradient mask that trains only the added token rows.

The public stage-1 recipe is unreleased (MODEL.md 4.1), so we define it: stage 1 (`align`) trains the new parts
(the embedding and LM-head rows of `<region>`, `<TEMP-*>` and `[SEG]`, region encoder, connector, `[SEG]` head and
mask decoder) against a frozen LLM; stage 2 (`full`) fine-tunes all of it plus the whole LLM. `lora` (either stage)
trains what `align` trains plus LoRA adapters on the LLM's projections (`ufvideo.model.adapters`). SigLIP and the
SAM2 image and prompt encoders are frozen in every stage, as in the released script.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

from ufvideo.model.adapters import AdapterConfig, add_lora
from ufvideo.model.modeling import UFVideoForConditionalGeneration


@dataclass
class FreezeState:
    """What a policy did: which parameters train, and which of them train only on some rows (with the hooks)."""

    policy: str
    row_masked: dict[str, torch.Tensor] = field(default_factory=dict)  # parameter name -> trained row ids
    hooks: list[torch.utils.hooks.RemovableHandle] = field(default_factory=list)
    adapter: AdapterConfig | None = None  # the LoRA settings under `lora`
    seed: int = 0  # draws the LoRA initialisation

    def remove(self) -> None:
        for handle in self.hooks:
            handle.remove()
        self.hooks.clear()


def added_token_ids(model: UFVideoForConditionalGeneration) -> torch.Tensor:
    """Ids of the tokens UFVideo adds to the base vocabulary: `<region>`, the 100 temporal tokens, `[SEG]`."""
    cfg = model.config
    ids = [cfg.region_token_id, *cfg.temp_token_ids, cfg.seg_token_id]
    return torch.tensor(sorted(set(ids)), dtype=torch.long)


def _row_mask_hook(rows: torch.Tensor, num_rows: int) -> Callable[[torch.Tensor], torch.Tensor]:
    keep = torch.zeros(num_rows, 1, dtype=torch.bool)
    keep[rows] = True

    def hook(grad: torch.Tensor) -> torch.Tensor:
        # A tensor hook runs before the gradient is accumulated (and before DeepSpeed's reduce hooks), so the
        # optimizer only ever sees exact zeros on the base rows: AdamW then leaves them bit-identical.
        return grad * keep.to(device=grad.device)

    return hook


def _train_added_rows(model: UFVideoForConditionalGeneration, state: FreezeState) -> None:
    rows = added_token_ids(model)
    lm = model.language_model
    for module in (lm.get_input_embeddings(), lm.get_output_embeddings()):
        weight = module.weight
        weight.requires_grad_(True)
        state.hooks.append(weight.register_hook(_row_mask_hook(rows, weight.shape[0])))
        state.row_masked[_param_name(model, weight)] = rows


def _param_name(model: nn.Module, param: torch.Tensor) -> str:
    for name, candidate in model.named_parameters():
        if candidate is param:
            return name
    raise KeyError("parameter is not part of the model")


def _align(model: UFVideoForConditionalGeneration, state: FreezeState) -> None:
    model.language_model.requires_grad_(False)
    _train_added_rows(model, state)


def _full(model: UFVideoForConditionalGeneration, state: FreezeState) -> None:
    model.language_model.requires_grad_(True)


def _lora(model: UFVideoForConditionalGeneration, state: FreezeState) -> None:
    add_lora(model, state.adapter or AdapterConfig(), seed=state.seed)
    _align(model, state)  # freezes the LLM (adapters too), then trains the added token rows
    for name, param in model.language_model.named_parameters():
        if ".lora_" in name:
            param.requires_grad_(True)


POLICIES: dict[str, Callable[[UFVideoForConditionalGeneration, FreezeState], None]] = {
    "align": _align,
    "full": _full,
    "lora": _lora,
}


def apply_policy(
    model: UFVideoForConditionalGeneration,
    policy: str,
    train_vision_tower: bool = False,
    adapter: AdapterConfig | None = None,
    seed: int = 0,
) -> FreezeState:
    """Set `requires_grad` per policy (on top of the model's own always-frozen parts) and install row masks.

    `train_vision_tower` unfreezes SigLIP on top of either policy. It exists for the tiny profile, whose tower is
    random rather than pretrained: training it stands in for the pretraining a real tower brings. The released
    recipe never trains SigLIP, so the 7B profile leaves it off.
    """
    if policy not in POLICIES:
        raise ValueError(f"freeze_policy={policy!r} is not defined; allowed: {', '.join(POLICIES)}")
    model.requires_grad_(False)
    model.connector.requires_grad_(True)
    model.region_encoder.requires_grad_(True)
    model.seg_projector.requires_grad_(True)
    model.apply_freezing()  # SigLIP frozen; in SAM2 only the reachable mask-decoder parts train
    state = FreezeState(policy, adapter=adapter, seed=seed)
    POLICIES[policy](model, state)
    if train_vision_tower:
        _unfreeze_vision_tower(model)
    return state


def _unfreeze_vision_tower(model: UFVideoForConditionalGeneration) -> None:
    """Train SigLIP up to the hidden state the connector reads; later layers and the post-norm/head never get a
    gradient, and a trainable parameter without one would break DDP's (and ZeRO's) gradient reduction."""
    tower = getattr(model.vision_tower, "vision_model", model.vision_tower)  # nested in older transformers
    tower.requires_grad_(True)
    layers = tower.encoder.layers
    index = model.config.vision_feature_layer
    applied = len(layers) + 1 + index if index < 0 else index  # hidden_states[i] is the output after i layers
    for layer in layers[applied:]:
        layer.requires_grad_(False)
    for name in ("post_layernorm", "head"):
        module = getattr(tower, name, None)
        if module is not None:
            module.requires_grad_(False)


def trainable_names(model: nn.Module) -> list[str]:
    return [name for name, param in model.named_parameters() if param.requires_grad]


def parameter_counts(model: nn.Module) -> dict[str, int]:
    """Trainable and total parameters (each shared tensor once), for MLflow and the MFU estimate."""
    seen: set[int] = set()
    total = trainable = 0
    for param in model.parameters():
        if id(param) in seen:
            continue
        seen.add(id(param))
        total += param.numel()
        trainable += param.numel() if param.requires_grad else 0
    return {"params_total": total, "params_trainable": trainable}
