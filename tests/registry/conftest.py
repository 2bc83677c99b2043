"""Registry tests use the S3-backed MLflow server from `tests/fixtures_registry.py` (imported here so the rest of
the suite does not start it)."""

from __future__ import annotations

from tests.fixtures_registry import mlflow_s3_server, mlflow_s3_tracking, registry_name

__all__ = ["mlflow_s3_server", "mlflow_s3_tracking", "registry_name"]
