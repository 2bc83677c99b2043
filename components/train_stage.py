"""`train_stage`: one training stage (1 or 2) in the pod, under torchrun, or as a multi-node training job."""

# No `from __future__ import annotations`: KFP reads the live annotations to type the component's interface.

from typing import NamedTuple

from kfp import dsl
from kfp.dsl import Metrics, Model, Output
from kfp.dsl.python_component import PythonComponent

from components.image import DEFAULT_GPU_IMAGE


def train_stage(
    stage: int,
    workspace: str,
    run_id: str,
    data_uri: str,
    data_digest: str,
    model: Output[Model],
    metrics: Output[Metrics],
    init_uri: str = "",
    profile: str = "tiny",
    overrides: list = [],  # noqa: B006 (KFP reads defaults from the signature; never mutated)
    checkpoint_store: str = "",
    num_nodes: int = 1,
    gpus_per_node: int = 1,
    accelerator: str = "nvidia.com/gpu",
    node_selector: dict = {},  # noqa: B006 (KFP reads defaults from the signature; never mutated)
    tolerations: list = [],  # noqa: B006
    pvc: str = "ufvideo-workspace",
    job_kind: str = "trainjob",
    job_image: str = "",
    freeze_policy: str = "",
) -> NamedTuple("TrainOutputs", uri=str, digest=str):
    """Train `stage` on the curated data; more than one node (or GPU) becomes torchrun or a TrainJob/PyTorchJob
    with this pod's GPU placement. The Model artifact points at the checkpoint and records its data digest.

    Args:
        stage: 1 (align) or 2 (full fine-tune from the stage-1 checkpoint).
        workspace: Shared filesystem root (the PVC mount); checkpoints go to `<workspace>/runs/<run_id>`.
        run_id: Pipeline run id: the output location and the MLflow parent run.
        data_uri: The curated directory (curate_data's `uri`).
        data_digest: Its manifest digest, recorded on the Model artifact (lineage).
        model: Output `Model` pointer (JSON: uri, digest, stage, data_digest) to the final checkpoint.
        metrics: Output `Metrics`: the stage's summary metrics (final losses, global step, runtime).
        init_uri: Checkpoint to start from; stage 2 needs the stage-1 checkpoint.
        profile: Shipped profile whose `train_stage<N>` section is the base config.
        overrides: `section.key=value` strings; those addressed to `train_stage<N>.` apply here.
        checkpoint_store: Optional local or s3:// prefix; the final checkpoint is copied to
            `<store>/<run_id>/stage<N>`.
        num_nodes: Nodes to train on; more than one launches a training job.
        gpus_per_node: GPUs per node; more than one runs torchrun in the pod (or per node of the job).
        accelerator: The accelerator resource name, e.g. nvidia.com/gpu.
        node_selector: The GPU pool's node selector for the job's pods.
        tolerations: The GPU pool's tolerations for the job's pods.
        pvc: The workspace PersistentVolumeClaim the job's pods mount.
        job_kind: "trainjob" (Kubeflow Trainer v2) or "pytorchjob" (training-operator v1).
        job_image: The image of the job's pods; the pipeline passes the image this step runs.
        freeze_policy: align, full or lora (empty: the profile's); lora gives an adapter checkpoint that names its
            base (the init checkpoint) and loads over it downstream.

    Returns:
        uri: The final checkpoint.
        digest: Its content digest.
    """
    from ufvideo.pipeline import launch, steps

    settings = launch.LaunchSettings(
        num_nodes,
        gpus_per_node,
        job_kind,
        accelerator=accelerator,
        pvc=pvc,
        node_selector=node_selector,
        tolerations=tolerations,
        image=job_image,
    )
    result = steps.train(
        stage, workspace, run_id, data_uri, init_uri, profile, overrides, checkpoint_store, settings, freeze_policy
    )
    ckpt = result["checkpoint"]
    steps.write_pointer(model.path, {**ckpt, "stage": stage, "data_digest": data_digest})
    model.metadata.update({**ckpt, "stage": stage, "data_digest": data_digest})
    for key, value in result["metrics"].items():
        metrics.log_metric(key, float(value))
    return (ckpt["uri"], ckpt["digest"])


def component(image: str = DEFAULT_GPU_IMAGE) -> PythonComponent:
    """`train_stage` as a KFP component running in `image` (the CUDA image)."""
    return dsl.component(train_stage, base_image=image, install_kfp_package=False)
