"""`k8s/` renders, every object validates offline against its schema, and the platform's invariants hold.

Schemas: Kubernetes kinds against kubernetes-validate's strict 1.30 schemas, Kubeflow kinds against the complete
upstream CRDs of every supported release (`crds/`). Invariants: MLflow hardening, no credentials in git, GPU
placement of the training runtime, least-privilege RBAC, and every name a workload refers to exists in what gets
applied.
"""

from __future__ import annotations

import base64
import copy
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from tests.k8s import crds
from tests.k8s.conftest import GPU_OVERLAYS, K8S_ROOT, OVERLAYS
from tests.k8s.kustomize import Obj
from tests.k8s.validate import K8S_VERSION, SchemaMissing, errors

PLACEHOLDER = "REPLACE_ME"
GPU_POOL = {
    "gke": {"cloud.google.com/gke-accelerator": "nvidia-h100-80gb"},
    "eks": {"node.kubernetes.io/instance-type": "p5.48xlarge"},
    "aks": {"accelerator": "nvidia"},
}
RWX_CLASS = {"gke": "standard-rwx", "eks": "efs-sc", "aks": "azurefile-csi-premium"}
PIPELINE_PERMISSIONS = {
    *(("trainer.kubeflow.org", "trainjobs", verb) for verb in ("create", "get", "list", "watch", "delete")),
    *(("kubeflow.org", "pytorchjobs", verb) for verb in ("create", "get", "list", "watch", "delete")),
    *(("", resource, verb) for resource in ("pods", "events") for verb in ("get", "list", "watch")),
    ("", "pods/log", "get"),
    *(("events.k8s.io", "events", verb) for verb in ("get", "list", "watch")),
}


def find(objects: list[Obj], kind: str, name: str) -> Obj:
    matches = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(matches) == 1, f"expected one {kind}/{name}, found {len(matches)}"
    return matches[0]


def runtime_pod(objects: list[Obj]) -> dict[str, Any]:
    runtime = find(objects, "TrainingRuntime", "ufvideo-torch-deepspeed")
    (job,) = runtime["spec"]["template"]["spec"]["replicatedJobs"]
    assert job["name"] == "node", "the overlays' JSON patches address replicatedJobs/0 as `node`"
    return job["template"]["spec"]["template"]["spec"]


def pod_specs(obj: Obj) -> Iterator[dict[str, Any]]:
    """Every pod spec inside an object, whatever its kind (Deployment, Job, PyTorchJob, TrainingRuntime...)."""
    if isinstance(obj, dict):
        if "containers" in obj and isinstance(obj["containers"], list):
            yield obj
        for value in obj.values():
            yield from pod_specs(value)
    elif isinstance(obj, list):
        for item in obj:
            yield from pod_specs(item)


def strings(node: Any, path: str = "") -> Iterator[tuple[str, str]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield from strings(value, f"{path}.{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from strings(value, f"{path}[{index}]")
    elif isinstance(node, str):
        yield path, node


def test_every_entrypoint_renders_into_the_namespace(rendered: dict[str, list[Obj]]) -> None:
    for name, objects in rendered.items():
        assert objects, name
        for obj in objects:
            where = f"{name}: {obj['kind']}/{obj['metadata']['name']}"
            if obj["kind"] == "Namespace":
                assert obj["metadata"]["name"] == "ufvideo", where
            else:
                assert obj["metadata"].get("namespace") == "ufvideo", where
            assert obj["metadata"]["labels"]["app.kubernetes.io/part-of"] == "ufvideo", where


def test_every_object_validates_against_its_schema(rendered: dict[str, list[Obj]]) -> None:
    problems = [problem for objects in rendered.values() for obj in objects for problem in errors(obj)]
    assert problems == []
    kinds = {(o["apiVersion"], o["kind"]) for objects in rendered.values() for o in objects}
    exercised = {release for kind in kinds for release in crds.releases_serving(*kind)}
    assert exercised == set(crds.SUPPORTED), "every supported release checks some rendered object"


def test_builtin_kinds_also_pass_kubernetes_validate_itself(rendered: dict[str, list[Obj]]) -> None:
    # Our cached validator reads the same files; this pins that it agrees with the library's own entry point.
    builtin = {(o["apiVersion"], o["kind"]): o for objs in rendered.values() for o in objs}
    for key, obj in builtin.items():
        if not crds.releases_serving(*key):
            assert kubernetes_validate.validate(obj, K8S_VERSION, strict=True) == "1.30", key


def test_a_kind_without_schema_is_an_error_not_a_pass() -> None:
    with pytest.raises(SchemaMissing):
        errors({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}})
    with pytest.raises(SchemaMissing):  # kubernetes-validate's CLI would only WARN and exit 0 here
        errors({"apiVersion": "kubeflow.org/v1", "kind": "MPIJob", "metadata": {"name": "m"}})


def test_bad_replicas_type_fails(rendered: dict[str, list[Obj]]) -> None:
    deployment = copy.deepcopy(find(rendered["overlays/gke"], "Deployment", "mlflow"))
    deployment["spec"]["replicas"] = "one"
    assert any("spec.replicas: 'one' is not of type" in e for e in errors(deployment))
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, K8S_VERSION, strict=True)


