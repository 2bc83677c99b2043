"""The upstream Kubeflow CRDs of every operator version the project supports, vendored complete (xz-compressed).

One directory per release under `crds/` (see its SOURCES.md). The offline validator reads their
`openAPIV3Schema`s; the API-server tier installs them as they are.
"""

from __future__ import annotations

import functools
import lzma
from pathlib import Path
from typing import Any

import yaml

CRD_DIR = Path(__file__).parent / "crds"
TRAINER_VERSIONS = ("trainer-v2.1.0", "trainer-v2.2.0", "trainer-v2.3.0")
OPERATOR_VERSIONS = ("training-operator-v1.9.2",)
SUPPORTED = TRAINER_VERSIONS + OPERATOR_VERSIONS


def files(version: str) -> list[Path]:
    """The compressed CRD files of one supported release, in a stable order."""
    if version not in SUPPORTED:
        raise ValueError(f"{version!r} is not a supported operator release ({', '.join(SUPPORTED)})")
    return sorted((CRD_DIR / version).glob("*.yaml.xz"))


@functools.cache
def _documents(path: Path) -> tuple[dict[str, Any], ...]:
    docs = yaml.load_all(lzma.decompress(path.read_bytes()), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    return tuple(doc for doc in docs if doc)


def definitions(version: str) -> list[dict[str, Any]]:
    """Every CustomResourceDefinition of one release."""
    return [doc for path in files(version) for doc in _documents(path)]


@functools.cache
def served(version: str) -> dict[tuple[str, str], dict[str, Any]]:
    """(apiVersion, kind) -> openAPIV3Schema for every served version of every CRD in the release (shared: copy
    before changing it)."""
    out = {}
    for crd in definitions(version):
        group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
        for entry in crd["spec"]["versions"]:
            if entry.get("served"):
                out[(f"{group}/{entry['name']}", kind)] = entry["schema"]["openAPIV3Schema"]
    return out


def releases_serving(api_version: str, kind: str) -> list[str]:
    """The supported releases whose CRDs serve `api_version` `kind` (empty: no supported operator knows it)."""
    return [version for version in SUPPORTED if (api_version, kind) in served(version)]


def write_plain(version: str, destination: Path) -> list[Path]:
    """Decompress one release's CRD files into `destination` (for kubectl); returns the written paths."""
    destination.mkdir(parents=True, exist_ok=True)
    written = []
    for path in files(version):
        target = destination / path.name.removesuffix(".xz")
        target.write_bytes(lzma.decompress(path.read_bytes()))
        written.append(target)
    return written
