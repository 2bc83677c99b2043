"""The environment every pipeline-step test runs the steps in: MLflow in a sqlite file under `root`, no inherited
parent run, a model name of its own and a lenient promotion policy (a few training steps cannot pass the tiny
gate; the gate's mechanism is what these tests check)."""

from __future__ import annotations

from pathlib import Path

import pytest


def pipeline_env(mp: pytest.MonkeyPatch, root: Path, model_name: str) -> None:
    mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{root / 'mlflow.db'}")
    mp.delenv("MLFLOW_RUN_ID", raising=False)
    mp.setenv("UFVIDEO_MODEL_NAME", model_name)
    lenient = root / "lenient.yaml"
    lenient.write_text("tolerance: 100.0\nmin_metrics: 1\nbenchmarks: {}\n")
    mp.setenv("UFVIDEO_PROMOTION_POLICY", str(lenient))