def test_unknown_field_fails_only_with_strict(rendered: dict[str, list[Obj]]) -> None:
    deployment = copy.deepcopy(find(rendered["overlays/gke"], "Deployment", "mlflow"))
    deployment["spec"]["template"]["spec"]["containers"][0]["livenesProbe"] = {}
    assert any("'livenesProbe' was unexpected" in e for e in errors(deployment))
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, K8S_VERSION, strict=True)
    kubernetes_validate.validate(deployment, K8S_VERSION, strict=False)  # why the tests pin strict


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda spec: spec["Worker"].update(replicas="one"), "Worker.replicas: 'one' is not of type 'integer'"),
        (lambda spec: spec["Master"].update(replica=1), "'replica' was unexpected"),
        (lambda spec: spec["Worker"]["template"]["spec"].update(tolerations={}), "is not of type 'array'"),
        (lambda spec: spec["Worker"]["template"]["spec"]["containers"][0].pop("name"), "'name' is a required"),
        (lambda spec: spec["Master"].update(template={"spec": {}}), "'containers' is a required property"),
    ],
)
def test_bad_pytorchjob_replica_spec_fails(rendered: dict[str, list[Obj]], mutate: Any, message: str) -> None:
    job = copy.deepcopy(find(rendered["jobs"], "PyTorchJob", "ufvideo-stage2"))
    assert errors(job) == []
    mutate(job["spec"]["pytorchReplicaSpecs"])
    assert any(message in e for e in errors(job)), errors(job)


def test_bad_trainer_v2_objects_fail(rendered: dict[str, list[Obj]]) -> None:
    runtime = copy.deepcopy(find(rendered["overlays/gke"], "TrainingRuntime", "ufvideo-torch-deepspeed"))
    runtime["spec"]["mlPolicy"]["torch"]["nprocPerNode"] = 8  # the field is numProcPerNode
    runtime["spec"]["template"]["spec"]["replicatedJobs"][0]["replicas"] = "2"
    found = errors(runtime)
    assert any("'nprocPerNode' was unexpected" in e for e in found) and any("'2' is not of type" in e for e in found)
    job = copy.deepcopy(find(rendered["jobs"], "TrainJob", "ufvideo-stage2"))
    del job["spec"]["runtimeRef"]["name"]
    job["spec"]["trainer"]["resourcesPerNode"]["limit"] = {}
    found = errors(job)
    assert any("'name' is a required property" in e for e in found)
    assert any("'limit' was unexpected" in e for e in found)


