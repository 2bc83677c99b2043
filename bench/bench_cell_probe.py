"""What does the tiny visual path pass to the LLM? A linear probe per LLM video token, on frozen features.

For each visual path (a fresh random tiny model, or the vision tower + connector of given checkpoints), the video
tokens of synthetic training videos (the first `--train-videos`) and of every test video are computed, and a linear
probe (softmax over one group, Adam, full batch) learns the colour, the shape and the colour-shape pair of the object
in each token's cell, on cells that hold exactly one (the renderer's labels, `ufvideo.train.vision_warmup`). Test
accuracy says how much of what the questions ask the LLM could read at all. `--layer K` probes SigLIP's hidden
state K instead (pooled over the connector's 2x2x2 cell by concatenation), to see where information is lost.
Chance: colour 1/6, shape 1/5, pair 1/30.
Why: BENCHMARKS.md, "Tiny model on the synthetic benchmark: does it read the video?" (the encoder bottleneck).
Run: `.venv/bin/python bench/bench_cell_probe.py --data SYNTH_DIR [CHECKPOINT ...]` (SYNTH_DIR from
`ufvideo data synth --profile tiny --out SYNTH_DIR`; no checkpoint: the random profile only).
"""

from __future__ import annotations

import argparse
from typing import Any

import torch
import torch.nn.functional as F

from ufvideo.data.dataset import CuratedDataset, LoadSettings
from ufvideo.data.synthetic import corpus_texts
from ufvideo.model import ufvideo_tiny
from ufvideo.model.loader import load_checkpoint
from ufvideo.train.vision_warmup import GROUPS, OFFSETS, collect

PROBED = ("colour", "shape", "pair")


def tokens(model: Any, pixels: torch.Tensor, layer: int | None) -> torch.Tensor:
    """(V, tokens, C): the connector's output, or SigLIP hidden state `layer` grouped into the connector's cells."""
    out = []
    with torch.no_grad():
        for k in range(0, len(pixels), 32):
            batch = pixels[k : k + 32].float()
            if layer is None:
                out.append(model.encode_video(batch))
                continue
            b, t = batch.shape[:2]
            hidden = model.vision_tower(pixel_values=batch.flatten(0, 1), output_hidden_states=True).hidden_states
            cfg = model.config
            g, ts, ss = cfg.patch_grid, cfg.connector_temporal_stride, cfg.connector_spatial_stride
            cells = hidden[layer].reshape(b, t // ts, ts, g // ss, ss, g // ss, ss, -1)
            out.append(cells.permute(0, 1, 3, 5, 2, 4, 6, 7).reshape(b, (t // ts) * (g // ss) ** 2, -1))
    return torch.cat(out)


def probe(train: tuple[torch.Tensor, torch.Tensor], test: tuple[torch.Tensor, torch.Tensor], group: str) -> float:
    """Test accuracy of a linear probe for `group` on the cells that hold exactly one value of it."""
    lo, hi = OFFSETS[group], OFFSETS[group] + GROUPS[group]

    def cells(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = x.reshape(-1, x.shape[-1]), y.reshape(-1, y.shape[-1])[:, lo:hi]
        one = y.sum(-1) == 1
        return x[one], y[one].argmax(-1)

    (xtr, ytr), (xte, yte) = cells(*train), cells(*test)
    mean, std = xtr.mean(0), xtr.std(0) + 1e-6
    xtr, xte = (xtr - mean) / std, (xte - mean) / std
    weight = torch.zeros(xtr.shape[1], hi - lo, requires_grad=True)
    bias = torch.zeros(hi - lo, requires_grad=True)
    optimizer = torch.optim.Adam([weight, bias], lr=1e-2)
    for _ in range(500):
        loss = F.cross_entropy(xtr @ weight + bias, ytr) + 1e-4 * weight.pow(2).sum()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        return float(((xte @ weight + bias).argmax(-1) == yte).float().mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="a `ufvideo data synth --profile tiny` directory")
    parser.add_argument("checkpoints", nargs="*", help="checkpoints whose vision path to probe (besides random)")
    parser.add_argument("--layer", type=int, default=None, help="probe SigLIP hidden state K instead")
    parser.add_argument("--train-videos", type=int, default=600)
    args = parser.parse_args()
    paths = [("random", *ufvideo_tiny(seed=42, corpus=corpus_texts()))]
    paths += [(str(c), *load_checkpoint(c)) for c in args.checkpoints]
    print("| visual path | " + " | ".join(f"{g} (test cells)" for g in PROBED) + " |")
    print("|---|" + "---:|" * len(PROBED))
    for name, model, processor in paths:
        model.eval()
        settings = LoadSettings(model.config.num_frames, 4, model.config.num_video_tokens())
        splits = {}
        for split in ("train", "test"):
            pixels, labels = collect(CuratedDataset(args.data, split, settings), processor, model.config)
            keep = slice(0, args.train_videos) if split == "train" else slice(None)
            splits[split] = (tokens(model, pixels[keep], args.layer), labels[keep])
        scores = [probe(splits["train"], splits["test"], group) for group in PROBED]
        print(f"| {name} | " + " | ".join(f"{s:.2f}" for s in scores) + " |", flush=True)


if __name__ == "__main__":
    main()
