"""Fixtures for the training tests: a small synthetic curated set (shared by the module) and tiny stage configs."""

from __future__ import annotations

from pathlib import Path

import pytest

from ufvideo.contract import load_step_config
from ufvideo.data.synthetic import SynthConfig
from ufvideo.data.synthetic import generate as synth
from ufvideo.train import TrainConfig

# A handful of steps on micro-batches of 2: enough to save, kill, resume and compare, fast on 2 cores.
FAST = [
    "per_device_batch_size=2",
    "global_batch_size=2",
    "max_steps=4",
    "save_steps=2",
    "logging_steps=1",
    "dataloader_num_workers=0",
    "learning_rate=1e-3",
]


@pytest.fixture(scope="session")
def synth_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("train_data") / "synth"
    synth(SynthConfig(out=str(out), videos=4, test_every=0))
    return out


def tiny_config(stage: int, data: Path, out: Path, *overrides: str) -> TrainConfig:
    return load_step_config(f"train_stage{stage}", "tiny", overrides=[f"data={data}", f"out={out}", *FAST, *overrides])
