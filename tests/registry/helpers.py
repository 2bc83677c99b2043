"""Small checkpoints and eval outputs for the registry tests: real files with the contract's layout, no weights."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ufvideo.checkpoint import checkpoint_digest, write_info


def fake_checkpoint(root: Path, seed: int = 0, **info: Any) -> Path:
    """A checkpoint-shaped directory (config, weights blob, tokenizer file, ufvideo.json); `seed` changes its bytes."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "config.json").write_text(json.dumps({"model_type": "ufvideo", "seed": seed}))
    (root / "model.safetensors").write_bytes(bytes([seed % 256]) * 4096)
    (root / "tokenizer").mkdir(exist_ok=True)
    (root / "tokenizer" / "tokenizer.json").write_text('{"version": "1.0"}')
    fields = {"profile": "tiny", "stage": 2, "data_digest": f"data-{seed}", "created": "2026-11-24T00:00:00+00:00"}
    write_info(root, **(fields | info))
    return root


def write_metrics(out: Path, benchmark: str, metrics: dict[str, float | None], checkpoint: Path | str) -> Path:
    """An eval `metrics.json` for `checkpoint`, as `ufvideo eval --out DIR` writes it."""
    out.mkdir(parents=True, exist_ok=True)
    data = {
        "benchmark": benchmark,
        "checkpoint": {"uri": str(checkpoint), "digest": checkpoint_digest(checkpoint)},
        "metrics": metrics,
        "aggregation": None,
        "num_samples": 10,
        "published": {},
        "notes": [],
    }
    path = out / "metrics.json"
    path.write_text(json.dumps(data))
    return path


def write_policy(path: Path, text: str) -> Path:
    path.write_text(text)
    return path
