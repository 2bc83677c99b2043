"""Model registration and promotion in the MLflow registry: lineage-tagged versions of checkpoints, a YAML promotion
gate, aliases `candidate` / `champion` / `previous-champion`, and the UFVideo pyfunc that serves a registered version.

`RegisterConfig` + `run` is the register step (`ufvideo.contract`); `commands` also prints the gate report.
Importing this package does not import mlflow (the CLI stays fast); `ufvideo.registry.pyfunc` does.
"""

from __future__ import annotations

from ufvideo.registry.commands import PromotionRejected, RegisterConfig, run
from ufvideo.registry.gate import Decision, Policy, evaluate, load_policy
from ufvideo.registry.versions import (
    CANDIDATE,
    CHAMPION,
    PREVIOUS,
    Promotion,
    Registration,
    RegistryError,
    load_metrics,
    promote,
    register,
    rollback,
)

__all__ = [
    "CANDIDATE",
    "CHAMPION",
    "PREVIOUS",
    "Decision",
    "Policy",
    "Promotion",
    "PromotionRejected",
    "RegisterConfig",
    "Registration",
    "RegistryError",
    "evaluate",
    "load_metrics",
    "load_policy",
    "promote",
    "register",
    "rollback",
    "run",
]
