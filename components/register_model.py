"""`register_model`: register the checkpoint with every benchmark's metrics and apply the promotion gate."""

# No `from __future__ import annotations`: KFP reads the live annotations to type the component's interface.

from typing import NamedTuple

from kfp import dsl
from kfp.dsl import Markdown, Output
from kfp.dsl.python_component import PythonComponent

from components.image import DEFAULT_IMAGE


def register_model(
    checkpoint_uri: str,
    metrics_uris: list,
    workspace: str,
    run_id: str,
    report: Output[Markdown],
    model_name: str = "",
    policy: str = "",
    promote: bool = True,
) -> NamedTuple("RegisterOutputs", name=str, version=str, champion=str):
    """Register the checkpoint (idempotent) and gate it; a gate rejection fails the step (reasons in its log and
    on the version's tags).

    Args:
        checkpoint_uri: Checkpoint directory or s3:// prefix to register.
        metrics_uris: The evaluations' metrics.json files, one per benchmark.
        workspace: Shared filesystem root (the PVC mount); the result goes to `<workspace>/runs/<run_id>`.
        run_id: Pipeline run id: the MLflow run and the model version are tagged with it.
        report: Output Markdown table: model, version, digest, promotion decision, champion.
        model_name: Registered model name; empty means `$UFVIDEO_MODEL_NAME` or "ufvideo".
        policy: Promotion policy YAML; empty means the one shipped for the checkpoint's profile.
        promote: Run the promotion gate on the new version.

    Returns:
        name: The registered model.
        version: The version the checkpoint has.
        champion: The champion version after the gate ("" when none).
    """
    from ufvideo.pipeline import steps

    result = steps.register(checkpoint_uri, metrics_uris, workspace, run_id, model_name, policy, promote)
    promotion = result["promotion"] or {}
    rows = {"model": result["name"], "version": result["version"], "digest": result["checkpoint"]["digest"]}
    rows.update({"promoted": promotion.get("passed", False), "champion": promotion.get("champion_after") or ""})
    with open(report.path, "w", encoding="utf-8") as handle:
        handle.write(steps.markdown_table("Registered model", rows))
    return (result["name"], result["version"], str(promotion.get("champion_after") or ""))


def component(image: str = DEFAULT_IMAGE) -> PythonComponent:
    """`register_model` as a KFP component running in `image`."""
    return dsl.component(register_model, base_image=image, install_kfp_package=False)
