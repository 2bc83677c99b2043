"""Multi-GPU training launcher: torchrun in the pod for one node, a Kubeflow `TrainJob` (Trainer v2) or `PyTorchJob`
(training operator v1) for several, created and watched through the kubernetes client until it succeeds or fails.

Supported operators: Kubeflow Trainer v2.2.0 and v2.3.0 (`trainjob`), Trainer v2.1.0 (`trainjob-v2.1`: v2.2.0
replaced the TrainJob's `podTemplateOverrides` with `runtimePatches`) and training-operator v1.9.2 (`pytorchjob`).
The manifests match the committed examples in `k8s/jobs/`; the pipeline's GPU placement (resources, node selector,
tolerations, workspace PVC, `/dev/shm`) is forwarded so the training pods land where the pipeline's own pod would.
"""

from __future__ import annotations

import copy
import logging
import os
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any, Literal

log = logging.getLogger(__name__)

DEFAULT_IMAGE = "ghcr.io/ufvideo/train:0.1.0"
TRAIN_ENTRY = ["torchrun", "-m", "ufvideo.cli", "train"]
KINDS = {
    "trainjob": ("trainer.kubeflow.org", "v1alpha1", "trainjobs", "TrainJob"),
    "trainjob-v2.1": ("trainer.kubeflow.org", "v1alpha1", "trainjobs", "TrainJob"),
    "pytorchjob": ("kubeflow.org", "v1", "pytorchjobs", "PyTorchJob"),
}
JobKind = Literal["trainjob", "trainjob-v2.1", "pytorchjob"]
RUNTIME_JOB = "node"  # the replicatedJob of k8s/base/training/trainingruntime.yaml that TrainJob patches address
PATCH_MANAGER = "ufvideo.dev/launcher"  # owner of the TrainJob's runtimePatches entry (Trainer >= v2.2)
SUCCEEDED, FAILED = ("Succeeded", "Complete"), ("Failed",)
DEFAULT_ENV = {
    "MLFLOW_TRACKING_URI": "http://mlflow.ufvideo.svc.cluster.local:5000",
    "HF_HUB_OFFLINE": "1",
    "NCCL_DEBUG": "WARN",
    "UFVIDEO_CHECKPOINT_CACHE": "/workspace/cache/checkpoints",  # remote checkpoints land once on the shared PVC
    "HOME": "/tmp",
}
# Variables the pipeline pod forwards to the training pods, so they log into the same MLflow run tree.
FORWARDED_ENV = (
    "MLFLOW_TRACKING_URI",
    "MLFLOW_EXPERIMENT_NAME",
    "MLFLOW_RUN_ID",
    "AWS_ENDPOINT_URL",
    "UFVIDEO_GIT_COMMIT",
)


class TrainingJobFailed(RuntimeError):
    """The training job failed, timed out or could not be created; the message names the job and the reason."""


@dataclass
class LaunchSettings:
    """Where and how a stage trains. `num_nodes` > 1 hands the stage to the training operator (`kind`)."""

    num_nodes: int = 1
    gpus_per_node: int = 1
    kind: JobKind = "trainjob"
    namespace: str = ""  # empty: the pod's own namespace (service account mount), else "ufvideo"
    image: str = DEFAULT_IMAGE  # empty: DEFAULT_IMAGE
    runtime: str = "ufvideo-torch-deepspeed"
    accelerator: str = "nvidia.com/gpu"
    cpu: str = "32"
    memory_request: str = "512Gi"
    memory_limit: str = "1000Gi"
    shm_size: str = "64Gi"
    node_selector: dict[str, str] = field(default_factory=dict)
    tolerations: list[dict[str, Any]] = field(default_factory=list)
    pvc: str = "ufvideo-workspace"
    mount_path: str = "/workspace"
    service_account: str = "ufvideo-train"
    env: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_ENV))
    env_from_config_maps: list[str] = field(default_factory=lambda: ["ufvideo-storage"])
    env_from_secrets: list[str] = field(default_factory=lambda: ["s3-credentials"])
    timeout_s: float = 7 * 24 * 3600.0
    poll_s: float = 30.0

    def __post_init__(self) -> None:
        self.image = self.image or DEFAULT_IMAGE
        if self.num_nodes < 1 or self.gpus_per_node < 1:
            raise ValueError(f"launch: num_nodes {self.num_nodes} and gpus_per_node {self.gpus_per_node} must be >= 1")
        if self.kind not in KINDS:
            raise ValueError(f"launch.kind: {self.kind!r} is not one of {', '.join(KINDS)}")


