"""`python -m pipelines ...`: the parser, argument parsing, submission to a KFP endpoint (fake client) and the
commands run as a user would."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml

import pipelines.__main__ as commands
from pipelines.submit import parse_arguments, submit
from ufvideo.config import ConfigError

REPO = Path(__file__).resolve().parents[2]


def parser() -> argparse.ArgumentParser:
    return commands.build_parser()


def test_parser_wires_every_command() -> None:
    args = parser().parse_args(["compile", "--out", "x.yaml", "--release"])
    assert args.func is commands._compile and args.out == "x.yaml" and args.release
    assert parser().parse_args(["compile"]).out == str(commands.DEFAULT_YAML)
    args = parser().parse_args(["submit", "--host", "http://kfp", "--arg", "profile=tiny"])
    assert args.func is commands._submit and args.arg == ["profile=tiny"]
    args = parser().parse_args(["run-local", "--videos", "2", "--benchmark", "synthetic"])
    assert args.func is commands._run_local and args.videos == 2 and args.benchmark == ["synthetic"]
    with pytest.raises(SystemExit):
        parser().parse_args(["submit"])  # --host is required


def test_arguments_are_json_when_they_parse() -> None:
    parsed = parse_arguments(["stage2_num_nodes=4", 'gpu_node_selector={"pool": "a100"}', "profile=ufvideo-7b"])
    assert parsed == {"stage2_num_nodes": 4, "gpu_node_selector": {"pool": "a100"}, "profile": "ufvideo-7b"}
    with pytest.raises(ConfigError, match="name=value"):
        parse_arguments(["novalue"])


class FakeClient:
    """The slice of kfp.Client that submit uses; remembers pipelines by name like the server does."""

    def __init__(self) -> None:
        self.pipelines: dict[str, str] = {}
        self.calls: list[tuple[str, Any]] = []

    def get_pipeline_id(self, name: str) -> str | None:
        return self.pipelines.get(name)

    def upload_pipeline(self, package: str, pipeline_name: str) -> Any:
        self.pipelines[pipeline_name] = f"p-{len(self.pipelines)}"
        self.calls.append(("upload_pipeline", pipeline_name))
        return SimpleNamespace(pipeline_id=self.pipelines[pipeline_name])

    def upload_pipeline_version(self, package: str, pipeline_version_name: str, pipeline_id: str) -> Any:
        self.calls.append(("upload_pipeline_version", (pipeline_version_name, pipeline_id)))
        return SimpleNamespace(pipeline_version_id=f"{pipeline_id}-{pipeline_version_name}")

    def create_experiment(self, name: str, namespace: str | None = None) -> Any:
        self.calls.append(("create_experiment", name))
        return SimpleNamespace(experiment_id=f"e-{name}")

    def run_pipeline(self, **kwargs: Any) -> Any:
        self.calls.append(("run_pipeline", kwargs))
        return SimpleNamespace(run_id="r-1")


def test_submit_uploads_a_version_then_runs_it() -> None:
    client = FakeClient()
    first = submit("h", "p.yaml", "ufvideo", "ufvideo-pipe", "v1", {"profile": "tiny"}, client=client)
    assert first == {"pipeline_id": "p-0", "version_id": "p-0-v1", "run_id": "r-1"}
    run = dict(client.calls)["run_pipeline"]
    assert run["experiment_id"] == "e-ufvideo" and run["params"] == {"profile": "tiny"}
    assert run["version_id"] == "p-0-v1" and run["pipeline_id"] == "p-0"
    assert run["service_account"] == "ufvideo-pipeline"  # the identity the RBAC allows to create training jobs
    client.calls.clear()
    second = submit("h", "p.yaml", "ufvideo", "ufvideo-pipe", None, {}, client=client)
    assert [name for name, _ in client.calls].count("upload_pipeline") == 0  # a new version of the same pipeline
    assert second["pipeline_id"] == "p-0" and second["version_id"].startswith("p-0-v")


def test_module_entry_point_compiles_and_exports_history(tmp_path: Path) -> None:
    out = tmp_path / "pipeline.yaml"
    subprocess.run([sys.executable, "-m", "pipelines", "compile", "--out", str(out)], check=True, cwd=REPO)
    assert list(yaml.safe_load_all(out.read_text())) == list(yaml.safe_load_all(commands.DEFAULT_YAML.read_text()))
    csv = tmp_path / "curve.csv"
    done = subprocess.run(
        [sys.executable, "-m", "ufvideo.cli", "pipeline", "history", str(tmp_path / "nothing"), "--out", str(csv)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "0 logged steps" in done.stdout and csv.read_text() == "step,loss\n"
