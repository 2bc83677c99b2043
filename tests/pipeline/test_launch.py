"""The multi-node launcher: the TrainJob / PyTorchJob it builds (schema-valid, equal to the committed examples in
`k8s/jobs/`, carrying the pipeline's GPU placement) and how it submits, watches and fails, against a fake API."""

from __future__ import annotations

import copy
import logging
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes.client.exceptions import ApiException

from tests.k8s.validate import errors
from ufvideo.checkpoint import checkpoint_digest, write_info
from ufvideo.pipeline import launch
from ufvideo.pipeline.launch import LaunchSettings, TrainingJobFailed

JOBS = Path(__file__).resolve().parents[2] / "k8s" / "jobs"
EXAMPLE_ARGS = ["--stage", "2", "--profile", "ufvideo-7b"]
RUN_ARGS = EXAMPLE_ARGS + ["--data", "/workspace/runs/r1/curated", "--out", "/workspace/runs/r1/train_stage2"]
GPU_TAINT = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}


def example(name: str) -> dict[str, Any]:
    return yaml.safe_load((JOBS / name).read_text())


def example_settings(kind: str) -> LaunchSettings:
    """The settings the committed examples were written for: 4 nodes x 8 GPUs, the GPU taint tolerated."""
    env = dict(launch.DEFAULT_ENV)
    env = {"MLFLOW_TRACKING_URI": env.pop("MLFLOW_TRACKING_URI"), "MLFLOW_EXPERIMENT_NAME": "ufvideo-stage2", **env}
    if kind == "trainjob":
        env = {"MLFLOW_EXPERIMENT_NAME": "ufvideo-stage2"}
    tolerations = [] if kind == "trainjob" else [GPU_TAINT]  # a TrainJob inherits the runtime's placement
    return LaunchSettings(num_nodes=4, gpus_per_node=8, kind=kind, tolerations=tolerations, env=env, namespace="ml")


@pytest.mark.parametrize("kind,file", [("trainjob", "trainjob-stage2.yaml"), ("pytorchjob", "pytorchjob-stage2.yaml")])
def test_manifest_matches_committed_example_and_validates(kind: str, file: str) -> None:
    built = launch.manifest("ufvideo-stage2", RUN_ARGS, example_settings(kind))
    assert errors(built) == []
    expected = example(file)
    if kind == "trainjob":
        assert built["spec"]["trainer"].pop("args") == RUN_ARGS[4:]
    else:
        for replica in built["spec"]["pytorchReplicaSpecs"].values():
            assert replica["template"]["spec"]["containers"][0].pop("args") == RUN_ARGS[4:]
    assert built == expected


def test_pytorchjob_forwards_gpu_placement_and_volumes() -> None:
    settings = LaunchSettings(
        num_nodes=2,
        gpus_per_node=4,
        kind="pytorchjob",
        accelerator="amd.com/gpu",
        node_selector={"cloud.google.com/gke-accelerator": "nvidia-h100-80gb"},
        tolerations=[GPU_TAINT, {"key": "pool", "operator": "Equal", "value": "a100", "effect": "NoSchedule"}],
        pvc="team-pvc",
        shm_size="16Gi",
        image="registry.example/ufvideo@sha256:" + "a" * 64,
    )
    body = launch.pytorchjob_manifest("ufvideo-x", RUN_ARGS, settings)
    assert errors(body) == []
    specs = body["spec"]["pytorchReplicaSpecs"]
    assert specs["Master"]["replicas"] == 1 and specs["Worker"]["replicas"] == 1
    assert body["spec"]["nprocPerNode"] == "4"
    pod = specs["Worker"]["template"]["spec"]
    assert pod["nodeSelector"] == {"cloud.google.com/gke-accelerator": "nvidia-h100-80gb"}
    assert pod["tolerations"][1]["value"] == "a100"
    container = pod["containers"][0]
    assert container["image"].endswith("a" * 64)
    assert container["resources"]["limits"]["amd.com/gpu"] == 4
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["workspace"]["persistentVolumeClaim"]["claimName"] == "team-pvc"
    assert volumes["dshm"]["emptyDir"] == {"medium": "Memory", "sizeLimit": "16Gi"}
    assert {"name": "dshm", "mountPath": "/dev/shm"} in container["volumeMounts"]


