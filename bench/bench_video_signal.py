"""How much of the video survives the connector: across-video variation of the features at each connector stage.

For each checkpoint, 8 test captions' videos go through SigLIP and the STC connector; at each stage the ratio
mean_v ||x_v - mean(x)|| / mean_v ||x_v|| (x_v = one video's flattened output) says how different the videos still
look. A ratio near 0 at the readout means every video reaches the LLM as (almost) the same tokens, so the LLM can
only answer from priors. Why it exists: the tiny model's text answers matched a blind answer-prior baseline, and this
is the measurement that located the cause (BENCHMARKS.md, "Tiny model on the synthetic benchmark").
Run: `.venv/bin/python bench/bench_video_signal.py --data SYNTH_DIR CKPT [CKPT ...]`.
"""

from __future__ import annotations

import argparse
from typing import Any

import torch

from ufvideo.data.dataset import CuratedDataset, LoadSettings
from ufvideo.model import UFVideoForConditionalGeneration
from ufvideo.model.processing import UFVideoProcessor
from ufvideo.train.trainer import TrainCollator

STAGES = ("s1", "sampler", "s2", "readout")


def variation(x: torch.Tensor) -> float:
    flat = x.reshape(x.shape[0], -1).float()
    return float((flat - flat.mean(0)).norm(dim=1).mean() / flat.norm(dim=1).mean())


def measure(checkpoint: str, data: str, videos: int) -> dict[str, float]:
    model = UFVideoForConditionalGeneration.from_pretrained(checkpoint).eval()
    processor = UFVideoProcessor.from_pretrained(checkpoint)
    cfg = model.config
    dataset = CuratedDataset(data, "test", LoadSettings(cfg.num_frames, 4, cfg.num_video_tokens()))
    picked = [i for i, task in enumerate(dataset.tasks) if task == "caption"][:videos]
    batch = TrainCollator(processor, 2048)([dataset[i] for i in picked])
    outputs: dict[str, torch.Tensor] = {}

    def keep(name: str) -> Any:
        def hook(_module: Any, _inputs: Any, out: Any) -> None:
            outputs[name] = (out if torch.is_tensor(out) else out[0]).detach()

        return hook

    handles = [getattr(model.connector, name).register_forward_hook(keep(name)) for name in STAGES]
    with torch.no_grad():
        pixels = batch["pixel_values"]
        outputs["vision"] = model.vision_features(pixels.flatten(0, 1)).reshape(pixels.shape[0], -1)
        model.encode_video(pixels)
    for handle in handles:
        handle.remove()
    n = len(picked)
    return {name: variation(outputs[name].reshape(n, -1)) for name in ("vision", *STAGES)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoints", nargs="+")
    parser.add_argument("--data", required=True, help="synthetic directory (its test split is used)")
    parser.add_argument("--videos", type=int, default=8)
    args = parser.parse_args()
    print("checkpoint | " + " | ".join(("vision", *STAGES)))
    for checkpoint in args.checkpoints:
        ratios = measure(checkpoint, args.data, args.videos)
        print(f"{checkpoint} | " + " | ".join(f"{v:.4f}" for v in ratios.values()))


if __name__ == "__main__":
    main()