def train_args(stage: int, profile: str, values: Mapping[str, Any], overrides: Sequence[str]) -> list[str]:
    """`ufvideo train` arguments after the entry point: stage and profile, then the run's paths and overrides."""
    args = ["--stage", str(stage), "--profile", profile]
    for key in ("data", "out", "init", "output_uri"):
        if values.get(key):
            args += [f"--{key.replace('_', '-')}", str(values[key])]
    return args + list(overrides)


def _resources(s: LaunchSettings) -> dict[str, Any]:
    gpus = s.gpus_per_node
    return {
        "requests": {"cpu": s.cpu, "memory": s.memory_request, s.accelerator: gpus},
        "limits": {"memory": s.memory_limit, s.accelerator: gpus},
    }


def _env(s: LaunchSettings, extra: Mapping[str, str] | None = None) -> list[dict[str, str]]:
    merged = {**s.env, **(extra or {})}
    return [{"name": key, "value": str(value)} for key, value in merged.items()]


def _labels(name: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": name, "app.kubernetes.io/component": "training"}


def _placement(s: LaunchSettings) -> dict[str, Any]:
    """The pod-spec fields a TrainJob overrides on its runtime: only what the settings change.

    The TrainingRuntime of the cluster's overlay already places the pods (node pool, taints, PVC, /dev/shm size), so
    a TrainJob repeats none of it unless the caller asks for something else: a node selector or tolerations, or a PVC
    or /dev/shm size other than the defaults (which are the base runtime's). Volumes are list-map keyed by name in
    both override APIs, so `workspace` and `dshm` here replace the runtime's volumes of those names.
    """
    defaults = {f.name: f.default for f in fields(LaunchSettings) if f.name in {"pvc", "shm_size"}}
    patch: dict[str, Any] = {}
    if s.node_selector:
        patch["nodeSelector"] = dict(s.node_selector)
    if s.tolerations:
        patch["tolerations"] = [dict(t) for t in s.tolerations]
    if (s.pvc, s.shm_size) != (defaults["pvc"], defaults["shm_size"]):
        patch["volumes"] = _volumes(s)[:2]
    return patch


def _runtime_override(kind: str, pod_spec: dict[str, Any]) -> dict[str, Any]:
    """The TrainJob spec field that carries `pod_spec` onto the runtime's pods, in the API of the Trainer release."""
    if kind == "trainjob-v2.1":
        return {"podTemplateOverrides": [{"targetJobs": [{"name": RUNTIME_JOB}], "spec": pod_spec}]}
    job = {"name": RUNTIME_JOB, "template": {"spec": {"template": {"spec": pod_spec}}}}
    runtime_spec = {"template": {"spec": {"replicatedJobs": [job]}}}
    return {"runtimePatches": [{"manager": PATCH_MANAGER, "trainingRuntimeSpec": runtime_spec}]}


def trainjob_manifest(
    name: str, args: Sequence[str], s: LaunchSettings, env: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """A Trainer v2 `TrainJob` on the `s.runtime` TrainingRuntime: image, size, command and env, plus a runtime
    override only where the settings ask for a placement the runtime does not have (`_placement`)."""
    spec: dict[str, Any] = {
        "runtimeRef": {"apiGroup": "trainer.kubeflow.org", "kind": "TrainingRuntime", "name": s.runtime},
        "trainer": {
            "image": s.image,
            "numNodes": s.num_nodes,
            "numProcPerNode": s.gpus_per_node,
            "command": list(TRAIN_ENTRY) + list(args[:4]),
            "args": list(args[4:]),
            "env": _env(s, env),
            "resourcesPerNode": _resources(s),
        },
    }
    placement = _placement(s)
    if placement:
        spec.update(_runtime_override(s.kind, placement))
    return {
        "apiVersion": "trainer.kubeflow.org/v1alpha1",
        "kind": "TrainJob",
        "metadata": {"name": name, "labels": _labels(name)},
        "spec": spec,
    }


def _volumes(s: LaunchSettings) -> list[dict[str, Any]]:
    return [
        {"name": "workspace", "persistentVolumeClaim": {"claimName": s.pvc}},
        {"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": s.shm_size}},
        {"name": "tmp", "emptyDir": {}},
    ]


def _pod_template(name: str, args: Sequence[str], s: LaunchSettings, env: Mapping[str, str] | None) -> dict[str, Any]:
    env_from = [{"configMapRef": {"name": n}} for n in s.env_from_config_maps]
    env_from += [{"secretRef": {"name": n}} for n in s.env_from_secrets]
    container = {
        "name": "pytorch",  # the operator finds the training container by this name
        "image": s.image,
        "workingDir": s.mount_path,
        "command": list(TRAIN_ENTRY) + list(args[:4]),
        "args": list(args[4:]),
        "envFrom": env_from,
        "env": _env(s, env),
        "resources": _resources(s),
        "volumeMounts": [
            {"name": "workspace", "mountPath": s.mount_path},
            {"name": "dshm", "mountPath": "/dev/shm"},
            {"name": "tmp", "mountPath": "/tmp"},
        ],
    }
    spec: dict[str, Any] = {
        "serviceAccountName": s.service_account,
        "automountServiceAccountToken": False,
        "securityContext": {"runAsNonRoot": True, "runAsUser": 1000, "runAsGroup": 1000, "fsGroup": 1000},
    }
    if s.node_selector:
        spec["nodeSelector"] = dict(s.node_selector)
    spec["tolerations"] = [dict(t) for t in s.tolerations]
    spec["containers"] = [container]
    spec["volumes"] = _volumes(s)
    return {"metadata": {"labels": {"app.kubernetes.io/name": name}}, "spec": spec}


def pytorchjob_manifest(
    name: str, args: Sequence[str], s: LaunchSettings, env: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """A training-operator v1 `PyTorchJob`: 1 master + (num_nodes - 1) workers sharing one pod template."""
    template = _pod_template(name, args, s, env)
    replicas = {"Master": {"replicas": 1, "restartPolicy": "OnFailure", "template": template}}
    if s.num_nodes > 1:
        worker = copy.deepcopy(template)  # equal, not shared: callers may edit one role's pods
        replicas["Worker"] = {"replicas": s.num_nodes - 1, "restartPolicy": "OnFailure", "template": worker}
    return {
        "apiVersion": "kubeflow.org/v1",
        "kind": "PyTorchJob",
        "metadata": {"name": name, "labels": _labels(name)},
        "spec": {
            "nprocPerNode": str(s.gpus_per_node),
            "runPolicy": {"cleanPodPolicy": "None", "backoffLimit": 3, "ttlSecondsAfterFinished": 86400},
            "pytorchReplicaSpecs": replicas,
        },
    }


def manifest(name: str, args: Sequence[str], s: LaunchSettings, env: Mapping[str, str] | None = None) -> dict:
    build = pytorchjob_manifest if s.kind == "pytorchjob" else trainjob_manifest
    return build(name, args, s, env)


def job_name(name: str) -> str:
    """A valid object name (DNS-1123, <= 63 chars) from a free-form one such as `ufvideo-<kfp run id>-stage2`."""
    clean = "".join(c if c.isalnum() else "-" for c in name.lower()).strip("-")
    return clean[:63].rstrip("-") or "ufvideo-train"


def namespace(s: LaunchSettings) -> str:
    if s.namespace:
        return s.namespace
    mounted = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"
    return open(mounted, encoding="utf-8").read().strip() if os.path.isfile(mounted) else "ufvideo"


def custom_objects_api() -> Any:
    """The kubernetes client's CustomObjectsApi, configured in-cluster (pipeline pod) or from kubeconfig."""
    from kubernetes import client, config

    try:
        config.load_incluster_config()
    except config.ConfigException:
        config.load_kube_config()
    return client.CustomObjectsApi()


def _conditions(obj: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [c for c in (obj.get("status") or {}).get("conditions") or [] if str(c.get("status")) == "True"]


def submit(body: dict[str, Any], ns: str, api: Any) -> None:
    """Create the job; an existing job of the same name (a retried pipeline step) is watched, not duplicated."""
    from kubernetes.client.exceptions import ApiException

    group, version, plural, kind = KINDS["trainjob" if body["kind"] == "TrainJob" else "pytorchjob"]
    name = body["metadata"]["name"]
    try:
        api.create_namespaced_custom_object(group, version, ns, plural, body)
        log.info("created %s %s/%s", kind, ns, name)
    except ApiException as err:
        if err.status == 409:
            log.info("%s %s/%s exists (retried step): watching it", kind, ns, name)
            return
        hints = {
            403: " (the pipeline's service account needs the ufvideo-pipeline Role, k8s/base/rbac)",
            404: f" (is the {kind} CRD installed? train_job_kind picks trainjob (Trainer >= v2.2), trainjob-v2.1 "
            "or pytorchjob (training-operator v1))",
        }
        hint = hints.get(err.status, "")
        raise TrainingJobFailed(f"cannot create {kind} {ns}/{name}: {err.status} {err.reason}{hint}") from err


def wait(
    kind: str,
    name: str,
    ns: str,
    api: Any,
    timeout_s: float,
    poll_s: float,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    """Poll until a terminal condition, logging every new condition; raise `TrainingJobFailed` on failure/timeout."""
    group, version, plural, kind_name = KINDS[kind]
    seen: set[tuple[str, str]] = set()
    deadline = time.monotonic() + timeout_s
    while True:
        obj = api.get_namespaced_custom_object(group, version, ns, plural, name)
        for cond in _conditions(obj):
            key = (cond.get("type", ""), cond.get("reason", ""))
            if key not in seen:
                seen.add(key)
                log.info("%s %s/%s: %s (%s) %s", kind_name, ns, name, *key, cond.get("message", ""))
            if cond.get("type") in FAILED:
                raise TrainingJobFailed(
                    f"{kind_name} {ns}/{name} failed: {cond.get('reason', 'unknown')}: {cond.get('message', '')}; "
                    f"see `kubectl -n {ns} describe {plural} {name}` and its pods' logs"
                )
            if cond.get("type") in SUCCEEDED:
                return obj
        if time.monotonic() >= deadline:
            states = ", ".join(t for t, _ in sorted(seen)) or "no conditions"
            raise TrainingJobFailed(f"{kind_name} {ns}/{name} did not finish within {timeout_s:.0f} s ({states})")
        sleep(poll_s)


def run_job(name: str, args: Sequence[str], s: LaunchSettings, api: Any = None) -> dict[str, Any]:
    """Create the stage's job with the forwarded environment and wait for it; returns the final object."""
    api = api or custom_objects_api()
    env = {key: os.environ[key] for key in FORWARDED_ENV if os.environ.get(key)}
    body = manifest(job_name(name), args, s, env)
    ns = namespace(s)
    submit(body, ns, api)
    return wait(s.kind, body["metadata"]["name"], ns, api, s.timeout_s, s.poll_s)


def torchrun_command(args: Sequence[str], nproc: int) -> list[str]:
    """One node, several devices: torchrun in this pod (standalone rendezvous)."""
    return ["torchrun", "--standalone", f"--nproc_per_node={nproc}", *TRAIN_ENTRY[1:], *args]


def train_distributed(cfg: Any, args: Sequence[str], s: LaunchSettings, name: str, api: Any = None) -> dict:
    """Run `cfg`'s stage on several devices, then describe the checkpoint it left (the same dict `train.run`
    returns, metrics aside: they are in MLflow under the step's run)."""
    from ufvideo.checkpoint import checkpoint_digest, read_info

    if s.num_nodes > 1:
        run_job(name, args, s, api)
    else:
        completed = subprocess.run(torchrun_command(args, s.gpus_per_node), check=False)
        if completed.returncode:
            raise TrainingJobFailed(f"torchrun ({s.gpus_per_node} processes) exited with {completed.returncode}")
    uri = cfg.output_uri or os.path.join(cfg.out, "final")
    info = read_info(uri)
    return {
        "checkpoint": {"uri": uri, "digest": checkpoint_digest(uri)},
        "metrics": {"global_step": float(info.get("global_step", 0))},
        "stage": cfg.stage,
        "data_digest": info.get("data_digest", ""),
    }
