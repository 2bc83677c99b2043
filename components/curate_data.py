"""`curate_data`: the curated dataset (optionally preceded by the synthetic set) as a `Dataset` pointer."""

# No `from __future__ import annotations`: KFP reads the live annotations to type the component's interface.

from typing import NamedTuple

from kfp import dsl
from kfp.dsl import Dataset, Markdown, Output

from components.image import IMAGE


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def curate_data(
    workspace: str,
    run_id: str,
    dataset: Output[Dataset],
    report: Output[Markdown],
    profile: str = "tiny",
    synth_videos: int = 0,
    overrides: list = [],  # noqa: B006 (KFP reads defaults from the signature; never mutated)
) -> NamedTuple("CurateOutputs", uri=str, digest=str):
    """Curate the profile's mixture into the workspace; the outputs carry its location and manifest digest."""
    from ufvideo.pipeline import steps

    result = steps.curate(workspace, run_id, profile, synth_videos, overrides)
    steps.write_pointer(dataset.path, result)
    dataset.metadata.update({"uri": result["uri"], "digest": result["digest"], "records": result["records"]})
    with open(report.path, "w", encoding="utf-8") as handle:
        handle.write(steps.markdown_table("Curated dataset", {"uri": result["uri"], **result["by_task"]}))
    return (result["uri"], result["digest"])
