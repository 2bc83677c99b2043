"""Does the tiny LLM learn to read the video or to recognise its training videos? Caption-only training check.

The tiny profile's fixed random SigLIP + connector (standardised visual tokens) feed a fresh tiny LLM that is trained
on the training split's captions alone (AdamW, batch 8). Every `--every` steps, teacher-forced answer-token accuracy
on the test captions is measured with each caption's own video and with another test video's (rolled by one): the
gap is what the LLM reads off the frames; a low training loss without a gap is memorisation. Why: with 72 training
videos the gap stayed within 1 point while the loss fell to 0.1, which is why the tiny profile now uses 1024 videos
(BENCHMARKS.md, "Tiny model on the synthetic benchmark").
Run: `.venv/bin/python bench/bench_read_or_memorise.py --data SYNTH_DIR [--steps 600] [--lr 3e-3]`.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import torch

from ufvideo.data.dataset import CuratedDataset, LoadSettings
from ufvideo.data.synthetic import corpus_texts
from ufvideo.model import ufvideo_tiny
from ufvideo.train.trainer import TrainCollator

HEAD_TOKENS = 14  # the caption's opening (count, background): the part every video token informs


def captions(data: str, split: str, settings: LoadSettings) -> list[dict[str, Any]]:
    dataset = CuratedDataset(data, split, settings)
    return [dataset[i] for i, task in enumerate(dataset.tasks) if task == "caption"]


def accuracy(model: Any, batch: dict[str, Any], shuffled: bool) -> tuple[float, float]:
    """(all answer tokens, the first HEAD_TOKENS of each answer) teacher-forced accuracy."""
    inputs = {k: v for k, v in batch.items() if k not in ("target_masks", "target_valid")}
    if shuffled:
        inputs["pixel_values"] = inputs["pixel_values"].roll(1, 0)
    model.eval()
    with torch.no_grad():
        logits = model(**inputs).logits
    model.train()
    labels = batch["labels"][:, 1:]
    supervised = labels != -100
    hits = logits.argmax(-1) == labels[supervised]
    head = supervised.cumsum(1)[supervised] <= HEAD_TOKENS
    return float(hits.float().mean()), float(hits[head].float().mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="a `ufvideo data synth` directory (train and test splits)")
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--every", type=int, default=100)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    model, processor = ufvideo_tiny(seed=args.seed, corpus=corpus_texts())
    model.vision_tower.requires_grad_(False)
    model.connector.requires_grad_(False)
    cfg = model.config
    settings = LoadSettings(cfg.num_frames, 4, cfg.num_video_tokens())
    train, test = captions(args.data, "train", settings), captions(args.data, "test", settings)
    collate = TrainCollator(processor, 2048)
    test_batch = collate(test)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=args.lr, weight_decay=0.0)
    order = torch.Generator().manual_seed(args.seed)
    print(f"{len(train)} training captions, {len(test)} test captions")
    print("step | train CE | test acc own video (all / head) | test acc shuffled video (all / head) | seconds")
    started = time.perf_counter()
    for step in range(1, args.steps + 1):
        picked = torch.randint(len(train), (8,), generator=order).tolist()
        batch = collate([train[i] for i in picked])
        loss = model(**{k: v for k, v in batch.items() if k not in ("target_masks", "target_valid")}).ce_loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step % args.every == 0 or step == args.steps:
            own, other = accuracy(model, test_batch, False), accuracy(model, test_batch, True)
            print(
                f"{step} | {loss.item():.3f} | {own[0]:.3f} / {own[1]:.3f} | {other[0]:.3f} / {other[1]:.3f} | "
                f"{time.perf_counter() - started:.0f}"
            )


if __name__ == "__main__":
    main()
