"""Shared fixtures: hermetic environment for every test (no hub, local MLflow, no analytics)."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("DVC_NO_ANALYTICS", "1")
os.environ.setdefault("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")

# Live loopback servers (moto S3, mlflow server), started once per session by the tests that ask for them.
pytest_plugins = ["tests.fixtures_servers"]
