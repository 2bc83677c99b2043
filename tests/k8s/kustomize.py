"""Rendering `k8s/` for the tests: `kubectl kustomize` where kubectl exists, else a small, strict renderer.

The fallback renderer supports exactly the kustomization features that `k8s/` uses and raises `UnsupportedError` on
anything else, so it cannot silently drift from kustomize; `test_kustomize.py` compares it with `kubectl kustomize`
where kubectl exists.
"""

from __future__ import annotations

import base64
import copy
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

API_VERSION = "kustomize.config.k8s.io/v1beta1"
KUSTOMIZATION_KEYS = frozenset(
    {"apiVersion", "kind", "namespace", "labels", "resources", "patches", "images"}
    | {"secretGenerator", "generatorOptions"}
)
# Kinds that live outside namespaces; the namespace transformer leaves them alone.
CLUSTER_SCOPED = frozenset(
    {
        "Namespace",
        "ClusterRole",
        "ClusterRoleBinding",
        "CustomResourceDefinition",
        "PersistentVolume",
        "StorageClass",
        "PriorityClass",
        "ClusterTrainingRuntime",
    }
)

Obj = dict[str, Any]


class UnsupportedError(ValueError):
    """A kustomization uses a feature this renderer does not implement (or uses one in an unsupported way)."""


class RenderError(ValueError):
    """A kustomization is wrong: a missing file, a duplicate object, a patch that matches nothing."""


def object_id(obj: Obj) -> tuple[str, str, str, str]:
    """(apiVersion, kind, namespace, name): how kustomize tells objects apart."""
    meta = obj.get("metadata") or {}
    return (obj.get("apiVersion", ""), obj.get("kind", ""), meta.get("namespace", ""), meta.get("name", ""))


def build(directory: str | Path) -> list[Obj]:
    """What `kubectl apply -k directory` would send: kubectl's own kustomize where installed, else `render`."""
    if shutil.which("kubectl") is None:
        return render(directory)
    return kubectl_kustomize(directory)


def kubectl_kustomize(directory: str | Path) -> list[Obj]:
    """`kubectl kustomize directory`, parsed; a failure raises `RenderError` with kubectl's message."""
    out = subprocess.run(["kubectl", "kustomize", str(directory)], capture_output=True, text=True, timeout=120)
    if out.returncode:
        raise RenderError(f"kubectl kustomize {directory}: {out.stderr.strip()}")
    return [doc for doc in yaml.safe_load_all(out.stdout) if doc]


def render(directory: str | Path) -> list[Obj]:
    """Build the kustomization in `directory` into a list of objects (order: resources, then generated)."""
    directory = Path(directory)
    spec = _load_kustomization(directory)
    objects: list[Obj] = []
    for entry in spec.get("resources") or []:
        objects.extend(_load_resource(directory, entry))
    objects.extend(_generate_secrets(directory, spec))
    _check_unique(objects, directory)
    for patch in spec.get("patches") or []:
        _apply_patch(directory, patch, objects)
    if "namespace" in spec:
        _set_namespace(objects, spec["namespace"], directory)
    for group in spec.get("labels") or []:
        _add_labels(objects, group, directory)
    for image in spec.get("images") or []:
        _set_image(objects, image, directory)
    return objects


def _load_kustomization(directory: Path) -> Obj:
    path = directory / "kustomization.yaml"
    if not path.is_file():
        raise RenderError(f"{directory}: no kustomization.yaml")
    spec = yaml.safe_load(path.read_text()) or {}
    unknown = sorted(set(spec) - KUSTOMIZATION_KEYS)
    if unknown:
        raise UnsupportedError(f"{path}: unsupported kustomization keys {unknown}")
    if spec.get("apiVersion") != API_VERSION or spec.get("kind") != "Kustomization":
        raise UnsupportedError(f"{path}: expected apiVersion {API_VERSION} and kind Kustomization")
    return spec


def _load_resource(directory: Path, entry: str) -> list[Obj]:
    if "://" in entry or entry.startswith("git@"):
        raise UnsupportedError(f"{directory}: remote resource {entry!r}")
    path = (directory / entry).resolve()
    if path.is_dir():
        return render(path)
    if not path.is_file():
        raise RenderError(f"{directory}: resource {entry!r} not found")
    # The JSON round trip gives YAML anchors' targets independent copies, as kustomize does.
    docs = [json.loads(json.dumps(doc)) for doc in yaml.safe_load_all(path.read_text()) if doc is not None]
    for doc in docs:
        if not isinstance(doc, dict) or not {"apiVersion", "kind", "metadata"} <= set(doc):
            raise RenderError(f"{path}: every document needs apiVersion, kind and metadata")
        if doc["kind"].endswith("List"):
            raise UnsupportedError(f"{path}: List objects")
    return docs


