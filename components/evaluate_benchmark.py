"""`evaluate_benchmark`: one benchmark on one checkpoint; metrics as a `Metrics` artifact plus the Markdown report."""

# No `from __future__ import annotations`: KFP reads the live annotations to type the component's interface.

from typing import NamedTuple

from kfp import dsl
from kfp.dsl import Markdown, Metrics, Output
from kfp.dsl.python_component import PythonComponent

from components.image import DEFAULT_GPU_IMAGE


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
    """Evaluate `checkpoint_uri` on `benchmark` into `<workspace>/runs/<run_id>/eval/<benchmark>`.

    Args:
        benchmark: Benchmark name (`ufvideo.eval.benchmarks.TABLE`), e.g. synthetic, mvbench.
        checkpoint_uri: Checkpoint directory or s3:// prefix.
        checkpoint_digest: The checkpoint's content digest; an input only so the step's cache key is (benchmark,
            checkpoint content, settings).
        workspace: Shared filesystem root (the PVC mount).
        run_id: Pipeline run id: outputs go under `<workspace>/runs/<run_id>` and MLflow runs nest under it.
        metrics: Output `Metrics`, each computed metric as `<benchmark>.<metric>` (metrics not computed are left out).
        report: Output Markdown: the evaluation's report, or a metrics table when it wrote none.
        data_root: Benchmark data root; empty means `<workspace>/data`.
        profile: Shipped profile whose `eval` section is the base config.
        max_samples: Evaluate only the first N samples; 0 means all.
        overrides: `section.key=value` strings; those addressed to `eval.` apply here.

    Returns:
        metrics_uri: The written metrics.json.
    """
    from ufvideo.pipeline import steps

    result = steps.evaluate(benchmark, checkpoint_uri, workspace, run_id, data_root, profile, max_samples, overrides)
    for key, value in result["metrics"].items():
        metrics.log_metric(f"{benchmark}.{key}", float(value))
    metrics.metadata.update({"uri": result["uri"], "checkpoint_digest": checkpoint_digest})
    text = steps.read_report(result["report_md"]) or steps.markdown_table(benchmark, result["metrics"])
    with open(report.path, "w", encoding="utf-8") as handle:
        handle.write(text)
    return (result["uri"],)


def component(image: str = DEFAULT_GPU_IMAGE) -> PythonComponent:
    """`evaluate_benchmark` as a KFP component running in `image` (the CUDA image)."""
    return dsl.component(evaluate_benchmark, base_image=image, install_kfp_package=False)
