"""The compiled pipeline: the committed YAML is what the code compiles to, it parses as KFP IR (PipelineSpec and
PlatformSpec protobufs reject unknown fields), and it carries the GPU scheduling, storage, secrets, retry and
caching settings the cluster relies on."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml
from google.protobuf import json_format
from kfp.kubernetes import kubernetes_executor_config_pb2
from kfp.pipeline_spec import pipeline_spec_pb2

from pipelines.__main__ import DEFAULT_YAML
from pipelines.ufvideo_pipeline import compile_pipeline, gated_benchmarks
from ufvideo.config import ConfigError

COMMITTED = DEFAULT_YAML


@pytest.fixture(scope="module")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], dict[str, Any], Path]:
    path = tmp_path_factory.mktemp("compiled") / "pipeline.yaml"
    compile_pipeline(str(path))  # the committed YAML uses the default images
    spec, platform = yaml.safe_load_all(path.read_text())
    return spec, platform, path


def executors(platform: dict[str, Any]) -> dict[str, Any]:
    return platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]


def tasks_by_component(spec: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every task in every DAG (root and sub-pipelines), keyed by the component it runs."""
    dags = [spec["root"]["dag"]] + [c["dag"] for c in spec["components"].values() if "dag" in c]
    return {t["componentRef"]["name"]: t for dag in dags for t in dag["tasks"].values()}


def test_committed_yaml_is_not_stale(compiled: tuple[dict, dict, Path]) -> None:
    assert COMMITTED.is_file(), "run `python -m pipelines compile` and commit pipelines/ufvideo_pipeline.yaml"
    # Compared as data: KFP's header comment prints dict defaults in hash order, which varies between processes.
    assert list(yaml.safe_load_all(compiled[2].read_text())) == list(yaml.safe_load_all(COMMITTED.read_text())), (
        "pipelines/ufvideo_pipeline.yaml is stale: run `python -m pipelines compile` and commit the result"
    )


def test_yaml_parses_as_kfp_ir(compiled: tuple[dict, dict, Path]) -> None:
    spec, platform, _ = compiled
    json_format.ParseDict(spec, pipeline_spec_pb2.PipelineSpec())
    json_format.ParseDict(platform, pipeline_spec_pb2.PlatformSpec())
    for config in executors(platform).values():
        json_format.ParseDict(config, kubernetes_executor_config_pb2.KubernetesExecutorConfig())
    with pytest.raises(json_format.ParseError):
        json_format.ParseDict({**spec, "bogus": 1}, pipeline_spec_pb2.PipelineSpec())


def test_dag_order_and_fan_out(compiled: tuple[dict, dict, Path]) -> None:
    spec = compiled[0]
    root = spec["root"]["dag"]["tasks"]
    assert set(root) == {"curate-data", "train-stage", "train-stage-2", "ufvideo-evaluate-all", "register-model"}
    assert root["train-stage-2"]["inputs"]["parameters"]["init_uri"]["taskOutputParameter"]["producerTask"] == (
        "train-stage"
    )
    assert "ufvideo-evaluate-all" in root["register-model"]["dependentTasks"]
    loop = spec["components"]["comp-for-loop-1"]
    parallel = [t for t in spec["components"]["comp-ufvideo-evaluate-all"]["dag"]["tasks"].values()]
    assert parallel[0]["parameterIterator"]["items"]["inputParameter"].endswith("benchmarks")
    assert "ufvideo-evaluate-one" in loop["dag"]["tasks"]
    assert spec["root"]["inputDefinitions"]["parameters"]["benchmarks"]["parameterType"] == "LIST"


def test_each_stage_takes_its_freeze_policy_as_a_pipeline_parameter(compiled: tuple[dict, dict, Path]) -> None:
    spec = compiled[0]
    params = spec["root"]["inputDefinitions"]["parameters"]
    assert params["stage2_freeze_policy"]["parameterType"] == "STRING"
    root = spec["root"]["dag"]["tasks"]
    for task, stage in (("train-stage", 1), ("train-stage-2", 2)):
        given = root[task]["inputs"]["parameters"]["freeze_policy"]["componentInputParameter"]
        assert given == f"stage{stage}_freeze_policy"