PLACED = {
    "node_selector": {"cloud.google.com/gke-accelerator": "nvidia-h100-80gb"},
    "tolerations": [GPU_TAINT],
    "pvc": "team-pvc",
    "shm_size": "16Gi",
}


@pytest.mark.parametrize(
    "kind,releases,path",
    [
        ("trainjob", ("trainer-v2.2.0", "trainer-v2.3.0"), ["runtimePatches", 0, "trainingRuntimeSpec", "template"]),
        ("trainjob-v2.1", ("trainer-v2.1.0",), ["podTemplateOverrides", 0]),
    ],
)
def test_trainjob_forwards_placement_in_its_release_api(kind: str, releases: tuple[str, ...], path: list) -> None:
    body = launch.trainjob_manifest("j", RUN_ARGS, LaunchSettings(num_nodes=2, kind=kind, **PLACED))  # type: ignore[arg-type]
    assert errors(body, only=releases) == []
    other = {"trainer-v2.1.0", "trainer-v2.2.0", "trainer-v2.3.0"} - set(releases)
    assert all(any(f"[{r}]" in e and "was unexpected" in e for e in errors(body)) for r in other)
    node = body["spec"]
    for key in path:
        node = node[key]
    if kind == "trainjob":
        assert node["spec"]["replicatedJobs"][0]["name"] == "node"
        pod = node["spec"]["replicatedJobs"][0]["template"]["spec"]["template"]["spec"]
    else:
        assert node["targetJobs"] == [{"name": "node"}]
        pod = node["spec"]
    assert pod["nodeSelector"] == PLACED["node_selector"] and pod["tolerations"] == [GPU_TAINT]
    assert pod["volumes"] == [
        {"name": "workspace", "persistentVolumeClaim": {"claimName": "team-pvc"}},
        {"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": "16Gi"}},
    ]
    plain = launch.trainjob_manifest("j", RUN_ARGS, LaunchSettings(num_nodes=2, kind=kind))  # type: ignore[arg-type]
    assert set(plain["spec"]) == {"runtimeRef", "trainer"} and errors(plain) == []  # portable across releases


def test_single_node_pytorchjob_has_no_workers_and_trainjob_counts_nodes() -> None:
    one = launch.pytorchjob_manifest("j", RUN_ARGS, LaunchSettings(num_nodes=1, gpus_per_node=8, kind="pytorchjob"))
    assert list(one["spec"]["pytorchReplicaSpecs"]) == ["Master"] and errors(one) == []
    job = launch.trainjob_manifest("j", RUN_ARGS, LaunchSettings(num_nodes=3, gpus_per_node=2))
    assert job["spec"]["trainer"]["numNodes"] == 3 and job["spec"]["trainer"]["numProcPerNode"] == 2
    assert job["spec"]["trainer"]["command"][:4] == launch.TRAIN_ENTRY


