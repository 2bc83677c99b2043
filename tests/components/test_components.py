"""Each component's Python function on tiny inputs (the unit tier; `test_local.py` runs each under kfp.local),
chained as the pipeline chains them: curate (with the synthetic set) -> train stage 1 (one step) -> evaluate (two
samples) -> register with the gate. Artifacts must carry URIs, digests and metrics that match what the library
wrote, and a gate rejection must fail the step."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml
from kfp import dsl

from components import curate_data, evaluate_benchmark, register_model, train_stage
from tests.pipeline_env import pipeline_env
from ufvideo.checkpoint import checkpoint_digest
from ufvideo.data.shards import read_manifest
from ufvideo.tracking import KFP_RUN_TAG

RUN_ID = "kfp-run-1"
TRAIN_FAST = [
    f"train_stage1.{item}"
    for item in ("max_steps=1", "per_device_batch_size=2", "global_batch_size=2", "dataloader_num_workers=0")
]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("workspace")
    mp = pytest.MonkeyPatch()
    pipeline_env(mp, root, "components-test")
    mp.chdir(root)  # MLflow's default ./mlruns (registered model artifacts) stays in the temporary workspace
    yield root
    mp.undo()


def artifact(cls: type, root: Path, name: str) -> Any:
    return cls(name=name, uri=str(root / "artifacts" / name))


def named(component: Any, values: tuple) -> Any:
    """The returned tuple by the output names the component declares (what KFP publishes them as)."""
    names = [n for n, spec in component.component_spec.outputs.items() if not spec.type.startswith("system.")]
    assert len(names) == len(values), (names, values)
    return SimpleNamespace(**dict(zip(names, values)))


@pytest.fixture(scope="module")
def curated(workspace: Path) -> tuple[Any, Any, Any]:
    dataset, report = artifact(dsl.Dataset, workspace, "dataset"), artifact(dsl.Markdown, workspace, "curate_report")
    out = curate_data.curate_data(
        workspace=str(workspace), run_id=RUN_ID, dataset=dataset, report=report, synth_videos=4
    )
    return named(curate_data.component(), out), dataset, report


@pytest.fixture(scope="module")
def trained(workspace: Path, curated: tuple[Any, Any, Any]) -> tuple[Any, Any, Any]:
    out = curated[0]
    model, metrics = artifact(dsl.Model, workspace, "model"), artifact(dsl.Metrics, workspace, "train_metrics")
    result = train_stage.train_stage(
        stage=1,
        workspace=str(workspace),
        run_id=RUN_ID,
        data_uri=out.uri,
        data_digest=out.digest,
        model=model,
        metrics=metrics,
        overrides=TRAIN_FAST,
    )
    return named(train_stage.component(), result), model, metrics


@pytest.fixture(scope="module")
def evaluated(workspace: Path, trained: tuple[Any, Any, Any]) -> tuple[Any, Any, Any]:
    ckpt = trained[0]
    metrics, report = artifact(dsl.Metrics, workspace, "eval_metrics"), artifact(dsl.Markdown, workspace, "eval_md")
    result = evaluate_benchmark.evaluate_benchmark(
        benchmark="synthetic",
        checkpoint_uri=ckpt.uri,
        checkpoint_digest=ckpt.digest,
        workspace=str(workspace),
        run_id=RUN_ID,
        metrics=metrics,
        report=report,
        max_samples=2,
    )
    return named(evaluate_benchmark.component(), result), metrics, report


def test_curate_data_points_at_the_curated_manifest(workspace: Path, curated: tuple[Any, Any, Any]) -> None:
    out, dataset, report = curated
    manifest = read_manifest(out.uri)
    assert out.digest == manifest["digest"] and Path(out.uri).is_relative_to(workspace / "runs" / RUN_ID)
    assert (workspace / "data" / "synth" / "manifest.json").is_file()  # the synthetic source, made first
    pointer = json.loads(Path(dataset.path).read_text())
    assert pointer["uri"] == out.uri and pointer["records"] == manifest["records"] > 0
    assert dataset.metadata["digest"] == out.digest
    assert "| uri |" in Path(report.path).read_text()
    assert Path(dataset.path).stat().st_size < 4096  # a pointer, never the payload


def test_train_stage_returns_the_checkpoint_and_its_digest(curated: tuple[Any, Any, Any], trained: tuple) -> None:
    result, model, metrics = trained
    assert result.digest == checkpoint_digest(result.uri)
    info = json.loads((Path(result.uri) / "ufvideo.json").read_text())
    assert info["stage"] == 1 and info["data_digest"] == curated[0].digest
    assert model.metadata["digest"] == result.digest and model.metadata["data_digest"] == curated[0].digest
    assert json.loads(Path(model.path).read_text())["uri"] == result.uri
    assert metrics.metadata["global_step"] == 1.0


def test_evaluate_benchmark_logs_prefixed_metrics(trained: tuple, evaluated: tuple[Any, Any, Any]) -> None:
    result, metrics, report = evaluated
    doc = json.loads(Path(result.metrics_uri).read_text())
    assert doc["benchmark"] == "synthetic" and doc["num_samples"] == 2
    assert doc["checkpoint"]["digest"] == trained[0].digest == metrics.metadata["checkpoint_digest"]
    computed = {f"synthetic.{k}": v for k, v in doc["metrics"].items() if v is not None}
    assert computed and {k: metrics.metadata[k] for k in computed} == computed  # null metrics are not invented
    assert Path(report.path).read_text().strip()


def test_register_model_promotes_and_nests_under_the_pipeline_run(
    workspace: Path, trained: tuple, evaluated: tuple
) -> None:
    import mlflow

    report = artifact(dsl.Markdown, workspace, "register_md")
    common = {"checkpoint_uri": trained[0].uri, "metrics_uris": [evaluated[0].metrics_uri], "run_id": RUN_ID}
    out = named(
        register_model.component(), register_model.register_model(workspace=str(workspace), report=report, **common)
    )
    assert (out.name, out.version, out.champion) == ("components-test", "1", "1")
    assert "| promoted | True |" in Path(report.path).read_text()
    registered = json.loads((workspace / "runs" / RUN_ID / "register.json").read_text())
    assert registered["checkpoint"]["digest"] == trained[0].digest

    mlflow.set_tracking_uri(f"sqlite:///{workspace / 'mlflow.db'}")
    parents = mlflow.search_runs(search_all_experiments=True, filter_string=f"tags.`{KFP_RUN_TAG}` = '{RUN_ID}'")
    assert len(parents) == 1  # every step found the same pipeline run
    children = mlflow.search_runs(
        search_all_experiments=True, filter_string=f"tags.mlflow.parentRunId = '{parents.run_id[0]}'"
    )
    assert {"synth", "curate", "train_stage1", "evaluate"} <= set(children["tags.mlflow.runName"])


def test_register_model_fails_when_the_gate_rejects(workspace: Path, trained: tuple, evaluated: tuple) -> None:
    from ufvideo.registry import PromotionRejected

    policy = workspace / "strict.yaml"
    policy.write_text(yaml.safe_dump({"min_metrics": 1, "benchmarks": {"synthetic": {"qa_accuracy": {"min": 101}}}}))
    report = artifact(dsl.Markdown, workspace, "register_md2")
    with pytest.raises(PromotionRejected, match="not promoted"):
        register_model.register_model(
            checkpoint_uri=trained[0].uri,
            metrics_uris=[evaluated[0].metrics_uri],
            workspace=str(workspace),
            run_id=RUN_ID,
            report=report,
            model_name="components-strict",  # a fresh model: its first version is not yet champion
            policy=str(policy),
        )
