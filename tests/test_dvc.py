"""The DVC pipeline (`dvc.yaml` + `params.yaml`) in a temporary git copy of the repository's pipeline files:
`dvc repro` runs synth -> ... -> register on tiny settings, a second repro does nothing, and `dvc exp run -S`
reruns exactly the stages downstream of the changed parameter."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
FILES = ("dvc.yaml", "params.yaml", ".dvcignore", ".dvc/config", ".dvc/.gitignore")
STAGES = ["synth", "curate", "train_stage1", "train_stage2", "evaluate", "register"]
# The smallest settings that still run every stage for real (a few videos, two optimizer steps per stage).
TINY_TRAIN = {
    "max_steps": 2,
    "per_device_batch_size": 2,
    "global_batch_size": 2,
    "dataloader_num_workers": 0,
    "logging_steps": 1,
}


def dvc_stages() -> dict[str, dict]:
    return yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]


def test_stages_chain_and_each_lists_only_its_own_params() -> None:
    stages = dvc_stages()
    assert list(stages) == STAGES
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    section = {"evaluate": "eval"}
    for name, stage in stages.items():
        own = section.get(name, name)
        assert stage["params"] == [own], name  # a change elsewhere must not rerun this stage
        assert own in params, name
        cmds = stage["cmd"] if isinstance(stage["cmd"], list) else [stage["cmd"]]
        for cmd in cmds:
            assert cmd.startswith(("ufvideo ", "python -m ufvideo.")), cmd  # the CLI, no inline logic
    assert "data/curated" in stages["train_stage1"]["deps"]
    assert "runs/train_stage1/final" in stages["train_stage2"]["deps"]
    for name in ("train_stage1", "train_stage2"):  # step checkpoints survive a rerun: resume works under dvc
        assert stages[name]["outs"] == [{f"runs/{name}": {"persist": True}}], name
    assert "runs/train_stage2/final" in stages["evaluate"]["deps"]
    assert "runs/eval/synthetic/metrics.json" in stages["register"]["deps"]
    assert any("metrics.json" in str(m) for m in stages["evaluate"]["metrics"])
    assert stages["train_stage1"]["plots"] and stages["evaluate"]["plots"]
    config = (REPO / ".dvc" / "config").read_text()
    assert "analytics = false" in config and "secret" not in config.lower()


@pytest.fixture
def project(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    root = tmp_path / "project"
    for name in FILES:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(REPO / name, root / name)
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["synth"]["videos"] = 4
    params["train_stage1"].update(TINY_TRAIN)
    params["train_stage2"].update(TINY_TRAIN)
    params["eval"]["max_samples"] = 2
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    env = {
        **os.environ,
        "PATH": str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", ""),
        "DVC_NO_ANALYTICS": "1",
        "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}",
        "GIT_AUTHOR_NAME": "ci",
        "GIT_AUTHOR_EMAIL": "ci@example.com",
        "GIT_COMMITTER_NAME": "ci",
        "GIT_COMMITTER_EMAIL": "ci@example.com",
    }
    env.pop("MLFLOW_RUN_ID", None)
    run(root, env, "git", "init", "-q")
    run(root, env, "dvc", "config", "--local", "core.site_cache_dir", str(tmp_path / "dvc-site-cache"))
    run(root, env, "git", "add", "-A")
    run(root, env, "git", "commit", "-q", "-m", "pipeline")
    return root, env


def run(cwd: Path, env: dict[str, str], *cmd: str) -> str:
    exe = shutil.which(cmd[0], path=env["PATH"]) or cmd[0]
    done = subprocess.run([exe, *cmd[1:]], cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    tail = f"{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
    assert done.returncode == 0, f"{' '.join(cmd)} failed ({done.returncode}):\n{tail}"
    return done.stdout + done.stderr


def ran(output: str) -> list[str]:
    return [stage for stage in STAGES if f"Running stage '{stage}'" in output]


def test_repro_end_to_end_then_nothing_then_experiment(project: tuple[Path, dict[str, str]]) -> None:
    root, env = project
    assert ran(run(root, env, "dvc", "repro")) == STAGES

    registered = json.loads((root / "runs" / "register.json").read_text())
    assert registered["name"] == "ufvideo-tiny" and registered["promotion"]["passed"]
    metrics = json.loads((root / "runs" / "eval" / "synthetic" / "metrics.json").read_text())
    assert metrics["num_samples"] == 2 and metrics["checkpoint"]["digest"] == registered["checkpoint"]["digest"]
    shown = json.loads(run(root, env, "dvc", "metrics", "show", "--json"))
    assert json.dumps(shown).count("num_samples") >= 1
    curve = (root / "runs" / "plots" / "train_stage2.csv").read_text().splitlines()
    assert curve[0].startswith("step,loss") and len(curve) >= 2  # one row per logged step

    again = run(root, env, "dvc", "repro")
    assert ran(again) == [] and "up to date" in again

    run(root, env, "git", "add", "-A")
    run(root, env, "git", "commit", "-q", "-m", "baseline")
    experiment = run(root, env, "dvc", "exp", "run", "-S", "eval.max_samples=1")
    assert ran(experiment) == ["evaluate", "register"]  # training is reused: its params did not change
    metrics = json.loads((root / "runs" / "eval" / "synthetic" / "metrics.json").read_text())
    assert metrics["num_samples"] == 1
    table = run(root, env, "dvc", "exp", "show", "--md")
    assert "eval.max_samples" in table

    # Training outputs persist across reruns (DVC used to delete them first), so a rerun resumes.
    rerun = run(root, env, "dvc", "repro", "--force", "--single-item", "train_stage1")
    assert "resuming stage 1 from" in rerun and "checkpoint-2" in rerun
