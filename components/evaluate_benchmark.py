"""`evaluate_benchmark`: one benchmark on one checkpoint; metrics as a `Metrics` artifact plus the Markdown report."""

# No `from __future__ import annotations`: KFP reads the live annotations to type the component's interface.

from typing import NamedTuple

from kfp import dsl
from kfp.dsl import Markdown, Metrics, Output

from components.image import GPU_IMAGE


@dsl.component(base_image=GPU_IMAGE, install_kfp_package=False)
def evaluate_benchmark(
    benchmark: str,
    checkpoint_uri: str,
    checkpoint_digest: str,
    workspace: str,
    run_id: str,
    metrics: Output[Metrics],
    report: Output[Markdown],
    data_root: str = "",
    profile: str = "tiny",
    max_samples: int = 0,
    overrides: list = [],  # noqa: B006 (KFP reads defaults from the signature; never mutated)
) -> NamedTuple("EvalOutputs", metrics_uri=str):
    """`checkpoint_digest` is an input so the step's cache key is (benchmark, checkpoint content, settings)."""
    from ufvideo.pipeline import steps

    result = steps.evaluate(benchmark, checkpoint_uri, workspace, run_id, data_root, profile, max_samples, overrides)
    for key, value in result["metrics"].items():
        metrics.log_metric(f"{benchmark}.{key}", float(value))
    metrics.metadata.update({"uri": result["uri"], "checkpoint_digest": checkpoint_digest})
    text = steps.read_report(result["report_md"]) or steps.markdown_table(benchmark, result["metrics"])
    with open(report.path, "w", encoding="utf-8") as handle:
        handle.write(text)
    return (result["uri"],)
