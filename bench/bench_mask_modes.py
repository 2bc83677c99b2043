"""The two mask modes on the synthetic test split's mask tasks (rvos, pixhqa): J, F, J&F and seconds per sample.

Run: `.venv/bin/python bench/bench_mask_modes.py [--workdir DIR] [--videos 16] [--stride 4] [--train-steps 800]`

Masks come from `ufvideo.eval.inference.predict(..., mask_mode=...)` with the reference answer fed
(teacher-forced, the public RVOS protocol), so every sample has its `[SEG]` state even when the LLM is untrained.
SAM frames are every `stride`-th frame of the 40-frame video, including frames where the object is absent
(empty ground truth). Models: the tiny profile as built (random), then after `--train-steps` steps of the
per-frame training objective on the synthetic train split's mask tasks (decoder + `[SEG]` MLP + LLM learn; the
SAM2 memory modules are never trained: no SAM2 checkpoint is available offline). "propagate, no occlusion gate"
forces SAM2's object-score head (frozen by UFVideo, so random in the tiny profile) to "present", to separate
memory tracking from that gate. Figures and their reading: BENCHMARKS.md, "Mask modes".
"""

from __future__ import annotations

import argparse
import copy
import json
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from ufvideo.data.dataset import Collator, CuratedDataset, LoadSettings  # noqa: E402
from ufvideo.data.masks import decode_rle  # noqa: E402
from ufvideo.data.shards import iter_records  # noqa: E402
from ufvideo.data.synthetic import SynthConfig, corpus_texts  # noqa: E402
from ufvideo.data.synthetic import generate as synth  # noqa: E402
from ufvideo.eval.inference import predict  # noqa: E402
from ufvideo.eval.metrics import contour_accuracy, region_similarity  # noqa: E402
from ufvideo.eval.types import Sample  # noqa: E402
from ufvideo.model import ufvideo_tiny  # noqa: E402

MASK_TASKS = ("rvos", "pixhqa")
MODES = ("per_frame", "propagate")


def load_samples(root: Path, stride: int) -> tuple[list[Sample], dict[str, np.ndarray]]:
    """Teacher-forced samples of the test split's mask tasks and their (S, H, W) ground truth."""
    samples, truth = [], {}
    for record in iter_records(root, split="test"):
        if record["task"] not in MASK_TASKS:
            continue
        frames = list(range(0, int(record["num_frames"]), stride))
        target = record["targets"][0]
        empty = np.zeros((record["height"], record["width"]), bool)
        gt = [decode_rle(target[str(k)]) if target.get(str(k)) is not None else empty for k in frames]
        truth[record["id"]] = np.stack(gt)
        samples.append(
            Sample(
                id=record["id"],
                benchmark="synthetic",
                task=record["task"],
                video=record["video"],
                conversation=record["conversations"][:2],
                sam_frames=frames,
                teacher_forced=True,
            )
        )
    return samples, truth


def score(predictions: list[Any], truth: dict[str, np.ndarray]) -> dict[str, float]:
    """Per-expression means (the official protocol): J, F, J&F; J&F on tracked frames and on frames with the
    object; the share of tracked frames predicted empty."""
    j_all, f_all, jf_track, jf_present, empty_track = [], [], [], [], []
    for prediction in predictions:
        pred, gt = prediction.masks[0], truth[prediction.id]
        j, f = np.asarray(region_similarity(pred, gt)), np.asarray(contour_accuracy(pred, gt))
        present = gt.reshape(len(gt), -1).any(1)
        j_all.append(j.mean())
        f_all.append(f.mean())
        jf_track.append((j[1:].mean() + f[1:].mean()) / 2)
        if present.any():
            jf_present.append((j[present].mean() + f[present].mean()) / 2)
        empty_track.append(float((pred[1:].reshape(len(pred) - 1, -1).sum(1) == 0).mean()))
    j, f = statistics.mean(j_all), statistics.mean(f_all)
    return {
        "J": j,
        "F": f,
        "J&F": (j + f) / 2,
        "J&F frames 1..": statistics.mean(jf_track),
        "J&F object present": statistics.mean(jf_present),
        "empty frames 1..": statistics.mean(empty_track),
    }