def test_torch_num_proc_per_node_is_a_v2_1_only_runtime_field(rendered: dict[str, list[Obj]]) -> None:
    # The runtime once set mlPolicy.torch.numProcPerNode; Trainer v2.2.0 removed the field and rejects it.
    runtime = copy.deepcopy(find(rendered["overlays/gke"], "TrainingRuntime", "ufvideo-torch-deepspeed"))
    runtime["spec"]["mlPolicy"]["torch"]["numProcPerNode"] = 8
    rejected = {e.split("[")[1].split("]")[0] for e in errors(runtime) if "'numProcPerNode' was unexpected" in e}
    assert rejected == {"trainer-v2.2.0", "trainer-v2.3.0"}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_mlflow_is_hardened(rendered: dict[str, list[Obj]], overlay: str) -> None:
    objects = rendered[f"overlays/{overlay}"]
    pod = find(objects, "Deployment", "mlflow")["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] != 0
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    assert "emptyDir" in {v["name"]: v for v in pod["volumes"]}[mounts["/tmp"]]
    for probe in ("readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"] == {"path": "/health", "port": "http"}, probe
    for kind in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(container["resources"][kind]), kind
    env = {e["name"]: e for e in container["env"]}
    assert env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"]["value"] == "false"
    assert env["MLFLOW_BACKEND_STORE_URI"]["valueFrom"]["secretKeyRef"]["name"] == "mlflow-backend-store"
    assert "--artifacts-destination=$(MLFLOW_ARTIFACTS_DESTINATION)" in container["args"]
    assert "--serve-artifacts" in container["args"]
    storage = find(objects, "ConfigMap", "ufvideo-storage")["data"]
    assert storage["MLFLOW_S3_ENDPOINT_URL"].startswith(("http://", "https://"))
    assert {"configMapRef": {"name": "ufvideo-storage"}} in container["envFrom"]


@pytest.mark.parametrize("entrypoint", [f"overlays/{o}" for o in OVERLAYS] + ["jobs"])
def test_every_pod_runs_as_non_root_with_resources(rendered: dict[str, list[Obj]], entrypoint: str) -> None:
    for obj in rendered[entrypoint]:
        for pod in pod_specs(obj):
            where = f"{entrypoint}: {obj['kind']}/{obj['metadata']['name']}"
            assert pod.get("securityContext", {}).get("runAsNonRoot") is True, where
            assert pod.get("automountServiceAccountToken") is False, where
            for container in pod["containers"]:
                assert "memory" in container["resources"]["limits"], f"{where} {container['name']}"
                assert "cpu" in container["resources"]["requests"], f"{where} {container['name']}"


def _credential_key(key: str) -> bool:
    return re.search(r"PASSWORD|SECRET|TOKEN|ACCESS_KEY|CREDENTIAL|STORE_URI", key.upper()) is not None


def test_secrets_hold_only_placeholders(rendered: dict[str, list[Obj]]) -> None:
    secrets = [o for objects in rendered.values() for o in objects if o["kind"] == "Secret"]
    names = {"postgres-credentials", "mlflow-backend-store", "s3-credentials"}
    names |= {"mlflow-tracking", "mlflow-auth", "judge-credentials"}  # read by the KFP pipeline's steps
    assert {s["metadata"]["name"] for s in secrets} == names
    assert all(o["kind"] != "Secret" for name, objs in rendered.items() if name != "secrets" for o in objs)
    for secret in secrets:
        assert "stringData" not in secret
        for key, value in secret["data"].items():
            plain = base64.b64decode(value).decode()
            if _credential_key(key) or key == "AWS_ACCESS_KEY_ID":
                assert PLACEHOLDER in plain, f"Secret {secret['metadata']['name']} key {key} is not a placeholder"


def test_no_plain_text_credentials_anywhere(rendered: dict[str, list[Obj]]) -> None:
    userinfo = re.compile(r"://[^/\s:@]+:([^@/\s]+)@")
    for name, objects in rendered.items():
        for obj in objects:
            if obj["kind"] == "Secret":
                continue
            where = f"{name}: {obj['kind']}/{obj['metadata']['name']}"
            for path, text in strings(obj):
                match = userinfo.search(text)
                assert match is None or match.group(1) == PLACEHOLDER, f"{where} {path}"
                assert not re.search(r"AKIA[0-9A-Z]{16}|-----BEGIN [A-Z ]*PRIVATE KEY", text), f"{where} {path}"
            for pod in pod_specs(obj):
                for container in pod["containers"]:
                    for env in container.get("env", []):
                        assert not (_credential_key(env["name"]) and "value" in env), f"{where} env {env['name']}"
            if obj["kind"] == "ConfigMap":
                assert not any(_credential_key(key) for key in obj["data"]), where


def test_repository_files_hold_no_credentials() -> None:
    assert "secrets/*.env" in (K8S_ROOT / ".gitignore").read_text().split()
    for path in K8S_ROOT.rglob("*"):
        if path.is_file() and path.suffix != ".env":  # *.env are the user's own, git-ignored
            text = path.read_text()
            assert not re.search(r"AKIA[0-9A-Z]{16}|-----BEGIN [A-Z ]*PRIVATE KEY", text), path
            for line in text.splitlines():
                key, sep, value = line.partition("=")
                if sep and _credential_key(key) and not key.lstrip().startswith("#"):
                    assert PLACEHOLDER in value, f"{path}: {line}"


@pytest.mark.parametrize("overlay", GPU_OVERLAYS)
def test_gpu_overlays_place_the_training_runtime_on_the_gpu_pool(rendered: dict[str, list[Obj]], overlay: str) -> None:
    pod = runtime_pod(rendered[f"overlays/{overlay}"])
    assert pod["nodeSelector"] == GPU_POOL[overlay]
    assert {"key": "nvidia.com/gpu", "operator": "Equal", "value": "present", "effect": "NoSchedule"} in pod[
        "tolerations"
    ]
    (container,) = pod["containers"]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 8
    assert container["image"].endswith("/ufvideo/train:0.1.0") and not container["image"].startswith("ghcr.io")
    pvc = find(rendered[f"overlays/{overlay}"], "PersistentVolumeClaim", "ufvideo-workspace")["spec"]
    assert pvc["storageClassName"] == RWX_CLASS[overlay] and pvc["accessModes"] == ["ReadWriteMany"]


def test_local_overlay_is_one_gpu_without_pool_placement(rendered: dict[str, list[Obj]]) -> None:
    objects = rendered["overlays/local"]
    runtime = find(objects, "TrainingRuntime", "ufvideo-torch-deepspeed")
    assert runtime["spec"]["mlPolicy"] == {"numNodes": 1, "torch": {}}
    pod = runtime_pod(objects)
    assert "nodeSelector" not in pod and "tolerations" not in pod
    assert pod["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert find(objects, "Deployment", "minio")["spec"]["template"]["spec"]["containers"][0]["image"]


@pytest.mark.parametrize("entrypoint", ["overlays/gke", "jobs"])
def test_training_pods_have_shm_gpus_torchrun_and_secrets(rendered: dict[str, list[Obj]], entrypoint: str) -> None:
    training = [o for o in rendered[entrypoint] if o["kind"] in {"TrainingRuntime", "PyTorchJob"}]
    assert training
    for pod in (p for obj in training for p in pod_specs(obj)):
        volumes = {v["name"]: v for v in pod["volumes"]}
        (container,) = pod["containers"]
        mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
        assert volumes[mounts["/dev/shm"]]["emptyDir"]["medium"] == "Memory"
        assert volumes[mounts["/workspace"]]["persistentVolumeClaim"]["claimName"] == "ufvideo-workspace"
        assert container["command"][:4] == ["torchrun", "-m", "ufvideo.cli", "train"]
        assert container["command"][4:6] == ["--stage", "2"]
        assert {"secretRef": {"name": "s3-credentials"}} in container["envFrom"]
        resources = container["resources"]
        assert resources["requests"]["nvidia.com/gpu"] == resources["limits"]["nvidia.com/gpu"] > 0
        assert pod["serviceAccountName"] == "ufvideo-train"
    job = find(rendered["jobs"], "PyTorchJob", "ufvideo-stage2")
    for replica in job["spec"]["pytorchReplicaSpecs"].values():
        assert replica["template"]["spec"]["containers"][0]["name"] == "pytorch", "the operator requires this name"
        assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in replica["template"]["spec"][
            "tolerations"
        ]


def test_rbac_grants_exactly_what_the_pipeline_needs(rendered: dict[str, list[Obj]]) -> None:
    for name, objects in rendered.items():
        assert not [o for o in objects if o["kind"] in {"ClusterRole", "ClusterRoleBinding"}], name
        roles = [o for o in objects if o["kind"] == "Role"]
        for role in roles:
            granted = {
                (group, resource, verb)
                for rule in role["rules"]
                for group in rule["apiGroups"]
                for resource in rule["resources"]
                for verb in rule["verbs"]
            }
            assert granted == PIPELINE_PERMISSIONS, f"{name}: {granted ^ PIPELINE_PERMISSIONS}"
    objects = rendered["overlays/gke"]
    binding = find(objects, "RoleBinding", "ufvideo-pipeline")
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "ufvideo-pipeline"}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "ufvideo-pipeline", "namespace": "ufvideo"}]
    find(objects, "ServiceAccount", "ufvideo-pipeline")
    assert find(objects, "ServiceAccount", "ufvideo-train")["automountServiceAccountToken"] is False


