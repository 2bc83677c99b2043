"""Is the tiny model's blindness on qa / mcqa / tvg the visual path's fault or the LLM's? Visual inputs vs one LLM.

A fresh tiny LLM is trained on the training split's qa + mcqa records, or the `--tasks` given (AdamW, batch 8,
20-step warm-up), with the visual path frozen, and every `--every` steps its teacher-forced answers on the first
`--ntest` test records are scored with each record's own video and with another test record's video (rolled by 7).
The visual input is one of:
- `random`: the tiny profile's fixed random SigLIP + connector (what ships);
- `warmup`: the same after the stage-1 vision warm-up (`ufvideo/train/vision_warmup.py`, `--warmup-epochs`,
  `--warmup-lr`): trained on train-split frames to predict, per LLM video token, which colours, shapes, colour-shape
  pairs, sizes and motions the renderer put in that token's cell (no test video is used);
- `oracle`: no pixels at all: each video token *is* a fixed random projection of those per-cell labels, i.e. a
  perfect encoder. If the LLM does not read even these, the encoder is not what limits the tiny loop;
- `oracle-time`: `oracle` plus the token's time bin (one-hot), which no pixel-based token carries: can the LLM
  ground a span (`--tasks tvg`) when each token says when it is?
- `oracle-bag`: every video token is the projection of the whole video's labels (max over cells), so reading needs
  no attention pattern at all, only a readout.
`--tasks qa --kinds colour,shape` trains and scores only those tasks and question kinds (E16-E18: can an LLM that
trains on nothing else read at all?).
Why: BENCHMARKS.md, "Tiny model on the synthetic benchmark: does it read the video?" (E11-E18).
Run: `.venv/bin/python bench/bench_reading_bottleneck.py --data SYNTH_DIR --visual oracle [--steps 1500]`
(SYNTH_DIR from `ufvideo data synth --profile tiny --out SYNTH_DIR`).
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import torch

from ufvideo.data.dataset import CuratedDataset, LoadSettings
from ufvideo.data.synthetic import SynthConfig, corpus_texts, scene_for
from ufvideo.data.video import segment_middle_indices
from ufvideo.model import ufvideo_tiny
from ufvideo.train import vision_warmup
from ufvideo.train.trainer import TrainCollator
from ufvideo.train.vision_warmup import WIDTH, VisionWarmup, cell_labels

SHIFT = 7


class Labels:
    """Per-video cell labels of the synthetic set (scenes are re-derived from seed and index)."""

    def __init__(self, synth: SynthConfig, num_frames: int, grid: int, stride: int) -> None:
        self.synth, self.num_frames, self.grid, self.stride = synth, num_frames, grid, stride
        self.cache: dict[int, torch.Tensor] = {}

    def __call__(self, index: int) -> torch.Tensor:
        if index not in self.cache:
            scene = scene_for(self.synth, index)
            frames = segment_middle_indices(scene.num_frames, self.num_frames)
            self.cache[index] = torch.from_numpy(cell_labels(scene, frames, self.grid, self.stride))
        return self.cache[index]


def video_index(example: dict[str, Any]) -> int:
    return int(example["id"].split("/")[1].split("-")[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="a `ufvideo data synth --profile tiny` directory")
    parser.add_argument(
        "--visual", choices=("random", "warmup", "oracle", "oracle-bag", "oracle-time"), default="random"
    )
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--every", type=int, default=250)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--warmup-epochs", type=float, default=12.0)
    parser.add_argument("--warmup-lr", type=float, default=1e-3, help="E12 used 3e-3; the shipped warm-up 1e-3")
    parser.add_argument("--tasks", default="qa,mcqa", help="which of qa, mcqa to train and score")
    parser.add_argument("--kinds", default="", help="only these question kinds, e.g. colour,shape (E16-E18)")
    parser.add_argument("--ntest", type=int, default=96)
    parser.add_argument(
        "--model-overrides", type=json.loads, default={}, help='e.g. \'{"vision_config": {"patch_size": 16}}\''
    )
    parser.add_argument("--videos", type=int, default=1024, help="the synth set's `videos` (profile: 1024)")
    parser.add_argument("--test-every", type=int, default=32, help="the synth set's `test_every` (profile: 32)")
    args = parser.parse_args()
    torch.manual_seed(42)
    model, processor = ufvideo_tiny(seed=42, corpus=corpus_texts(), **args.model_overrides)
    cfg = model.config
    synth = SynthConfig(out=args.data, videos=args.videos, test_every=args.test_every)
    labels = Labels(
        synth, cfg.num_frames, cfg.patch_grid // cfg.connector_spatial_stride, cfg.connector_temporal_stride
    )
    settings = LoadSettings(cfg.num_frames, 4, cfg.num_video_tokens())
    if args.visual == "warmup":
        warmup = VisionWarmup(epochs=args.warmup_epochs, learning_rate=args.warmup_lr)
        print("warm-up:", vision_warmup.run(model, processor, CuratedDataset(args.data, "train", settings), warmup))
    model.vision_tower.requires_grad_(False)
    model.connector.requires_grad_(False)
    shown: list[int] = []
    if args.visual.startswith("oracle"):
        bins = cfg.num_frames // cfg.connector_temporal_stride
        per_bin = cfg.num_video_tokens() // bins
        width = WIDTH + bins * (args.visual == "oracle-time")
        projection = torch.randn(width, cfg.text_config.hidden_size, generator=torch.Generator().manual_seed(5))
        time_code = torch.eye(bins).repeat_interleave(per_bin, 0)  # token k's time bin, one-hot

        def oracle(index: int) -> torch.Tensor:
            cells = labels(index)
            if args.visual == "oracle-time":
                return torch.cat([cells, time_code], -1)
            return cells.amax(0).expand_as(cells) if args.visual == "oracle-bag" else cells

        model.encode_video = lambda pixel_values: torch.stack([oracle(i) @ projection for i in shown])

    def records(split: str) -> list[tuple[dict[str, Any], str]]:
        """(example, "task/kind") of the chosen tasks and kinds."""
        dataset = CuratedDataset(args.data, split, settings)
        tasks, kinds = args.tasks.split(","), set(args.kinds.split(",")) if args.kinds else None
        chosen = [(i, task, dataset.record(i)["meta"]["kind"]) for i, task in enumerate(dataset.tasks) if task in tasks]
        return [(dataset[i], f"{task}/{kind}") for i, task, kind in chosen if kinds is None or kind in kinds]

    train = [example for example, _ in records("train")]
    test_kinds = records("test")[: args.ntest]
    test = [example for example, _ in test_kinds]
    collate = TrainCollator(processor, 2048)
    test_batch = {k: v for k, v in collate(test).items() if k not in ("target_masks", "target_valid")}
    test_ids = [video_index(e) for e in test]

    per_record: dict[bool, torch.Tensor] = {}

    def score(shuffled: bool) -> tuple[float, float]:
        """(exact answers, answer tokens) teacher-forced accuracy with own or another record's video; each record's
        exact hit is kept in `per_record` for the per-kind table at the end."""
        inputs = dict(test_batch)
        shown[:] = test_ids[-SHIFT:] + test_ids[:-SHIFT] if shuffled else test_ids
        if shuffled:
            inputs["pixel_values"] = inputs["pixel_values"].roll(SHIFT, 0)
        model.eval()
        with torch.no_grad():
            logits = model(**inputs).logits
        model.train()
        targets = inputs["labels"][:, 1:]
        supervised = targets != -100
        hits = logits.argmax(-1) == targets[supervised]
        whole = torch.ones_like(targets, dtype=torch.bool)
        whole[supervised] = hits
        per_record[shuffled] = exact = whole.all(1)
        return float(exact.float().mean()), float(hits.float().mean())

    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=args.lr, weight_decay=0.0)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min(1.0, (s + 1) / 20))
    order = torch.Generator().manual_seed(0)
    print(
        f"{args.visual}: {len(train)} train / {len(test)} test {args.tasks} records, "
        f"{cfg.num_video_tokens()} video tokens"
    )
    print("step | train CE | exact own / shuffled | answer tokens own / shuffled | seconds")
    started = time.perf_counter()
    for step in range(1, args.steps + 1):
        chosen = [train[i] for i in torch.randint(len(train), (8,), generator=order).tolist()]
        shown[:] = [video_index(e) for e in chosen]
        batch = collate(chosen)
        loss = model(**{k: v for k, v in batch.items() if k not in ("target_masks", "target_valid")}).ce_loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
        if step % args.every == 0 or step == args.steps:
            own, other = score(False), score(True)
            print(
                f"{step} | {loss.item():.3f} | {own[0]:.3f} / {other[0]:.3f} | {own[1]:.3f} / {other[1]:.3f} | "
                f"{time.perf_counter() - started:.0f}",
                flush=True,
            )
    print("kind | records | exact own / shuffled (last checkpoint)")
    for kind in sorted({k for _, k in test_kinds}):
        rows = torch.tensor([k == kind for _, k in test_kinds])
        own, other = per_record[False][rows].float().mean(), per_record[True][rows].float().mean()
        print(f"{kind} | {int(rows.sum())} | {own:.3f} / {other:.3f}")


if __name__ == "__main__":
    main()
