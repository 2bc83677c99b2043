"""An MLflow server whose artifact root is a bucket on the moto S3 server, for the registry tests.

Client-side artifact access (`--default-artifact-root s3://...` + `--no-serve-artifacts`), as in production:
model files go straight from the client to S3 and the tracking server only stores metadata, so the tests exercise
the same path a registered version is loaded through (`models:/NAME@champion` downloads from S3 directly).
The clients find moto through `MLFLOW_S3_ENDPOINT_URL` (MLflow) and `AWS_ENDPOINT_URL` (boto3, set by `moto_server`).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from tests.fixtures_servers import running_mlflow_server

__all__ = ["mlflow_s3_server", "mlflow_s3_tracking", "registry_name"]


@pytest.fixture(scope="session")
def mlflow_s3_server(moto_server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """`mlflow server` on sqlite with artifacts in a fresh moto bucket; yields (tracking URI, artifact root)."""
    import boto3

    bucket = f"mlflow-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=moto_server, region_name="us-east-1").create_bucket(Bucket=bucket)
    artifact_root = f"s3://{bucket}/artifacts"
    root = tmp_path_factory.mktemp("mlflow_s3")
    env = {"MLFLOW_S3_ENDPOINT_URL": moto_server}
    with running_mlflow_server(root, artifact_root, "mlflow server (S3 artifacts)", env) as uri:
        yield uri, artifact_root


@pytest.fixture
def mlflow_s3_tracking(
    mlflow_s3_server: tuple[str, str],
    mlflow_isolated: None,
    moto_server: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path_factory: pytest.TempPathFactory,
) -> str:
    """Point this test at the S3-backed server, with a private checkpoint cache; yields the artifact root."""
    uri, artifact_root = mlflow_s3_server
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("MLFLOW_S3_ENDPOINT_URL", moto_server)
    monkeypatch.setenv("UFVIDEO_CHECKPOINT_CACHE", str(tmp_path_factory.mktemp("ckpt_cache")))
    monkeypatch.setenv("UFVIDEO_GIT_COMMIT", "0123456789abcdef0123456789abcdef01234567")
    monkeypatch.delenv("UFVIDEO_MODEL_NAME", raising=False)
    return artifact_root


@pytest.fixture
def registry_name() -> str:
    """A model name of its own per test: the server lives for the whole session."""
    return f"ufvideo-test-{uuid.uuid4().hex[:8]}"