def _references(pod: dict[str, Any]) -> Iterator[tuple[str, str, str | None]]:
    """(kind, name, key) of every Secret, ConfigMap, PVC and ServiceAccount a pod spec refers to."""
    if "serviceAccountName" in pod:
        yield "ServiceAccount", pod["serviceAccountName"], None
    for volume in pod.get("volumes", []):
        if "persistentVolumeClaim" in volume:
            yield "PersistentVolumeClaim", volume["persistentVolumeClaim"]["claimName"], None
    for container in pod["containers"]:
        for source in container.get("envFrom", []):
            for ref_kind, kind in (("secretRef", "Secret"), ("configMapRef", "ConfigMap")):
                if ref_kind in source:
                    yield kind, source[ref_kind]["name"], None
        for env in container.get("env", []):
            for ref_kind, kind in (("secretKeyRef", "Secret"), ("configMapKeyRef", "ConfigMap")):
                ref = env.get("valueFrom", {}).get(ref_kind)
                if ref:
                    yield kind, ref["name"], ref["key"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_reference_resolves(rendered: dict[str, list[Obj]], overlay: str) -> None:
    applied = rendered[f"overlays/{overlay}"] + rendered["secrets"] + rendered["jobs"]
    available: dict[tuple[str, str], set[str]] = {}
    for obj in applied:
        keys = set(obj.get("data", {})) if obj["kind"] in {"Secret", "ConfigMap"} else set()
        available[(obj["kind"], obj["metadata"]["name"])] = keys
    templates = {
        claim["metadata"]["name"] for obj in applied for claim in obj.get("spec", {}).get("volumeClaimTemplates", [])
    }
    for obj in applied:
        for pod in pod_specs(obj):
            for kind, name, key in _references(pod):
                where = f"{overlay}: {obj['kind']}/{obj['metadata']['name']} -> {kind}/{name}"
                if kind == "PersistentVolumeClaim" and name in templates:
                    continue
                assert (kind, name) in available, where
                assert key is None or key in available[(kind, name)], f"{where} key {key}"
    runtime_ref = find(rendered["jobs"], "TrainJob", "ufvideo-stage2")["spec"]["runtimeRef"]
    assert (runtime_ref["kind"], runtime_ref["name"]) in available


def test_mlflow_accepts_the_host_the_training_pods_use(rendered: dict[str, list[Obj]]) -> None:
    # MLflow 3 rejects unknown Host headers (DNS-rebinding protection); the in-cluster name must be allowed.
    from mlflow.server.security_utils import is_allowed_host_header

    objects = rendered["overlays/gke"]
    server = find(objects, "Deployment", "mlflow")["spec"]["template"]["spec"]["containers"][0]
    allowed = next(e["value"] for e in server["env"] if e["name"] == "MLFLOW_SERVER_ALLOWED_HOSTS").split(",")
    clients = [c for obj in objects + rendered["jobs"] for pod in pod_specs(obj) for c in pod["containers"]]
    uris = {e["value"] for c in clients for e in c.get("env", []) if e["name"] == "MLFLOW_TRACKING_URI"}
    assert uris == {"http://mlflow.ufvideo.svc.cluster.local:5000"}
    assert is_allowed_host_header(allowed, "mlflow.ufvideo.svc.cluster.local:5000")
    assert is_allowed_host_header(allowed, "mlflow:5000")
    assert not is_allowed_host_header(allowed, "evil.example.com")


def _used_files(directory: Path) -> set[Path]:
    spec = yaml.safe_load((directory / "kustomization.yaml").read_text())
    used = {directory / "kustomization.yaml"}
    for entry in spec.get("resources", []):
        path = (directory / entry).resolve()
        used |= _used_files(path) if path.is_dir() else {path}
    used |= {(directory / patch["path"]).resolve() for patch in spec.get("patches", [])}
    return used


def test_every_manifest_file_is_reachable_from_an_entrypoint() -> None:
    # A YAML file that no kustomization lists is never rendered, so never validated.
    roots = [K8S_ROOT / "overlays" / name for name in OVERLAYS] + [K8S_ROOT / "jobs", K8S_ROOT / "secrets"]
    used = set().union(*(_used_files(root) for root in roots))
    on_disk = {path.resolve() for path in K8S_ROOT.rglob("*.yaml")}
    assert on_disk - used == set()


def test_every_secret_key_the_pipeline_reads_is_generated(rendered: dict[str, list[Obj]]) -> None:
    from pipelines import ufvideo_pipeline as pipeline

    generated = {o["metadata"]["name"]: set(o["data"]) for o in rendered["secrets"] if o["kind"] == "Secret"}
    wanted = [pipeline.S3_SECRET, pipeline.MLFLOW_SECRET, pipeline.MLFLOW_AUTH_SECRET, pipeline.JUDGE_SECRET]
    for name, keys in wanted:
        assert name in generated, f"the pipeline reads Secret {name!r}, which k8s/secrets does not generate"
        assert set(keys) <= generated[name], f"Secret {name!r} lacks {sorted(set(keys) - generated[name])}"