def test_forwarded_env_reaches_the_training_pods(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_RUN_ID", "parent123")
    api = FakeApi([{"type": "Complete", "status": "True"}])
    launch.run_job("Ufvideo_RUN/Stage2", RUN_ARGS, LaunchSettings(num_nodes=2, namespace="ml", poll_s=0), api)
    body = api.created[0]
    assert body["metadata"]["name"] == "ufvideo-run-stage2"
    env = {e["name"]: e["value"] for e in body["spec"]["trainer"]["env"]}
    assert env["MLFLOW_RUN_ID"] == "parent123"


def test_settings_and_names_are_checked() -> None:
    with pytest.raises(ValueError, match="num_nodes"):
        LaunchSettings(num_nodes=0)
    with pytest.raises(ValueError, match="launch.kind"):
        LaunchSettings(kind="mpijob")  # type: ignore[arg-type]
    assert LaunchSettings(image="").image == launch.DEFAULT_IMAGE
    assert len(launch.job_name("x" * 100)) == 63
    assert launch.torchrun_command(["--stage", "1"], 4) == [
        "torchrun", "--standalone", "--nproc_per_node=4", "-m", "ufvideo.cli", "train", "--stage", "1"
    ]  # fmt: skip


class FakeApi:
    """CustomObjectsApi stand-in: records creations, then serves the given condition lists one poll at a time."""

    def __init__(self, *polls: list[dict[str, str]], create_error: ApiException | None = None) -> None:
        self.polls = list(polls) or [[]]
        self.created: list[dict[str, Any]] = []
        self.gets = 0
        self.create_error = create_error

    def create_namespaced_custom_object(self, group: str, version: str, ns: str, plural: str, body: dict) -> dict:
        if self.create_error is not None:
            raise self.create_error
        self.created.append(copy.deepcopy(body))
        return body

    def get_namespaced_custom_object(self, group: str, version: str, ns: str, plural: str, name: str) -> dict:
        conditions = self.polls[min(self.gets, len(self.polls) - 1)]
        self.gets += 1
        return {"metadata": {"name": name}, "status": {"conditions": conditions}}


def test_wait_streams_conditions_until_success(caplog: pytest.LogCaptureFixture) -> None:
    created = {"type": "Created", "status": "True", "reason": "Created"}
    running = {"type": "Running", "status": "True", "reason": "Running"}
    api = FakeApi([created], [created, running], [created, running, {"type": "Succeeded", "status": "True"}])
    with caplog.at_level(logging.INFO, logger="ufvideo.pipeline.launch"):
        launch.wait("pytorchjob", "j", "ml", api, timeout_s=60, poll_s=0, sleep=lambda s: None)
    assert api.gets == 3
    logged = [r.getMessage() for r in caplog.records]
    assert sum("Running" in m for m in logged) == 1  # each condition is reported once, not on every poll


def test_wait_fails_with_the_reason_and_on_timeout() -> None:
    failed = {"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded", "message": "pod oom"}
    with pytest.raises(TrainingJobFailed, match="TrainJob ml/j failed: BackoffLimitExceeded: pod oom"):
        launch.wait("trainjob", "j", "ml", FakeApi([failed]), timeout_s=60, poll_s=0, sleep=lambda s: None)
    not_true = [{"type": "Complete", "status": "False"}]
    with pytest.raises(TrainingJobFailed, match="did not finish within 0 s"):
        launch.wait("trainjob", "j", "ml", FakeApi(not_true), timeout_s=0, poll_s=0, sleep=lambda s: None)


def test_submit_watches_an_existing_job_and_explains_forbidden() -> None:
    body = launch.trainjob_manifest("j", RUN_ARGS, LaunchSettings())
    launch.submit(body, "ml", FakeApi(create_error=ApiException(status=409, reason="AlreadyExists")))
    with pytest.raises(TrainingJobFailed, match="403 Forbidden.*ufvideo-pipeline Role"):
        launch.submit(body, "ml", FakeApi(create_error=ApiException(status=403, reason="Forbidden")))
    with pytest.raises(TrainingJobFailed, match="is the TrainJob CRD installed"):
        launch.submit(body, "ml", FakeApi(create_error=ApiException(status=404, reason="Not Found")))


def test_train_distributed_describes_the_checkpoint_the_job_left(tmp_path: Path) -> None:
    final = tmp_path / "out" / "final"
    final.mkdir(parents=True)
    (final / "model.safetensors").write_bytes(b"weights")
    write_info(final, profile="tiny", stage=2, data_digest="d" * 64, global_step=7)

    class Cfg:
        out, output_uri, stage = str(tmp_path / "out"), None, 2

    api = FakeApi([{"type": "Complete", "status": "True"}])
    result = launch.train_distributed(Cfg(), RUN_ARGS, LaunchSettings(num_nodes=2, namespace="ml", poll_s=0), "n", api)
    assert result["checkpoint"] == {"uri": str(final), "digest": checkpoint_digest(final)}
    assert result["metrics"] == {"global_step": 7.0} and result["data_digest"] == "d" * 64
    failing = FakeApi([{"type": "Failed", "status": "True", "reason": "Evicted"}])
    with pytest.raises(TrainingJobFailed, match="Evicted"):
        launch.train_distributed(Cfg(), RUN_ARGS, LaunchSettings(num_nodes=2, namespace="ml", poll_s=0), "n", failing)
