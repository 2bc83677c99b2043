"""`curate_data`: the curated dataset (optionally preceded by the synthetic set) as a `Dataset` pointer."""

# No `from __future__ import annotations`: KFP reads the live annotations to type the component's interface.

from typing import NamedTuple

from kfp import dsl
from kfp.dsl import Dataset, Markdown, Output
from kfp.dsl.python_component import PythonComponent

from components.image import DEFAULT_IMAGE


def curate_data(
    workspace: str,
    run_id: str,
    dataset: Output[Dataset],
    report: Output[Markdown],
    profile: str = "tiny",
    synth_videos: int = 0,
    overrides: list = [],  # noqa: B006 (KFP reads defaults from the signature; never mutated)
) -> NamedTuple("CurateOutputs", uri=str, digest=str):
    """Curate the profile's mixture into the workspace; the outputs carry its location and manifest digest.

    Args:
        workspace: Shared filesystem root (the PVC mount); relative source paths resolve in it.
        run_id: Pipeline run id: outputs go to `<workspace>/runs/<run_id>` and MLflow runs nest under it.
        dataset: Output pointer (JSON: uri, digest, records) to the curated directory.
        report: Output Markdown table of the curated records per task.
        profile: Shipped profile whose `synth` and `curate` sections are the base configs.
        synth_videos: When > 0, first generate this many synthetic videos into `<workspace>/data/synth`.
        overrides: `section.key=value` strings; those addressed to `synth.` and `curate.` apply here.

    Returns:
        uri: The curated directory.
        digest: Its manifest digest (the cache key of the steps downstream).
    """
    from ufvideo.pipeline import steps

    result = steps.curate(workspace, run_id, profile, synth_videos, overrides)
    steps.write_pointer(dataset.path, result)
    dataset.metadata.update({"uri": result["uri"], "digest": result["digest"], "records": result["records"]})
    with open(report.path, "w", encoding="utf-8") as handle:
        handle.write(steps.markdown_table("Curated dataset", {"uri": result["uri"], **result["by_task"]}))
    return (result["uri"], result["digest"])


def component(image: str = DEFAULT_IMAGE) -> PythonComponent:
    """`curate_data` as a KFP component running in `image`."""
    return dsl.component(curate_data, base_image=image, install_kfp_package=False)
