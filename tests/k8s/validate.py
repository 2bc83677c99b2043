"""Offline schema validation of rendered manifests: Kubernetes kinds and the vendored Kubeflow CRD schemas.

Kubernetes kinds use kubernetes-validate's bundled strict schemas for one pinned version; the Kubeflow kinds use the
CRD schemas in `schemas/` (see SOURCES.md), tightened the way the API server's pruning would surface mistakes.
Unlike the kubernetes-validate CLI, a kind with no schema is an error here, never a silent pass.
"""

from __future__ import annotations

import copy
import functools
import json
import re
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
from referencing import Registry, Resource

K8S_VERSION = "1.30.0"
SCHEMA_DIR = Path(__file__).parent / "schemas"
DEFINITIONS_URI = "https://kubernetes.io/api/_definitions.json"
CRD_SCHEMAS = {
    ("kubeflow.org/v1", "PyTorchJob"): "kubeflow.org_v1_pytorchjob.json",
    ("trainer.kubeflow.org/v1alpha1", "TrainingRuntime"): "trainer.kubeflow.org_v1alpha1_trainingruntime.json",
    ("trainer.kubeflow.org/v1alpha1", "TrainJob"): "trainer.kubeflow.org_v1alpha1_trainjob.json",
}


class SchemaMissing(LookupError):
    """No schema for an object's apiVersion/kind: validating it would prove nothing."""


def _k8s_schema_dir() -> Any:
    return resources.files("kubernetes_validate") / "kubernetes-json-schema" / f"v{K8S_VERSION}-local-strict"


@functools.cache
def _registry() -> Registry:
    definitions = json.loads((_k8s_schema_dir() / "_definitions.json").read_text())
    return Registry().with_resource(DEFINITIONS_URI, Resource.from_contents(definitions))


def tighten(schema: Any) -> Any:
    """Close every structural object (properties, no additionalProperties, no preserve-unknown-fields).

    The API server prunes unknown fields of a CRD object silently; a typo would vanish instead of failing, so the
    tests reject unknown fields outright, as kubernetes-validate's strict schemas do for built-in kinds.
    """
    if isinstance(schema, list):
        return [tighten(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {key: tighten(value) for key, value in schema.items()}
    closable = "properties" in out and "additionalProperties" not in out
    if closable and not out.get("x-kubernetes-preserve-unknown-fields"):
        out["additionalProperties"] = False
    return out


@functools.cache
def crd_validator(api_version: str, kind: str) -> jsonschema.Validator:
    """Draft 7 validator for a vendored CRD schema; object metadata is checked as a Kubernetes ObjectMeta."""
    name = CRD_SCHEMAS.get((api_version, kind))
    if name is None:
        raise SchemaMissing(f"no vendored CRD schema for {api_version} {kind}")
    schema = tighten(json.loads((SCHEMA_DIR / name).read_text()))
    object_meta = f"{DEFINITIONS_URI}#/$defs/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
    schema["properties"]["metadata"] = {"$ref": object_meta}
    schema["required"] = ["apiVersion", "kind", "metadata", "spec"]
    schema["properties"]["apiVersion"] = {"const": api_version}
    schema["properties"]["kind"] = {"const": kind}
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema, registry=_registry())


@functools.cache
def k8s_validator(api_version: str, kind: str) -> jsonschema.Validator:
    """The strict kubernetes-validate schema of a built-in kind, loaded once.

    Same files and dialect as `kubernetes_validate.validate`, which re-reads 1.2 MB of definitions on every call.
    """
    file_version = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    path = _k8s_schema_dir() / f"{kind.lower()}-{file_version}.json"
    if not path.is_file():
        raise SchemaMissing(f"no Kubernetes {K8S_VERSION} schema for {api_version} {kind}")
    return jsonschema.Draft202012Validator(json.loads(path.read_text()), registry=_registry())


def validator_for(obj: dict[str, Any]) -> jsonschema.Validator:
    api_version, kind = obj.get("apiVersion", ""), obj.get("kind", "")
    if (api_version, kind) in CRD_SCHEMAS:
        return crd_validator(api_version, kind)
    return k8s_validator(api_version, kind)


def errors(obj: dict[str, Any]) -> list[str]:
    """Every schema violation of `obj`, each as 'Kind/name: path: message'; empty when valid."""
    name = f"{obj.get('kind')}/{(obj.get('metadata') or {}).get('name')}"
    found = validator_for(obj).iter_errors(copy.deepcopy(obj))
    return [f"{name}: {'.'.join(str(p) for p in err.absolute_path) or '<root>'}: {err.message}" for err in found]
