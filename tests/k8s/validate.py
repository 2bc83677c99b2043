"""Offline schema validation of rendered manifests: Kubernetes kinds and the vendored Kubeflow CRDs.

Kubernetes kinds use kubernetes-validate's bundled strict schemas for one pinned version. A Kubeflow kind is checked
against the complete upstream CRD schema of *every* supported release that serves it (`crds.py`), with unknown
fields rejected as the API server's strict field validation does. CEL rules (`x-kubernetes-validations`) are beyond
JSON Schema; the API-server tier (`test_apiserver.py`) checks those. Unlike the kubernetes-validate CLI, a kind with
no schema is an error here, never a silent pass.
"""

from __future__ import annotations

import copy
import functools
import json
import re
from collections.abc import Sequence
from importlib import resources
from typing import Any

import jsonschema
from referencing import Registry, Resource

from tests.k8s import crds

K8S_VERSION = "1.30.0"
DEFINITIONS_URI = "https://kubernetes.io/api/_definitions.json"


class SchemaMissing(LookupError):
    """No schema for an object's apiVersion/kind: validating it would prove nothing."""


def _k8s_schema_dir() -> Any:
    return resources.files("kubernetes_validate") / "kubernetes-json-schema" / f"v{K8S_VERSION}-local-strict"


@functools.cache
def _registry() -> Registry:
    definitions = json.loads((_k8s_schema_dir() / "_definitions.json").read_text())
    return Registry().with_resource(DEFINITIONS_URI, Resource.from_contents(definitions))


def tighten(schema: Any) -> Any:
    """Close every structural object: one with `properties`, or typed `object` with none (it admits no field,
    e.g. Trainer v2.2's empty `mlPolicy.torch`), unless it declares `additionalProperties` or preserves unknown fields.

    This is what strict field validation does on the API server, which would otherwise prune unknown fields
    silently: a typo would vanish instead of failing. kubernetes-validate's strict schemas do the same for
    built-in kinds.
    """
    if isinstance(schema, list):
        return [tighten(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {key: tighten(value) for key, value in schema.items()}
    structural = "properties" in out or out.get("type") == "object"
    closable = structural and "additionalProperties" not in out
    if closable and not out.get("x-kubernetes-preserve-unknown-fields"):
        out["additionalProperties"] = False
    return out


@functools.cache
def crd_validator(release: str, api_version: str, kind: str) -> jsonschema.Validator:
    """Draft 7 validator for one release's CRD schema; object metadata is checked as a Kubernetes ObjectMeta."""
    schema = crds.served(release).get((api_version, kind))
    if schema is None:
        raise SchemaMissing(f"{release} serves no {api_version} {kind}")
    schema = tighten(schema)
    object_meta = f"{DEFINITIONS_URI}#/$defs/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
    schema["properties"]["metadata"] = {"$ref": object_meta}
    schema["required"] = sorted({"apiVersion", "kind", "metadata", "spec"} | set(schema.get("required", [])))
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


def validators_for(obj: dict[str, Any], only: Sequence[str] = ()) -> dict[str, jsonschema.Validator]:
    """Label -> validator: one per supported release serving a Kubeflow kind (those in `only`, when given), else
    the Kubernetes schema."""
    api_version, kind = obj.get("apiVersion", ""), obj.get("kind", "")
    releases = [r for r in crds.releases_serving(api_version, kind) if not only or r in only]
    if releases:
        return {release: crd_validator(release, api_version, kind) for release in releases}
    if api_version.endswith(("kubeflow.org/v1", "kubeflow.org/v1alpha1")):
        raise SchemaMissing(f"no supported Kubeflow release serves {api_version} {kind}")
    return {f"k8s-{K8S_VERSION}": k8s_validator(api_version, kind)}


def errors(obj: dict[str, Any], only: Sequence[str] = ()) -> list[str]:
    """Every schema violation of `obj`, each as 'Kind/name [schema]: path: message'; empty when valid. A Kubeflow
    kind is checked against every supported release serving it, or against the releases in `only`."""
    name = f"{obj.get('kind')}/{(obj.get('metadata') or {}).get('name')}"
    found = []
    for label, validator in validators_for(obj, only).items():
        for err in validator.iter_errors(copy.deepcopy(obj)):
            where = ".".join(str(p) for p in err.absolute_path) or "<root>"
            found.append(f"{name} [{label}]: {where}: {err.message}")
    return found
