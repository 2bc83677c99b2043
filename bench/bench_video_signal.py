"""How much of the video survives the connector, and whether the LLM could read it: across-video variation at each
connector stage, the same after per-token RMS normalisation (what the LLM's first RMSNorm sees), and a linear probe
of the video's background from its mean video token (train split -> test split).

variation = mean_v ||x_v - mean(x)|| / mean_v ||x_v|| over test captions' videos (x_v: one video's flattened
output). A ratio near 0 at "llm view" means every video reaches the LLM as (almost) the same tokens. The probe says
whether the information is there at all: when it reads the background perfectly but the trained model's captions
match the blind prior, the LLM failed to learn to read, not the encoder to see (BENCHMARKS.md, "the collapse").
Run: `.venv/bin/python bench/bench_video_signal.py --data SYNTH_DIR CKPT [CKPT ...]`.
"""

from __future__ import annotations

import argparse
import re
from typing import Any

import torch

from ufvideo.data.dataset import CuratedDataset, LoadSettings
from ufvideo.data.synthetic.scene import BACKGROUNDS
from ufvideo.model import UFVideoForConditionalGeneration
from ufvideo.model.processing import UFVideoProcessor
from ufvideo.train.trainer import TrainCollator

STAGES = ("s1", "sampler", "s2", "readout")
BATCH = 16


def variation(x: torch.Tensor) -> float:
    flat = x.reshape(x.shape[0], -1).float()
    return float((flat - flat.mean(0)).norm(dim=1).mean() / flat.norm(dim=1).mean())


def rms_normalised(tokens: torch.Tensor) -> torch.Tensor:
    return tokens / tokens.pow(2).mean(-1, keepdim=True).add(1e-12).sqrt()


def caption_batches(model: Any, processor: Any, data: str, split: str) -> list[tuple[dict[str, Any], list[str]]]:
    """(collated batch, background names) over the split's caption records, one per video."""
    cfg = model.config
    dataset = CuratedDataset(data, split, LoadSettings(cfg.num_frames, 4, cfg.num_video_tokens()))
    picked = [i for i, task in enumerate(dataset.tasks) if task == "caption"]
    out = []
    for start in range(0, len(picked), BATCH):
        chunk = picked[start : start + BATCH]
        answers = [dataset.record(i)["conversations"][1]["value"] for i in chunk]
        backgrounds = [re.search(r" on an? \S+ (.+?) background", a).group(1) for a in answers]  # type: ignore[union-attr]
        out.append((TrainCollator(processor, 2048)([dataset[i] for i in chunk]), backgrounds))
    return out


def mean_tokens(model: Any, batches: list[tuple[dict[str, Any], list[str]]]) -> tuple[torch.Tensor, list[str]]:
    feats, labels = [], []
    with torch.no_grad():
        for batch, backgrounds in batches:
            feats.append(rms_normalised(model.encode_video(batch["pixel_values"])).mean(1))
            labels += backgrounds
    return torch.cat(feats), labels


def probe(train: tuple[torch.Tensor, list[str]], test: tuple[torch.Tensor, list[str]]) -> float:
    """Test accuracy of a softmax regression (standardised inputs, 300 full-batch Adam steps) on the background."""
    names = sorted(BACKGROUNDS)
    x, y = train[0], torch.tensor([names.index(b) for b in train[1]])
    mean, std = x.mean(0), x.std(0) + 1e-6
    weight = torch.zeros(x.shape[1], len(names), requires_grad=True)
    optimizer = torch.optim.Adam([weight], lr=0.05)
    for _ in range(300):
        optimizer.zero_grad()
        logits = ((x - mean) / std) @ weight
        (torch.nn.functional.cross_entropy(logits, y) + 1e-3 * weight.pow(2).sum()).backward()
        optimizer.step()
    predicted = (((test[0] - mean) / std) @ weight).argmax(1)
    return float((predicted == torch.tensor([names.index(b) for b in test[1]])).float().mean())


def measure(checkpoint: str, data: str, videos: int) -> dict[str, float]:
    model = UFVideoForConditionalGeneration.from_pretrained(checkpoint).eval()
    processor = UFVideoProcessor.from_pretrained(checkpoint)
    test = caption_batches(model, processor, data, "test")
    batch = test[0][0]
    pixels = batch["pixel_values"][:videos]
    outputs: dict[str, torch.Tensor] = {}

    def keep(name: str) -> Any:
        def hook(_module: Any, _inputs: Any, out: Any) -> None:
            outputs[name] = (out if torch.is_tensor(out) else out[0]).detach()

        return hook

    handles = [getattr(model.connector, name).register_forward_hook(keep(name)) for name in STAGES]
    with torch.no_grad():
        outputs["vision"] = model.vision_features(pixels.flatten(0, 1)).reshape(pixels.shape[0], -1)
        outputs["llm view"] = rms_normalised(model.encode_video(pixels))
    for handle in handles:
        handle.remove()
    n = pixels.shape[0]
    ratios = {name: variation(outputs[name].reshape(n, -1)) for name in ("vision", *STAGES, "llm view")}
    train = mean_tokens(model, caption_batches(model, processor, data, "train"))
    ratios["background probe"] = probe(train, mean_tokens(model, test))
    return ratios


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoints", nargs="+")
    parser.add_argument("--data", required=True, help="synthetic directory (train split for the probe, test split)")
    parser.add_argument("--videos", type=int, default=8)
    args = parser.parse_args()
    print("checkpoint | " + " | ".join(("vision", *STAGES, "llm view", "background probe")))
    for checkpoint in args.checkpoints:
        ratios = measure(checkpoint, args.data, args.videos)
        print(f"{checkpoint} | " + " | ".join(f"{v:.4f}" for v in ratios.values()))


if __name__ == "__main__":
    main()