def _check_unique(objects: list[Obj], directory: Path) -> None:
    seen: set[tuple[str, str, str, str]] = set()
    for obj in objects:
        key = object_id(obj)
        if key in seen:
            raise RenderError(f"{directory}: duplicate object {key}")
        seen.add(key)


def _generate_secrets(directory: Path, spec: Obj) -> list[Obj]:
    generators = spec.get("secretGenerator") or []
    options = spec.get("generatorOptions") or {}
    if generators and options != {"disableNameSuffixHash": True}:
        # Hash suffixes would need kustomize's name-reference rewriting, which this renderer does not do.
        raise UnsupportedError(f"{directory}: secretGenerator needs generatorOptions.disableNameSuffixHash: true only")
    secrets = []
    for gen in generators:
        unknown = sorted(set(gen) - {"name", "envs"})
        if unknown:
            raise UnsupportedError(f"{directory}: secretGenerator {gen.get('name')!r}: unsupported keys {unknown}")
        data: dict[str, str] = {}
        for env_file in gen.get("envs") or []:
            for key, value in _read_env_file(directory / env_file).items():
                data[key] = base64.b64encode(value.encode()).decode()
        secrets.append(
            {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": gen["name"]}, "type": "Opaque", "data": data}
        )
    return secrets


def _read_env_file(path: Path) -> dict[str, str]:
    if not path.is_file():
        raise RenderError(f"{path}: env file not found (copy the .example next to it)")
    values = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.strip():
            raise RenderError(f"{path}:{number}: expected KEY=VALUE")
        if value[:1] in {"'", '"'}:
            raise UnsupportedError(f"{path}:{number}: quoted values")
        values[key.strip()] = value
    return values


def _apply_patch(directory: Path, patch: Obj, objects: list[Obj]) -> None:
    unknown = sorted(set(patch) - {"path", "target"})
    if unknown or "path" not in patch:
        raise UnsupportedError(f"{directory}: patches entries need `path` (and optional `target`), got {sorted(patch)}")
    path = directory / patch["path"]
    body = yaml.safe_load(path.read_text())
    if isinstance(body, list):
        if "target" not in patch:
            raise RenderError(f"{path}: a JSON 6902 patch needs a target")
        matches = [obj for obj in objects if _selects(patch["target"], obj, path)]
        for obj in _exactly_one(matches, path):
            _json6902(obj, body, path)
        return
    if "target" in patch:
        raise UnsupportedError(f"{path}: strategic-merge patch with an explicit target")
    if not isinstance(body, dict):
        raise RenderError(f"{path}: a patch is a mapping (strategic merge) or a list (JSON 6902)")
    target = {
        "kind": body.get("kind"),
        "name": (body.get("metadata") or {}).get("name"),
        "namespace": (body.get("metadata") or {}).get("namespace"),
    }
    same_version = [obj for obj in objects if obj.get("apiVersion") == body.get("apiVersion")]
    matches = [obj for obj in same_version if _selects(target, obj, path)]
    for obj in _exactly_one(matches, path):
        merged = _strategic_merge(obj, body, path)
        obj.clear()
        obj.update(merged)


def _exactly_one(matches: list[Obj], path: Path) -> list[Obj]:
    if len(matches) != 1:
        raise RenderError(f"{path}: the patch matches {len(matches)} objects, expected exactly 1")
    return matches


def _selects(target: Obj, obj: Obj, path: Path) -> bool:
    unknown = sorted(set(target) - {"group", "version", "kind", "name", "namespace"})
    if unknown:
        raise UnsupportedError(f"{path}: unsupported target selector keys {unknown}")
    group, _, version = obj.get("apiVersion", "").rpartition("/")
    meta = obj.get("metadata") or {}
    actual = {"group": group, "version": version, "kind": obj.get("kind"), "name": meta.get("name")}
    actual["namespace"] = meta.get("namespace")
    return all(value is None or actual[key] == value for key, value in target.items())


def _strategic_merge(base: Any, patch: Any, path: Path, where: str = "") -> Any:
    """Merge maps key by key (null deletes); replace scalars and lists of scalars.

    Lists of maps would need each field's patch strategy from the schema, and kustomize replaces them inside custom
    resources, so they are refused rather than guessed.
    """
    if isinstance(patch, dict):
        if any(str(key).startswith("$") for key in patch):
            raise UnsupportedError(f"{path}: patch directives at {where or '/'}")
        merged = dict(base) if isinstance(base, dict) else {}
        for key, value in patch.items():
            if value is None:
                merged.pop(key, None)
            else:
                merged[key] = _strategic_merge(merged.get(key), value, path, f"{where}/{key}")
        return merged
    if isinstance(patch, list) and any(isinstance(item, (dict, list)) for item in patch):
        raise UnsupportedError(f"{path}: strategic merge of a list of objects at {where}; use a JSON 6902 patch")
    return copy.deepcopy(patch)


def _json6902(obj: Obj, operations: list[Obj], path: Path) -> None:
    for op in operations:
        if set(op) != {"op", "path", "value"} or op["op"] not in {"add", "replace"}:
            raise UnsupportedError(f"{path}: only `add` and `replace` operations with a value, got {op}")
        tokens = [t.replace("~1", "/").replace("~0", "~") for t in op["path"].split("/")[1:]]
        if not tokens or "-" in tokens:
            raise UnsupportedError(f"{path}: JSON pointer {op['path']!r}")
        parent: Any = obj
        for token in tokens[:-1]:
            parent = parent[int(token)] if isinstance(parent, list) else parent.get(token)
            if parent is None:
                raise RenderError(f"{path}: {op['path']} does not exist")
        last = tokens[-1]
        if isinstance(parent, list):
            raise UnsupportedError(f"{path}: {op['path']}: operations on list items")
        if op["op"] == "replace" and last not in parent:
            raise RenderError(f"{path}: cannot replace missing {op['path']}")
        parent[last] = copy.deepcopy(op["value"])


def _set_namespace(objects: list[Obj], namespace: str, directory: Path) -> None:
    for obj in objects:
        if obj["kind"] in CLUSTER_SCOPED:
            continue
        obj["metadata"]["namespace"] = namespace
        subjects = obj.get("subjects") or [] if obj["kind"] == "RoleBinding" else []
        for subject in subjects:
            if subject.get("kind") == "ServiceAccount" and subject.get("namespace") != namespace:
                raise UnsupportedError(f"{directory}: RoleBinding subject {subject} outside namespace {namespace}")


def _add_labels(objects: list[Obj], group: Obj, directory: Path) -> None:
    unknown = sorted(set(group) - {"pairs", "includeSelectors", "includeTemplates"})
    if unknown or group.get("includeSelectors") or group.get("includeTemplates"):
        raise UnsupportedError(f"{directory}: labels support only `pairs` (no selectors, no templates)")
    for obj in objects:
        obj["metadata"].setdefault("labels", {}).update(group["pairs"])


def split_image(ref: str) -> tuple[str, str]:
    """'reg:5000/a/b:tag' -> ('reg:5000/a/b', ':tag'); the tag or digest part keeps its separator."""
    if "@" in ref:
        name, digest = ref.split("@", 1)
        return name, "@" + digest
    slash = ref.rfind("/")
    colon = ref.rfind(":")
    if colon > slash:
        return ref[:colon], ref[colon:]
    return ref, ""


def _set_image(objects: list[Obj], image: Obj, directory: Path) -> None:
    unknown = sorted(set(image) - {"name", "newName", "newTag"})
    if unknown:
        raise UnsupportedError(f"{directory}: images entries support name/newName/newTag, got {sorted(image)}")

    def visit(node: Any, key: str = "") -> None:
        if isinstance(node, dict):
            for child_key, child in node.items():
                visit(child, child_key)
        elif isinstance(node, list):
            for item in node:
                if key in {"containers", "initContainers"} and isinstance(item, dict) and "image" in item:
                    name, tag = split_image(item["image"])
                    if name == image["name"]:
                        new_tag = ":" + str(image["newTag"]) if "newTag" in image else tag
                        item["image"] = image.get("newName", name) + new_tag
                visit(item)

    for obj in objects:
        visit(obj)
