"""Memory per GPU of stage 2: `ufvideo-7b` (full fine-tune) against `ufvideo-7b-lora`, computed on the meta device.

Nothing is allocated: the 7B model is built on `meta`, each recipe's freeze policy is applied, and a bf16 forward of
one micro-batch at 32 frames records every tensor autograd saves for the backward (saved-tensor hooks; parameters
are not activations and are left out). Attention saves what flash attention does (q, k, v, output, log-sum-exp;
the recipe runs flash_attention_2 on GPUs), not the L x L matrix of the math path a meta tensor would take.

Per GPU under the recipes' DeepSpeed ZeRO-2 in bf16 over `--gpus` ranks: weights (bf16, replicated), gradients
(bf16, each rank keeps its 1/N partition), optimizer (AdamW: fp32 master + two moments = 12 bytes per trained
parameter, 1/N each) and activations (with the recipes' gradient checkpointing: every decoder layer's input kept,
plus one layer's saved tensors while it is recomputed, plus what lives outside the layers, the connector included).
Not counted: DeepSpeed's reduce/all-gather buckets (`reduce_bucket_size` of zero2.json, the same for both), the CUDA
context and allocator fragmentation, the frozen SigLIP/SAM2 encoders' transient no-grad activations, and the region
encoder's and mask decoder's activations (small, the same for both).

Run: `python bench/bench_lora_memory.py [--gpus 8] [--text-tokens 256] [--supervised 64]`.
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Iterator

import torch

GIB = 1 << 30


@contextlib.contextmanager
def saved_bytes(params: set[int], into: list[int]) -> Iterator[None]:
    """Adds to `into[0]` the bytes of every distinct non-parameter tensor autograd saves inside the block."""
    seen: set[int] = set()
    keep: list[torch.Tensor] = []  # ids stay unique while the tensors are alive

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        if id(tensor) not in params and id(tensor) not in seen:
            seen.add(id(tensor))
            keep.append(tensor)
            into[0] += tensor.numel() * tensor.element_size()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        yield


class _FlashSaves(torch.autograd.Function):
    """The recipe's flash attention as autograd sees it: no L x L matrix, the backward keeps q, k, v, the output
    and the fp32 log-sum-exp (what flash-attn saves). On meta only its shapes matter."""

    @staticmethod
    def forward(ctx: object, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
        out = torch.empty_like(query)
        lse = torch.empty(query.shape[:-1], dtype=torch.float32, device=query.device)
        ctx.save_for_backward(query, key, value, out, lse)
        return out

    @staticmethod
    def backward(ctx: object, grad: torch.Tensor) -> tuple[torch.Tensor, ...]:  # never run: nothing is allocated
        raise NotImplementedError


def flash_saves(module: torch.nn.Module, query, key, value, attention_mask, **_: object):  # noqa: ANN001, ANN201
    return _FlashSaves.apply(query, key, value).transpose(1, 2), None


def use_flash_saves(model: torch.nn.Module) -> None:
    from transformers import AttentionInterface

    AttentionInterface.register("flash_saves", flash_saves)
    model.config.text_config._attn_implementation = "flash_saves"


def build(profile: str) -> tuple[torch.nn.Module, object, object]:
    from ufvideo.contract import load_step_config
    from ufvideo.model import ufvideo_7b
    from ufvideo.train.stages import apply_policy
    from ufvideo.train.trainer import lr_multiplier

    cfg = load_step_config("train_stage2", profile)
    model, _ = ufvideo_7b(device="meta")
    model = model.to(torch.bfloat16)
    state = apply_policy(model, cfg.freeze_policy, cfg.train_vision_tower, cfg.lora, cfg.seed)
    for name, param in model.named_parameters():
        if param.requires_grad and lr_multiplier(name, cfg.lr_multipliers) == 0.0:
            param.requires_grad_(False)
    model = model.to(torch.bfloat16)  # DeepSpeed bf16 casts the whole module, adapters included
    use_flash_saves(model)
    return model, cfg, state


def activations(model: torch.nn.Module, batch: int, length: int, supervised: int, frames: int) -> dict[str, int]:
    """Saved bytes of one micro-batch: outside the decoder layers, per layer, and the connector's."""
    params = {id(p) for p in model.parameters()}
    lm = model.language_model
    hidden = lm.config.hidden_size
    embeds = torch.empty(batch, length, hidden, device="meta", dtype=torch.bfloat16, requires_grad=True)
    total, layer, connector = [0], [0], [0]
    with saved_bytes(params, total):
        out = lm.model(inputs_embeds=embeds).last_hidden_state
        logits = lm.lm_head(out[:, :supervised].reshape(-1, hidden))
        torch.nn.functional.cross_entropy(logits.float(), torch.zeros(logits.shape[0], dtype=torch.long, device="meta"))
    position = torch.arange(length, device="meta").unsqueeze(0).expand(batch, -1)
    rotary = lm.model.rotary_emb(embeds, position)
    with saved_bytes(params, layer):
        lm.model.layers[0](embeds, position_embeddings=rotary, position_ids=position)
    cfg = model.config
    feats = torch.empty(batch, frames, cfg.patch_grid**2, cfg.vision_config.hidden_size, device="meta")
    with saved_bytes(params, connector):
        model.connector(feats.to(torch.bfloat16))
    layers = len(lm.model.layers)
    outside = total[0] - layers * layer[0]
    kept_inputs = layers * batch * length * hidden * 2
    return {
        "no checkpointing": total[0] + connector[0],
        "checkpointing": outside + kept_inputs + layer[0] + connector[0],
        "one decoder layer": layer[0],
        "connector": connector[0],
    }


