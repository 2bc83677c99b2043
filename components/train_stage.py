"""`train_stage`: one training stage (1 or 2) in the pod, under torchrun, or as a multi-node training job."""

# No `from __future__ import annotations`: KFP reads the live annotations to type the component's interface.

from typing import NamedTuple

from kfp import dsl
from kfp.dsl import Metrics, Model, Output

from components.image import GPU_IMAGE


@dsl.component(base_image=GPU_IMAGE, install_kfp_package=False)
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
    job_image: str = "",  # the pipeline passes the image this step runs (components/image.py)
) -> NamedTuple("TrainOutputs", uri=str, digest=str):
    """Train `stage` on the curated data; more than one node becomes a TrainJob/PyTorchJob with this pod's GPU
    placement. The Model artifact points at the checkpoint and records the data digest it was trained on."""
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
    result = steps.train(stage, workspace, run_id, data_uri, init_uri, profile, overrides, checkpoint_store, settings)
    ckpt = result["checkpoint"]
    steps.write_pointer(model.path, {**ckpt, "stage": stage, "data_digest": data_digest})
    model.metadata.update({**ckpt, "stage": stage, "data_digest": data_digest})
    for key, value in result["metrics"].items():
        metrics.log_metric(key, float(value))
    return (ckpt["uri"], ckpt["digest"])
