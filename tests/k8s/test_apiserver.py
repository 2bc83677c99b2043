"""The Kubeflow objects meet a real Kubernetes API server, once per supported operator release.

For each release in `crds.SUPPORTED` a fresh etcd + apiextensions-apiserver gets that release's upstream CRDs; then
every custom resource `kubectl kustomize k8s/...` renders and every job the launcher builds is server-side applied
with `--dry-run=server --validate=strict` (unknown fields, types and CEL rules as a cluster checks them), and the
launcher's create -> watch paths run against it with `controller.py` writing job status as an operator would.
Skipped, with one line saying why, where etcd, kubectl or the server binary is missing.
"""

from __future__ import annotations

import copy
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.k8s import crds
from tests.k8s.apiserver import ApiServer, tool_dir, unavailable
from tests.k8s.controller import FAIL_MESSAGE, FAIL_REASON, Controller
from tests.k8s.kustomize import Obj
from ufvideo.pipeline import launch
from ufvideo.pipeline.launch import LaunchSettings, TrainingJobFailed

pytestmark = [
    pytest.mark.skipif(unavailable() is not None, reason=unavailable() or ""),
    pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning"),  # the loopback server's own cert
]

JOB_KIND = {  # the launcher's `kind` for each release
    "trainer-v2.1.0": "trainjob-v2.1",
    "trainer-v2.2.0": "trainjob",
    "trainer-v2.3.0": "trainjob",
    "training-operator-v1.9.2": "pytorchjob",
}
ARGS = ["--stage", "2", "--profile", "ufvideo-7b", "--data", "/workspace/runs/r1/curated", "--out", "/workspace/o"]
PLACEMENT = {
    "node_selector": {"cloud.google.com/gke-accelerator": "nvidia-h100-80gb"},
    "tolerations": [
        {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"},
        {"key": "pool", "operator": "Equal", "value": "a100", "effect": "NoSchedule"},
    ],
    "pvc": "team-workspace",
    "shm_size": "16Gi",
}


@pytest.fixture(scope="module")
def binary(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The server binary, unpacked once for all releases."""
    path = tmp_path_factory.mktemp("crd-apiserver") / "crd-apiserver"
    with path.open("wb") as out:
        subprocess.run(["xz", "-dc", str(tool_dir() / "crd-apiserver.xz")], stdout=out, check=True, timeout=120)
    path.chmod(0o755)
    return path


@pytest.fixture(scope="module", params=crds.SUPPORTED)
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, binary: Path
) -> Iterator[tuple[str, ApiServer]]:
    release = request.param
    api = ApiServer(tmp_path_factory.mktemp(release), binary).start()
    try:
        api.install(release)
        yield release, api
    finally:
        api.stop()


def _served(release: str, objects: list[Obj]) -> list[Obj]:
    return [o for o in objects if release in crds.releases_serving(o["apiVersion"], o["kind"])]


def _assert_accepted(api: ApiServer, objects: list[Obj]) -> None:
    for server_side, done in ((True, "serverside-applied (server dry run)"), (False, "created (server dry run)")):
        out = api.dry_run(objects, server_side=server_side)
        assert out.returncode == 0, out.stderr
        assert out.stdout.count(done) == len(objects), out.stdout


def _rejections(api: ApiServer, obj: Obj) -> str:
    """The server's complaints about `obj` in both apply modes (empty when both accept it)."""
    return "".join(out.stderr for side in (True, False) if (out := api.dry_run([obj], server_side=side)).returncode)


def _cluster_scoped(runtime: Obj) -> Obj:
    """The same runtime as a ClusterTrainingRuntime (what a platform team would share across namespaces)."""
    body = copy.deepcopy(runtime)
    body["kind"] = "ClusterTrainingRuntime"
    body["metadata"].pop("namespace", None)
    return body


def test_rendered_custom_resources_are_accepted(server: tuple[str, ApiServer], rendered: dict[str, list[Obj]]) -> None:
    release, api = server
    for entrypoint, objects in rendered.items():
        served = _served(release, objects)
        if release in crds.TRAINER_VERSIONS and entrypoint.startswith("overlays/"):
            runtimes = [o for o in served if o["kind"] == "TrainingRuntime"]
            assert len(runtimes) == 1, entrypoint
            served.append(_cluster_scoped(runtimes[0]))
        if served:
            _assert_accepted(api, served)
    applied = {(o["kind"], e) for e, objs in rendered.items() for o in _served(release, objs)}
    expected = {"PyTorchJob"} if release in crds.OPERATOR_VERSIONS else {"TrainingRuntime", "TrainJob"}
    assert {kind for kind, _ in applied} == expected


def _mutated(release: str, rendered: dict[str, list[Obj]]) -> tuple[Obj, str]:
    """A rendered object with an undeclared field, and the field path the server must name."""
    if release in crds.OPERATOR_VERSIONS:
        job = copy.deepcopy(next(o for o in rendered["jobs"] if o["kind"] == "PyTorchJob"))
        job["spec"]["pytorchReplicaSpecs"]["Worker"]["replica"] = 3
        return job, ".spec.pytorchReplicaSpecs.Worker.replica"
    job = copy.deepcopy(next(o for o in rendered["jobs"] if o["kind"] == "TrainJob"))
    job["spec"]["trainer"]["numProcsPerNode"] = 8
    return job, ".spec.trainer.numProcsPerNode"


def test_the_server_rejects_undeclared_fields(server: tuple[str, ApiServer], rendered: dict[str, list[Obj]]) -> None:
    release, api = server
    bad, field = _mutated(release, rendered)
    complaints = _rejections(api, bad)
    assert f"{field}: field not declared in schema" in complaints, complaints  # server-side apply
    assert f'unknown field "{field[1:]}"' in complaints, complaints  # plain apply
    if release in crds.TRAINER_VERSIONS:
        # The runtime's old process count: accepted by v2.1.0, removed (and rejected) from v2.2.0 on.
        runtime = copy.deepcopy(next(o for o in rendered["overlays/gke"] if o["kind"] == "TrainingRuntime"))
        runtime["spec"]["mlPolicy"]["torch"]["numProcPerNode"] = 8
        complaints = _rejections(api, runtime)
        assert (complaints == "") == (release == "trainer-v2.1.0"), complaints
        cel = copy.deepcopy(runtime)
        cel["spec"]["mlPolicy"]["torch"] = {}
        cel["spec"]["mlPolicy"]["mpi"] = {}
        out = api.dry_run([cel])  # a CEL rule (x-kubernetes-validations), which offline JSON Schema cannot check
        assert out.returncode != 0 and "Only one of the policy can be configured" in out.stderr, out.stderr


def launcher_objects(kind: str) -> list[dict[str, Any]]:
    """Every shape the launcher builds for `kind`: 1, 2 and 4 nodes, without and with the pipeline's placement."""
    built = []
    for nodes in (1, 2, 4):
        for placement in ({}, PLACEMENT):
            settings = LaunchSettings(num_nodes=nodes, gpus_per_node=8, kind=kind, **placement)  # type: ignore[arg-type]
            name = f"ufvideo-n{nodes}{'-placed' if placement else ''}"
            built.append(launch.manifest(name, ARGS, settings, {"MLFLOW_RUN_ID": "abc"}))
    return built


def test_every_launcher_object_is_accepted(server: tuple[str, ApiServer]) -> None:
    release, api = server
    objects = launcher_objects(JOB_KIND[release])
    if release in crds.TRAINER_VERSIONS:  # the placed ones carry the release's override field
        overrides = [o for o in objects if {"runtimePatches", "podTemplateOverrides"} & set(o["spec"])]
        assert len(overrides) == 3
    _assert_accepted(api, objects)


def test_launcher_create_watch_paths(server: tuple[str, ApiServer], monkeypatch: pytest.MonkeyPatch) -> None:
    from kubernetes.config import kube_config

    release, api = server
    kind = JOB_KIND[release]
    # KUBECONFIG as a user would set it; the client read the variable when it was imported, so also where it keeps it.
    monkeypatch.setenv("KUBECONFIG", str(api.kubeconfig))
    monkeypatch.setattr(kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", str(api.kubeconfig))
    monkeypatch.setenv("MLFLOW_RUN_ID", "parent-run")
    settings = LaunchSettings(num_nodes=2, gpus_per_node=8, kind=kind, namespace="ml", timeout_s=30, poll_s=0.1)
    with Controller(str(api.kubeconfig), kind, "ml") as controller:
        done = launch.run_job("stage2-ok", ARGS, settings)  # the real client, from KUBECONFIG
        assert {c["type"] for c in done["status"]["conditions"]} & set(launch.SUCCEEDED)
        env = (
            done["spec"]["pytorchReplicaSpecs"]["Master"]["template"]["spec"]["containers"][0]["env"]
            if (kind == "pytorchjob")
            else done["spec"]["trainer"]["env"]
        )
        assert {"name": "MLFLOW_RUN_ID", "value": "parent-run"} in env
        again = launch.run_job("stage2-ok", ARGS, settings)  # 409: a retried step watches the job it made
        assert again["metadata"]["uid"] == done["metadata"]["uid"]
        with pytest.raises(TrainingJobFailed, match=re.escape(f"failed: {FAIL_REASON}: {FAIL_MESSAGE}")):
            launch.run_job("stage2-fail", ARGS, settings)
        short = LaunchSettings(num_nodes=2, kind=kind, namespace="ml", timeout_s=1.5, poll_s=0.1)
        with pytest.raises(TrainingJobFailed, match=r"did not finish within 2 s \(Created"):
            launch.run_job("stage2-hang", ARGS, short)
    assert controller.errors == []
    assert controller.handled == ["stage2-ok", "stage2-fail", "stage2-hang"]
    missing = "pytorchjob" if kind != "pytorchjob" else "trainjob"
    with pytest.raises(TrainingJobFailed, match="404 Not Found.*CRD installed"):
        launch.run_job("stage2-x", ARGS, LaunchSettings(num_nodes=2, kind=missing, namespace="ml"))  # type: ignore[arg-type]
