"""Submit a compiled pipeline to a KFP endpoint: a new pipeline version, then a run of it in an experiment."""

from __future__ import annotations

import json
import time
from typing import Any

from ufvideo.config import ConfigError


def submit(
    host: str,
    package: str,
    experiment: str,
    pipeline_name: str,
    version: str | None,
    arguments: dict[str, Any],
    namespace: str | None = None,
    service_account: str | None = "ufvideo-pipeline",
    client: Any = None,
) -> dict[str, str]:
    """Upload `package` as a new version of `pipeline_name` (creating the pipeline the first time), then start a run
    of that version in `experiment`, as `service_account` (the RBAC in k8s/base/rbac lets it create training jobs).
    `client` is a `kfp.Client` (injected in tests)."""
    if client is None:
        import kfp

        client = kfp.Client(host=host, namespace=namespace)
    version = version or time.strftime("v%Y%m%d-%H%M%S")
    pipeline_id = client.get_pipeline_id(pipeline_name)
    if pipeline_id is None:
        pipeline = client.upload_pipeline(package, pipeline_name=pipeline_name)
        pipeline_id = pipeline.pipeline_id
    uploaded = client.upload_pipeline_version(package, pipeline_version_name=version, pipeline_id=pipeline_id)
    exp = client.create_experiment(experiment, namespace=namespace)
    run = client.run_pipeline(
        experiment_id=exp.experiment_id,
        job_name=f"{pipeline_name}-{version}",
        params=arguments,
        pipeline_id=pipeline_id,
        version_id=uploaded.pipeline_version_id,
        service_account=service_account or None,
    )
    return {"pipeline_id": pipeline_id, "version_id": uploaded.pipeline_version_id, "run_id": run.run_id}


def parse_arguments(items: list[str]) -> dict[str, Any]:
    """`--arg name=value` pairs; values are JSON when they parse (lists, dicts, numbers), else strings."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--arg {item!r} must look like name=value")
        try:
            out[key] = json.loads(raw)
        except json.JSONDecodeError:
            out[key] = raw
    return out
