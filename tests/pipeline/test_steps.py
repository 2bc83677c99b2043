"""The step functions behind the components: override routing, workspace layout, the artifacts' small files."""

from __future__ import annotations

import json
from pathlib import Path

from ufvideo.pipeline import steps


def test_section_overrides_route_each_key_to_its_step() -> None:
    overrides = ["train_stage1.max_steps=2", "train_stage2.max_steps=3", "eval.max_samples=1", "synth.videos=4"]
    assert steps.section_overrides(overrides, "train_stage1") == ["train_stage1.max_steps=2"]
    assert steps.section_overrides(overrides, "train_stage") == []  # a prefix of a section name is not a match
    assert steps.run_dir("/ws", "abc") == "/ws/runs/abc" and steps.run_dir("/ws", "") == "/ws/runs/local"


def test_pointer_and_tables_stay_small(tmp_path: Path) -> None:
    steps.write_pointer(str(tmp_path / "a" / "dataset"), {"uri": "/ws/x", "digest": "d"})
    assert json.loads((tmp_path / "a" / "dataset").read_text()) == {"digest": "d", "uri": "/ws/x"}
    table = steps.markdown_table("Model", {"version": "3", "promoted": True})
    assert table.splitlines()[0] == "# Model" and "| promoted | True |" in table
    assert steps.read_report("") == "" and steps.read_report(str(tmp_path / "none.md")) == ""


def test_train_takes_the_freeze_policy_on_every_launch_path(tmp_path: Path, monkeypatch) -> None:
    """The pipeline's `stage<N>_freeze_policy` reaches the stage's config in the pod and a training job's command."""
    import importlib

    from ufvideo.pipeline import launch

    seen: list = []
    monkeypatch.setattr(importlib.import_module("ufvideo.train.run"), "run", seen.append)
    steps.train(2, str(tmp_path), "r1", "data", "runs/stage1/final", freeze_policy="lora")
    assert seen[-1].freeze_policy == "lora" and seen[-1].init == "runs/stage1/final"
    monkeypatch.setattr(launch, "train_distributed", lambda cfg, args, settings, name: {"cfg": cfg, "args": args})
    many = launch.LaunchSettings(num_nodes=2, gpus_per_node=8)
    job = steps.train(2, str(tmp_path), "r1", "data", "runs/stage1/final", launch=many, freeze_policy="lora")
    assert job["cfg"].freeze_policy == "lora" and "train_stage2.freeze_policy=lora" in job["args"]
    steps.train(2, str(tmp_path), "r2", "data", "runs/stage1/final", freeze_policy="")
    assert seen[-1].freeze_policy == "full"  # empty: the profile's
