"""Fixtures for the `k8s/` manifest tests: where the kustomizations live and what each one renders to."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.k8s.kustomize import Obj, build

K8S_ROOT = Path(__file__).resolve().parents[2] / "k8s"
OVERLAYS = ("local", "gke", "eks", "aks")
GPU_OVERLAYS = ("gke", "eks", "aks")


def secrets_copy(destination: Path) -> Path:
    """k8s/secrets with each *.env.example copied to *.env, as a user would before filling them in."""
    target = destination / "secrets"
    shutil.copytree(K8S_ROOT / "secrets", target, ignore=shutil.ignore_patterns("*.env"))
    for example in target.glob("*.env.example"):
        shutil.copy(example, example.with_suffix(""))
    return target


def entrypoints(secrets_dir: Path) -> dict[str, Path]:
    """The kustomizations a user applies: the four overlays, the example jobs and the secrets."""
    points = {f"overlays/{name}": K8S_ROOT / "overlays" / name for name in OVERLAYS}
    points["jobs"] = K8S_ROOT / "jobs"
    points["secrets"] = secrets_dir
    return points


@pytest.fixture(scope="session")
def secrets_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return secrets_copy(tmp_path_factory.mktemp("k8s"))


@pytest.fixture(scope="session")
def rendered(secrets_dir: Path) -> dict[str, list[Obj]]:
    """Entry point name -> rendered objects (`kubectl kustomize` where installed); once per session (each test may
    deep-copy before mutating)."""
    return {name: build(path) for name, path in entrypoints(secrets_dir).items()}