def report(profile: str, gpus: int, text_tokens: int, supervised: int) -> dict[str, float]:
    model, cfg, state = build(profile)
    seen: set[int] = set()
    total = trained = llm_values = 0
    for name, param in model.named_parameters():
        if id(param) in seen:
            continue
        seen.add(id(param))
        total += param.numel()
        if param.requires_grad:
            trained += param.numel()
            if name.startswith("language_model."):
                rows = state.row_masked.get(name)
                llm_values += len(rows) * param.shape[1] if rows is not None else param.numel()
    # QLoRA (lora.quantize=nf4) keeps the targeted projections in 4 bits plus one fp32 absmax per 64 weights
    quantizable = sum(
        p.numel() for n, p in model.named_parameters() if n.endswith("base_layer.weight") and ".layers." in n
    )
    frames = cfg.num_frames or model.config.num_frames
    length = model.config.num_video_tokens(frames) + text_tokens
    acts = activations(model, cfg.per_device_batch_size, length, supervised, frames)
    out = {
        "params_total": total,
        "params_trainable": trained,
        "llm_values_trained": llm_values,
        "weights": total * 2,
        "weights_nf4": (total - quantizable) * 2 + quantizable * (0.5 + 4 / 64) if quantizable else None,
        "gradients": trained * 2 / gpus,
        "optimizer": trained * 12 / gpus,
        "activations": acts["checkpointing"],
        "activations_no_ckpt": acts["no checkpointing"],
        "layer": acts["one decoder layer"],
        "connector": acts["connector"],
        "tokens": length,
        "micro_batch": cfg.per_device_batch_size,
    }
    out["total"] = out["weights"] + out["gradients"] + out["optimizer"] + out["activations"]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gpus", type=int, default=8, help="ZeRO-2 ranks the optimizer state is split over")
    parser.add_argument("--text-tokens", type=int, default=256, help="text tokens per sample beside the video")
    parser.add_argument("--supervised", type=int, default=64, help="answer tokens per sample (the LM head's rows)")
    args = parser.parse_args()
    rows = {p: report(p, args.gpus, args.text_tokens, args.supervised) for p in ("ufvideo-7b", "ufvideo-7b-lora")}
    full, lora = rows["ufvideo-7b"], rows["ufvideo-7b-lora"]
    print(f"stage 2, {args.gpus} GPUs, ZeRO-2 bf16, micro-batch {full['micro_batch']} x {full['tokens']} tokens")
    print("| per GPU | ufvideo-7b (full) | ufvideo-7b-lora | full / lora |")
    print("|---|---:|---:|---:|")
    for key, label in (("params_total", "parameters"), ("params_trainable", "trained parameters (tensors)")):
        print(f"| {label} | {full[key] / 1e9:.3f} B | {lora[key] / 1e9:.3f} B | {full[key] / lora[key]:.1f}x |")
    key = "llm_values_trained"
    print(
        f"| LLM values changed by training | {full[key] / 1e9:.3f} B | {lora[key] / 1e9:.3f} B "
        f"| {full[key] / lora[key]:.1f}x |"
    )
    for key, label in (
        ("weights", "weights (bf16)"),
        ("gradients", "gradients (bf16, 1/N)"),
        ("optimizer", "AdamW state (12 B/param, 1/N)"),
        ("activations", "activations, checkpointing"),
        ("total", "**total**"),
        ("activations_no_ckpt", "(activations without checkpointing)"),
    ):
        print(f"| {label} | {full[key] / GIB:.1f} GiB | {lora[key] / GIB:.1f} GiB | {full[key] / lora[key]:.2f}x |")
    qlora = lora["total"] - lora["weights"] + lora["weights_nf4"]
    print(f"| (lora.quantize=nf4: weights / total) | - | {lora['weights_nf4'] / GIB:.1f} / {qlora / GIB:.1f} GiB | - |")


if __name__ == "__main__":
    main()