def test_gpu_scheduling_storage_and_secrets(compiled: tuple[dict, dict, Path]) -> None:
    spec, platform, _ = compiled
    params = spec["root"]["inputDefinitions"]["parameters"]
    assert params["gpu_node_selector"]["parameterType"] == "STRUCT"
    assert params["gpu_tolerations"]["defaultValue"] == [
        {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
    ]
    execs = executors(platform)
    for gpu_step in ("exec-train-stage", "exec-train-stage-2", "exec-evaluate-benchmark"):
        config = execs[gpu_step]
        assert config["nodeSelector"]["nodeSelectorJson"]["componentInputParameter"] == "gpu_node_selector"
        assert config["tolerations"][0]["tolerationJson"]["componentInputParameter"] == "gpu_tolerations"
        assert config["emptyDirMounts"] == [
            {"medium": "Memory", "mountPath": "/dev/shm", "sizeLimit": "64Gi", "volumeName": "dshm"}
        ]
        resources = spec["deploymentSpec"]["executors"][gpu_step]["container"]["resources"]["accelerator"]
        assert "accelerator_type" in resources["resourceType"] and "accelerator_count" in resources["resourceCount"]
    for name, config in execs.items():
        assert config["pvcMount"][0]["mountPath"] == "/workspace", name
        assert config["pvcMount"][0]["pvcNameParameter"]["componentInputParameter"] == "workspace_pvc", name
        secrets = {s["secretName"]: s for s in config["secretAsEnv"]}
        assert secrets["s3-credentials"]["optional"] is False and secrets["mlflow-tracking"]["optional"] is False
        assert [e["envVar"] for e in secrets["mlflow-tracking"]["keyToEnv"]] == ["MLFLOW_TRACKING_URI"], name
        assert secrets["mlflow-auth"]["optional"] is True, name
    judge = {s["secretName"] for s in execs["exec-evaluate-benchmark"]["secretAsEnv"]}
    assert "judge-credentials" in judge
    assert "nodeSelector" not in execs["exec-curate-data"]  # CPU steps stay off the GPU pool


def test_retry_and_caching(compiled: tuple[dict, dict, Path]) -> None:
    tasks = tasks_by_component(compiled[0])
    assert tasks["comp-train-stage"]["cachingOptions"] == {}  # disabled: training is never replayed from cache
    assert tasks["comp-train-stage-2"]["cachingOptions"] == {}
    assert "retryPolicy" not in tasks["comp-train-stage"]
    assert tasks["comp-evaluate-benchmark"]["cachingOptions"]["enableCache"] is True
    # evaluation's cache key holds the checkpoint *digest*, so equal weights hit and changed weights miss
    assert "checkpoint_digest" in tasks["comp-evaluate-benchmark"]["inputs"]["parameters"]
    for io_step in ("comp-curate-data", "comp-evaluate-benchmark", "comp-register-model"):
        assert tasks[io_step]["retryPolicy"]["maxRetryCount"] >= 2, io_step
    assert tasks["comp-register-model"]["cachingOptions"] == {}


def test_images_come_from_the_one_setting(compiled: tuple[dict, dict, Path]) -> None:
    from components import image

    containers = {k: v["container"] for k, v in compiled[0]["deploymentSpec"]["executors"].items()}
    assert containers["exec-curate-data"]["image"] == image.DEFAULT_IMAGE
    assert containers["exec-train-stage"]["image"] == image.DEFAULT_GPU_IMAGE
    train_inputs = tasks_by_component(compiled[0])["comp-train-stage"]["inputs"]["parameters"]
    assert train_inputs["job_image"]["runtimeValue"]["constant"] == image.DEFAULT_GPU_IMAGE
    assert all("pip install" not in " ".join(c["command"]) for c in containers.values())  # the image has ufvideo


def test_release_compile_requires_digest_pins(tmp_path: Path) -> None:
    from components import image

    with pytest.raises(ConfigError, match="pinned by digest"):
        compile_pipeline(str(tmp_path / "r.yaml"), release=True, image="ghcr.io/x/ufvideo:1.0")
    pinned = "ghcr.io/x/ufvideo@sha256:" + "0" * 64
    gpu = "ghcr.io/x/ufvideo-cuda@sha256:" + "1" * 64
    compile_pipeline(str(tmp_path / "r.yaml"), release=True, image=pinned, gpu_image=gpu)
    text = (tmp_path / "r.yaml").read_text()
    assert pinned in text and gpu in text and image.DEFAULT_IMAGE not in text
    assert "UFVIDEO_IMAGE" not in os.environ  # images are arguments of the compile, never the environment
    compile_pipeline(str(tmp_path / "default.yaml"))
    assert list(yaml.safe_load_all((tmp_path / "default.yaml").read_text())) == list(
        yaml.safe_load_all(COMMITTED.read_text())
    )
    assert not image.is_pinned("ghcr.io/x/ufvideo:1.0") and not image.is_pinned("x@sha256:abc")


def test_compiled_yaml_loads_as_a_component() -> None:
    from kfp import components

    loaded = components.load_component_from_file(str(COMMITTED))
    assert loaded.name == "ufvideo-train-eval-register"
    assert {"profile", "benchmarks", "accelerator_type", "workspace_pvc"} <= set(loaded.component_spec.inputs)


def test_default_benchmarks_are_the_release_gates(compiled: tuple[dict, dict, Path]) -> None:
    """The pipeline evaluates exactly what the release policy gates on, so a promotion never lacks a benchmark."""
    from ufvideo.registry.gate import load_policy

    default = compiled[0]["root"]["inputDefinitions"]["parameters"]["benchmarks"]["defaultValue"]
    assert default == gated_benchmarks() == list(load_policy(profile="ufvideo-7b").benchmarks)
    assert {"mvbench", "charades_sta", "mevis_valid_u", "revos"} <= set(default)
