"""`UFVideoForConditionalGeneration`: splice video/region features into Qwen2, losses, `[SEG]` masks, generation.

Data flow: SigLIP (frozen, layer -2) -> STC connector -> tokens at the `<video>` placeholders; key-frame
features -> region encoder -> tokens at the `<region>` ids; Qwen2 on `inputs_embeds`; the last-layer state
that predicts each `[SEG]` -> MLP -> SAM2 mask decoder on that sample's SAM frames.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from safetensors import SafetensorError
from safetensors.torch import save_model
from transformers import PreTrainedModel, Qwen2ForCausalLM, Sam2Model, SiglipVisionModel
from transformers.utils import ModelOutput

from ufvideo.checkpoint import CheckpointError
from ufvideo.files import umask_mode
from ufvideo.model.configuration import UFVideoConfig
from ufvideo.model.connector import STCConnector
from ufvideo.model.region import RegionEncoder
from ufvideo.model.segmentation import build_seg_projector, freeze_sam, mask_losses, sam_image_features
from ufvideo.model.segmentation import decode_masks as sam_decode

WEIGHTS_NAME = "model.safetensors"


def pick_attn_implementation() -> str:
    """flash_attention_2 only where it can run (installed and CUDA); sdpa otherwise."""
    if importlib.util.find_spec("flash_attn") is not None and torch.cuda.is_available():
        return "flash_attention_2"
    return "sdpa"


@dataclass
class UFVideoOutput(ModelOutput):
    """`logits` cover every position without labels, only the supervised ones with labels (saves memory)."""

    loss: torch.Tensor | None = None
    ce_loss: torch.Tensor | None = None
    bce_loss: torch.Tensor | None = None
    dice_loss: torch.Tensor | None = None
    num_masks: int | None = None
    logits: torch.Tensor | None = None
    pred_masks: list[torch.Tensor | None] | None = None


class UFVideoForConditionalGeneration(PreTrainedModel):
    config_class = UFVideoConfig
    base_model_prefix = "ufvideo"
    main_input_name = "input_ids"
    supports_gradient_checkpointing = True
    _supports_sdpa = True
    _supports_flash_attn = True

    def __init__(self, config: UFVideoConfig) -> None:
        super().__init__(config)
        self.vision_tower = SiglipVisionModel(config.vision_config)
        self.connector = STCConnector(config)
        self.region_encoder = RegionEncoder(config)
        if config.visual_token_norm == "batch":
            width = config.text_config.hidden_size
            self.video_norm = torch.nn.BatchNorm1d(width, affine=False, momentum=0.05)
            self.region_norm = torch.nn.BatchNorm1d(width, affine=False, momentum=0.05)
        self.language_model = Qwen2ForCausalLM(config.text_config)
        self.seg_projector = build_seg_projector(config)
        self.sam = Sam2Model(config.mask_decoder_config)
        self.post_init()
        with torch.no_grad():  # SAM has one positional encoding; transformers keeps two copies, random at init
            pe = self.sam.prompt_encoder.shared_embedding.positional_embedding
            self.sam.shared_image_embedding.positional_embedding.copy_(pe)
        self.apply_freezing()

    def _init_weights(self, module: torch.nn.Module) -> None:
        # Sub-models initialise themselves; our own layers use the usual small-normal init.
        if isinstance(module, torch.nn.Linear | torch.nn.Conv2d | torch.nn.Conv3d):
            torch.nn.init.normal_(module.weight, std=0.02)
            if module.bias is not None:
                torch.nn.init.zeros_(module.bias)

    def apply_freezing(self) -> None:
        """Frozen: SigLIP, SAM2 image + prompt encoders (and the unreachable decoder heads)."""
        self.vision_tower.requires_grad_(False)
        freeze_sam(self.sam)

    # ---- inputs -> embeddings -------------------------------------------------------------------------------
    def vision_features(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """(N, 3, S, S) -> (N, patches, C_v) from hidden state `vision_feature_layer`; no graph is kept for the
        frozen tower (the released recipe), one is when a training policy unfroze it (the random tiny tower)."""
        trainable = torch.is_grad_enabled() and any(p.requires_grad for p in self.vision_tower.parameters())
        with torch.set_grad_enabled(trainable):
            out = self.vision_tower(pixel_values=pixel_values, output_hidden_states=True)
        return out.hidden_states[self.config.vision_feature_layer]

    def encode_video(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """(B, T, 3, S, S) -> (B, num_video_tokens, C_llm)."""
        b, t = pixel_values.shape[:2]
        dtype = self.connector.readout[0].weight.dtype
        feats = self.vision_features(pixel_values.flatten(0, 1).to(dtype))
        return self.connector(feats.reshape(b, t, *feats.shape[1:]))

    def embed_inputs(self, input_ids: torch.Tensor, **inputs: Any) -> torch.Tensor:
        """Token embeddings with video and region features scattered into their placeholder positions."""
        cfg = self.config
        video_pos = input_ids == cfg.video_token_id
        embeds = self.language_model.get_input_embeddings()(input_ids.masked_fill(video_pos, 0))
        if bool(video_pos.any()):
            rows = video_pos.any(1)
            feats = self.encode_video(inputs["pixel_values"][rows])
            _check_count("video", int(video_pos.sum()), feats.shape[0] * feats.shape[1])
            feats = self.to_text_scale(self._standardise("video_norm", feats))
            embeds = embeds.masked_scatter(video_pos.unsqueeze(-1), feats.to(embeds.dtype))
        region_pos = input_ids == cfg.region_token_id
        if bool(region_pos.any()):
            masks = inputs.get("region_masks")
            if masks is None or masks.shape[0] == 0:
                raise ValueError("input_ids contain <region> tokens but no region_masks were given")
            feats = self.vision_features(inputs["region_pixel_values"].to(embeds.dtype))
            tokens, _ = self.region_encoder(
                feats, masks.to(feats.device), inputs["region_frame_ids"], inputs["region_object_ids"]
            )
            _check_count("region", int(region_pos.sum()), tokens.shape[0])
            tokens = self.to_text_scale(self._standardise("region_norm", tokens))
            embeds = embeds.masked_scatter(region_pos.unsqueeze(-1), tokens.to(embeds.dtype))
        return embeds

    def _standardise(self, name: str, tokens: torch.Tensor) -> torch.Tensor:
        """Per-channel standardisation of (..., C) visual tokens by the named BatchNorm, when the config has one."""
        norm = getattr(self, name, None)
        if norm is None:
            return tokens
        if self.training and tokens.reshape(-1, tokens.shape[-1]).shape[0] < 2:
            return (tokens - norm.running_mean) / (norm.running_var + norm.eps).sqrt()
        flat = tokens.reshape(-1, tokens.shape[-1]).to(norm.running_mean.dtype)  # the statistics' dtype (bf16 too)
        return norm(flat).reshape(tokens.shape).to(tokens.dtype)

    def to_text_scale(self, tokens: torch.Tensor) -> torch.Tensor:
        """With `config.match_text_scale`, each visual token rescaled to the mean RMS of the text-embedding rows
        (the target is detached: text rows are not pulled towards the video); unchanged otherwise."""
        if not self.config.match_text_scale:
            return tokens
        table = self.language_model.get_input_embeddings().weight.detach().float()
        target = table.pow(2).mean(-1).sqrt().mean()
        rms = tokens.float().pow(2).mean(-1, keepdim=True).add(1e-12).sqrt()
        return (tokens.float() * (target / rms)).to(tokens.dtype)

    # ---- [SEG] -> masks -------------------------------------------------------------------------------------
    def seg_prompts(self, hidden: torch.Tensor, input_ids: torch.Tensor) -> list[torch.Tensor]:
        """Per sample, the projected state at each position that predicts `[SEG]` (LISA's convention)."""
        predicts_seg = input_ids[:, 1:] == self.config.seg_token_id
        prompts = self.seg_projector(hidden[:, :-1][predicts_seg])
        return list(prompts.split(predicts_seg.sum(1).tolist()))

    def predict_masks(
        self, prompts: list[torch.Tensor], sam_pixel_values: torch.Tensor, sam_frame_counts: torch.Tensor
    ) -> list[torch.Tensor | None]:
        """Low-res logits (n_b, S_b, h, w) per sample; None where a sample has no `[SEG]` or no SAM frame."""
        counts = sam_frame_counts.tolist()
        starts = [sum(counts[:b]) for b in range(len(counts))]
        needed = [b for b, p in enumerate(prompts) if p.shape[0] and counts[b]]
        if not needed:
            return [None] * len(prompts)
        frame_index = torch.cat([torch.arange(starts[b], starts[b] + counts[b]) for b in needed])
        dtype = self.sam.no_memory_embedding.dtype
        features = sam_image_features(self.sam, sam_pixel_values[frame_index.to(sam_pixel_values.device)].to(dtype))
        out: list[torch.Tensor | None] = [None] * len(prompts)
        offset = 0
        for b in needed:
            frames = features.select(slice(offset, offset + counts[b]))
            out[b], _ = sam_decode(self.sam, frames, prompts[b].to(dtype))
            offset += counts[b]
        return out

    # ---- training forward -----------------------------------------------------------------------------------
    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        target_masks: list[torch.Tensor] | None = None,
        target_valid: list[torch.Tensor] | None = None,
        **inputs: Any,
    ) -> UFVideoOutput:
        """Teacher-forced pass; takes the processor's dict. Loss = w_ce*CE + w_bce*BCE + w_dice*Dice."""
        embeds = self.embed_inputs(input_ids, **inputs)
        hidden = self.language_model.model(inputs_embeds=embeds, attention_mask=attention_mask).last_hidden_state
        head = self.language_model.lm_head
        out = UFVideoOutput()
        if labels is None:
            out.logits = head(hidden)
        else:
            targets = labels[:, 1:]
            supervised = targets != -100
            out.logits = head(hidden[:, :-1][supervised])
            out.ce_loss = (
                cross_entropy(out.logits, targets, supervised, self.config.ce_reduction)
                if bool(supervised.any())
                else hidden.sum() * 0.0
            )
        sam_pixels = inputs.get("sam_pixel_values")
        if sam_pixels is not None:
            prompts = self.seg_prompts(hidden, input_ids)
            out.pred_masks = self.predict_masks(prompts, sam_pixels, inputs["sam_frame_counts"])
        if labels is not None:
            out.loss = self.config.w_ce * out.ce_loss
        if target_masks is not None and out.pred_masks is not None:
            bce, dice, out.num_masks = mask_losses(out.pred_masks, target_masks, target_valid)
            out.bce_loss, out.dice_loss = bce.to(hidden.device), dice.to(hidden.device)
            if out.num_masks:
                mask_loss = self.config.w_bce * out.bce_loss + self.config.w_dice * out.dice_loss
                out.loss = mask_loss if out.loss is None else out.loss + mask_loss
        return out

    # ---- generation -----------------------------------------------------------------------------------------
    @torch.no_grad()
    def generate(  # type: ignore[override]
        self,
        inputs: Mapping[str, Any],
        processor: Any,
        max_new_tokens: int = 128,
        use_cache: bool = True,
        durations: list[float | None] | None = None,
        mask_mode: str | None = None,
        compat: str = "ours",
    ) -> list[Any]:
        """Batched greedy decoding; see `ufvideo.model.generation.generate` for the contract."""
        from ufvideo.model.generation import generate

        return generate(self, inputs, processor, max_new_tokens, use_cache, durations, mask_mode, compat)

    # ---- checkpoints ----------------------------------------------------------------------------------------
    def save_pretrained(self, save_directory: str | Path, processor: Any = None, **_: Any) -> None:  # type: ignore[override]
        """config.json + model.safetensors (+ tokenizer and processor_config.json when `processor` is given)."""
        directory = Path(save_directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.config.save_pretrained(str(directory))
        save_model(self, str(directory / WEIGHTS_NAME))
        umask_mode(directory / WEIGHTS_NAME)
        if processor is not None:
            processor.save_pretrained(directory)

    @classmethod
    def from_pretrained(  # type: ignore[override]
        cls,
        directory: str | Path,
        device: str | torch.device = "cpu",
        strict: bool = True,
        dtype: torch.dtype | None = None,
        **_: Any,
    ) -> UFVideoForConditionalGeneration:
        """Load a `save_pretrained` or converted directory (`model.safetensors` or shards with their index).

        The model is built on the meta device and every tensor is read straight into `dtype` (None: the
        checkpoint's own) on `device`, so the peak memory is about the weights in that dtype. Unexpected keys are
        always an error; missing ones only if `strict` (a converted VideoRefer checkpoint has no SAM2 decoder or
        `[SEG]` MLP: they get a fresh initialisation).
        """
        from accelerate import init_empty_weights

        from ufvideo.model.weights import init_missing, load_into, weight_files

        directory = Path(directory)
        config = UFVideoConfig.from_pretrained(str(directory))
        set_attn_implementation(config, "sdpa" if str(device) == "cpu" else pick_attn_implementation())
        files = weight_files(directory)
        with init_empty_weights(include_buffers=False):  # buffers stay real: the non-persistent ones are computed
            model = cls(config)
        model.name_or_path = str(directory)  # where mask_mode="propagate" looks for SAM2 memory weights
        try:
            missing, unexpected = load_into(model, files, device, dtype)
        except (SafetensorError, OSError, ValueError) as err:  # a truncated or foreign file: the user's to fix
            where = files[0] if len(files) == 1 else directory
            raise CheckpointError(f"{where}: cannot read the weights ({err})") from err
        if unexpected or (strict and missing):
            shown = f"missing keys {sorted(missing)[:5]}, unexpected {sorted(unexpected)[:5]}"
            raise ValueError(f"{directory}: {shown}")
        init_missing(model, missing, device, dtype)
        return model.to(device).eval()  # as transformers does: batch statistics (tiny visual norm) only in training


def set_attn_implementation(config: UFVideoConfig, implementation: str) -> None:
    """LLM gets `implementation`; SigLIP and SAM2 stay on sdpa (their sizes gain nothing from flash)."""
    config.text_config._attn_implementation = implementation
    config.vision_config._attn_implementation = "sdpa"
    config.mask_decoder_config._attn_implementation = "sdpa"


def cross_entropy(
    logits: torch.Tensor, targets: torch.Tensor, supervised: torch.Tensor, reduction: str
) -> torch.Tensor:
    """CE of the supervised positions (`logits` holds only those rows): the mean over tokens, or over samples of
    each sample's token mean (`reduction="sample"`), so short answers are not outweighed by long ones."""
    losses = F.cross_entropy(logits.float(), targets[supervised], reduction="none")
    if reduction == "token":
        return losses.mean()
    sample = supervised.nonzero()[:, 0]
    counts = supervised.sum(1)
    per_sample = torch.zeros(counts.shape[0], device=losses.device).index_add(0, sample, losses)
    present = counts > 0
    return (per_sample[present] / counts[present]).mean()


def _check_count(kind: str, positions: int, values: int) -> None:
    if positions != values:
        raise ValueError(
            f"{positions} {kind} placeholder positions in input_ids but {values} {kind} feature tokens; "
            "build inputs with UFVideoProcessor from the same config"
        )
