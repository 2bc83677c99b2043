"""Each component on its own under `kfp.local` (SubprocessRunner: the component's embedded source runs in a fresh
interpreter through KFP's executor, as in a pod, minus the container): curate -> train stage 1 (one step) ->
evaluate (two samples) -> register, each call a separate local task fed the previous task's outputs. Checks the
interface KFP sees (typed outputs, artifact metadata) where `test_components.py` checks the Python functions."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kfp import local

from components import curate_data, evaluate_benchmark, register_model, train_stage
from tests.pipeline_env import pipeline_env
from ufvideo.checkpoint import checkpoint_digest
from ufvideo.data.shards import read_manifest

RUN_ID = "kfp-local-components"


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("local_components")
    mp = pytest.MonkeyPatch()
    pipeline_env(mp, root, "local-components")
    mp.chdir(root)  # the tasks run here: MLflow's ./mlruns stays in the temporary directory
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(root / "kfp-root"))
    yield root
    mp.undo()


@pytest.fixture(scope="module")
def curated(workspace: Path) -> Any:
    return curate_data.component()(workspace=str(workspace), run_id=RUN_ID, synth_videos=4)


@pytest.fixture(scope="module")
def trained(workspace: Path, curated: Any) -> Any:
    fast = ("max_steps=1", "per_device_batch_size=2", "global_batch_size=2", "dataloader_num_workers=0")
    return train_stage.component()(
        stage=1,
        workspace=str(workspace),
        run_id=RUN_ID,
        data_uri=curated.outputs["uri"],
        data_digest=curated.outputs["digest"],
        overrides=[f"train_stage1.{item}" for item in fast],
    )


@pytest.fixture(scope="module")
def evaluated(workspace: Path, trained: Any) -> Any:
    return evaluate_benchmark.component()(
        benchmark="synthetic",
        checkpoint_uri=trained.outputs["uri"],
        checkpoint_digest=trained.outputs["digest"],
        workspace=str(workspace),
        run_id=RUN_ID,
        max_samples=2,
    )


def test_curate_data_task(workspace: Path, curated: Any) -> None:
    uri, digest = curated.outputs["uri"], curated.outputs["digest"]
    assert uri == str(workspace / "runs" / RUN_ID / "curated") and digest == read_manifest(uri)["digest"]
    dataset = curated.outputs["dataset"]
    assert dataset.metadata["digest"] == digest and json.loads(Path(dataset.path).read_text())["uri"] == uri
    assert "| uri |" in Path(curated.outputs["report"].path).read_text()


def test_train_stage_task(curated: Any, trained: Any) -> None:
    uri = trained.outputs["uri"]
    assert trained.outputs["digest"] == checkpoint_digest(uri)
    assert json.loads((Path(uri) / "ufvideo.json").read_text())["data_digest"] == curated.outputs["digest"]
    assert trained.outputs["model"].metadata["stage"] == 1
    assert trained.outputs["metrics"].metadata["global_step"] == 1.0


def test_evaluate_benchmark_task(trained: Any, evaluated: Any) -> None:
    doc = json.loads(Path(evaluated.outputs["metrics_uri"]).read_text())
    assert doc["num_samples"] == 2 and doc["checkpoint"]["digest"] == trained.outputs["digest"]
    logged = evaluated.outputs["metrics"].metadata
    assert logged["checkpoint_digest"] == trained.outputs["digest"]
    assert {f"synthetic.{k}": v for k, v in doc["metrics"].items() if v is not None}.items() <= logged.items()


def test_register_model_task(workspace: Path, trained: Any, evaluated: Any) -> None:
    task = register_model.component()(
        checkpoint_uri=trained.outputs["uri"],
        metrics_uris=[evaluated.outputs["metrics_uri"]],
        workspace=str(workspace),
        run_id=RUN_ID,
    )
    assert (task.outputs["name"], task.outputs["version"], task.outputs["champion"]) == ("local-components", "1", "1")
    assert "| promoted | True |" in Path(task.outputs["report"].path).read_text()
