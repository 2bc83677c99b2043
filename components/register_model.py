"""`register_model`: register the checkpoint with every benchmark's metrics and apply the promotion gate."""

# No `from __future__ import annotations`: KFP reads the live annotations to type the component's interface.

from typing import NamedTuple

from kfp import dsl
from kfp.dsl import Markdown, Output

from components.image import IMAGE


@dsl.component(base_image=IMAGE, install_kfp_package=False)
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
    """A gate rejection fails the step (the reasons are in its log and on the version's tags)."""
    from ufvideo.pipeline import steps

    result = steps.register(checkpoint_uri, metrics_uris, workspace, run_id, model_name, policy, promote)
    promotion = result["promotion"] or {}
    rows = {"model": result["name"], "version": result["version"], "digest": result["checkpoint"]["digest"]}
    rows.update({"promoted": promotion.get("passed", False), "champion": promotion.get("champion_after") or ""})
    with open(report.path, "w", encoding="utf-8") as handle:
        handle.write(steps.markdown_table("Registered model", rows))
    return (result["name"], result["version"], str(promotion.get("champion_after") or ""))