def without_occlusion_gate(model: Any) -> Any:
    """A copy whose SAM2 object-score head always says "present" (per_frame never reads that head)."""
    gated = copy.deepcopy(model)
    head = gated.sam.mask_decoder.pred_obj_score_head.proj_out
    with torch.no_grad():
        head.weight.zero_()
        head.bias.fill_(10.0)
    return gated.eval()


def train(model: Any, processor: Any, root: Path, steps: int, batch_size: int, lr: float) -> float:
    """Per-frame objective (CE + BCE + Dice, as UFVideo trains) on the train split's mask tasks; returns seconds."""
    cfg = model.config
    dataset = CuratedDataset(root, "train", LoadSettings(cfg.num_frames, cfg.num_frames_sam), seed=0)
    indices = [i for i, task in enumerate(dataset.tasks) if task in MASK_TASKS]
    collate = Collator(processor)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    rng = random.Random(0)
    model.train()
    start = time.perf_counter()
    for step in range(steps):
        dataset.set_epoch(step)
        batch = collate([dataset[i] for i in rng.sample(indices, min(batch_size, len(indices)))])
        loss = model(**batch).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step % 50 == 0 or step == steps - 1:
            print(f"  step {step}: loss {loss.item():.3f}", flush=True)
    model.eval()
    return time.perf_counter() - start


def run_modes(
    model: Any, processor: Any, samples: list[Sample], truth: dict[str, np.ndarray], root: Path, args: Any
) -> dict[str, dict[str, float]]:
    variants = {mode: (model, mode) for mode in MODES}
    variants["propagate, no occlusion gate"] = (without_occlusion_gate(model), "propagate")
    rows, seconds = {}, dict.fromkeys(variants, float("inf"))
    for name, (net, mode) in variants.items():
        predictions = list(predict(net, processor, samples, args.batch_size, data_root=root, mask_mode=mode))
        rows[name] = score(predictions, truth)
    for _ in range(args.repeats):  # interleaved, fastest pass kept: the box is shared, slow passes time neighbours
        for name, (net, mode) in variants.items():
            start = time.perf_counter()
            list(predict(net, processor, samples, args.batch_size, data_root=root, mask_mode=mode))
            seconds[name] = min(seconds[name], (time.perf_counter() - start) / len(samples))
    return {name: {**row, "s/sample": seconds[name]} for name, row in rows.items()}


def table(results: dict[str, dict[str, dict[str, float]]]) -> str:
    columns = ["J", "F", "J&F", "J&F frames 1..", "J&F object present", "empty frames 1..", "s/sample"]
    lines = ["| model | mode | " + " | ".join(columns) + " |", "|---|---|" + "---:|" * len(columns)]
    for name, rows in results.items():
        for mode, row in rows.items():
            cells = [f"{row[c]:.3f}" for c in columns]
            lines.append(f"| {name} | {mode} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", default="/tmp/ufvideo_bench_mask_modes")
    parser.add_argument("--videos", type=int, default=16)
    parser.add_argument("--stride", type=int, default=4)
    parser.add_argument("--train-steps", type=int, default=800)
    parser.add_argument("--train-batch", type=int, default=4)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=5, help="timed passes per mode; the fastest is reported")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    root = Path(args.workdir) / "synth"
    if not (root / "manifest.json").exists():
        synth(SynthConfig(out=str(root), videos=args.videos))
    samples, truth = load_samples(root, args.stride)
    frames = statistics.mean(len(s.sam_frames or []) for s in samples)
    absent = statistics.mean(float((~gt.reshape(len(gt), -1).any(1)).mean()) for gt in truth.values())
    print(
        f"{len(samples)} samples ({', '.join(MASK_TASKS)}), {frames:.0f} SAM frames each, "
        f"{absent:.1%} of them with the object absent (empty ground truth)",
        flush=True,
    )
    torch.manual_seed(0)
    model, processor = ufvideo_tiny(seed=0, corpus=corpus_texts())
    model.eval()
    results = {"tiny, untrained": run_modes(model, processor, samples, truth, root, args)}
    if args.train_steps:
        seconds = train(model, processor, root, args.train_steps, args.train_batch, args.lr)
        print(f"trained {args.train_steps} steps in {seconds:.0f} s", flush=True)
        name = f"tiny, {args.train_steps} steps per-frame training"
        results[name] = run_modes(model, processor, samples, truth, root, args)
    print(table(results))
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
