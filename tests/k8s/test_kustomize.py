"""The test-side kustomize renderer: it refuses what it does not implement and, where kubectl exists, agrees with it."""

from __future__ import annotations

import base64
import shutil
import textwrap
from pathlib import Path

import pytest

from tests.k8s.conftest import K8S_ROOT, entrypoints
from tests.k8s.kustomize import RenderError, UnsupportedError, kubectl_kustomize, object_id, render, split_image

HEADER = "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
CONFIGMAP = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cfg\ndata:\n  A: '1'\n"
DEPLOYMENT = textwrap.dedent(
    """\
    apiVersion: apps/v1
    kind: Deployment
    metadata:
      name: app
    spec:
      selector: {matchLabels: {app: a}}
      template:
        metadata: {labels: {app: a}}
        spec:
          containers:
            - name: main
              image: registry.local:5000/team/app:1.0
            - name: side
              image: busybox
    """
)


def write_tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def by_name(objects: list[dict]) -> dict[str, dict]:
    return {obj["metadata"]["name"]: obj for obj in objects}


@pytest.mark.parametrize(
    "extra",
    [
        "commonLabels: {a: b}\n",
        "namePrefix: x-\n",
        "replicas: [{name: app, count: 2}]\n",
        "configMapGenerator: [{name: c, literals: [a=b]}]\n",
        "patchesStrategicMerge: [p.yaml]\n",
        "labels: [{pairs: {a: b}, includeSelectors: true}]\n",
        "images: [{name: busybox, digest: 'sha256:00'}]\n",
        "secretGenerator: [{name: s, envs: [s.env]}]\n",
        "resources: [https://example.com/x.yaml]\n",
    ],
)
def test_unsupported_features_are_refused(tmp_path: Path, extra: str) -> None:
    write_tree(tmp_path, {"kustomization.yaml": HEADER + extra, "s.env": "A=1\n"})
    with pytest.raises(UnsupportedError):
        render(tmp_path)


def test_resources_namespace_labels_and_images(tmp_path: Path) -> None:
    write_tree(
        tmp_path,
        {
            "base/kustomization.yaml": HEADER + "namespace: ns\nresources: [cm.yaml, app.yaml]\n",
            "base/cm.yaml": CONFIGMAP,
            "base/app.yaml": DEPLOYMENT,
            "kustomization.yaml": HEADER
            + "resources: [base]\nlabels: [{pairs: {team: t}}]\n"
            + "images: [{name: registry.local:5000/team/app, newName: other.io/app, newTag: '2'}]\n",
        },
    )
    objects = by_name(render(tmp_path))
    assert objects["cfg"]["metadata"] == {"name": "cfg", "namespace": "ns", "labels": {"team": "t"}}
    pod = objects["app"]["spec"]["template"]
    assert pod["metadata"]["labels"] == {"app": "a"}, "labels without includeTemplates leave pod templates alone"
    assert [c["image"] for c in pod["spec"]["containers"]] == ["other.io/app:2", "busybox"]


def test_strategic_merge_merges_maps_and_replaces_scalar_lists(tmp_path: Path) -> None:
    patch = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cfg\ndata:\n  B: '2'\n"
    write_tree(
        tmp_path,
        {"kustomization.yaml": HEADER + "resources: [cm.yaml]\npatches: [{path: p.yaml}]\n", "cm.yaml": CONFIGMAP},
    )
    (tmp_path / "p.yaml").write_text(patch)
    assert render(tmp_path)[0]["data"] == {"A": "1", "B": "2"}
    (tmp_path / "p.yaml").write_text(patch.replace("data:\n  B: '2'", "data:\n  A: null"))
    assert render(tmp_path)[0]["data"] == {}


def test_strategic_merge_of_object_lists_is_refused(tmp_path: Path) -> None:
    patch = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: app}\nspec:\n  template:\n    spec:\n"
    patch += "      containers: [{name: main, image: x}]\n"
    write_tree(
        tmp_path,
        {
            "kustomization.yaml": HEADER + "resources: [app.yaml]\npatches: [{path: p.yaml}]\n",
            "app.yaml": DEPLOYMENT,
            "p.yaml": patch,
        },
    )
    with pytest.raises(UnsupportedError, match="list of objects"):
        render(tmp_path)


def test_json6902_add_replace_and_errors(tmp_path: Path) -> None:
    target = "target: {group: apps, version: v1, kind: Deployment, name: app}"
    write_tree(
        tmp_path,
        {
            "kustomization.yaml": HEADER + f"resources: [app.yaml]\npatches: [{{path: p.yaml, {target}}}]\n",
            "app.yaml": DEPLOYMENT,
            "p.yaml": "- {op: add, path: /spec/template/spec/nodeSelector, value: {gpu: h100}}\n"
            "- {op: replace, path: /spec/template/spec/containers/1/image, value: alpine}\n",
        },
    )
    spec = render(tmp_path)[0]["spec"]["template"]["spec"]
    assert spec["nodeSelector"] == {"gpu": "h100"}
    assert spec["containers"][1]["image"] == "alpine"
    for body, error in [
        ("- {op: remove, path: /spec/replicas}\n", UnsupportedError),
        ("- {op: replace, path: /spec/paused, value: true}\n", RenderError),
        ("- {op: add, path: /spec/missing/field, value: 1}\n", RenderError),
    ]:
        (tmp_path / "p.yaml").write_text(body)
        with pytest.raises(error):
            render(tmp_path)


def test_patch_that_matches_nothing_fails(tmp_path: Path) -> None:
    write_tree(
        tmp_path,
        {
            "kustomization.yaml": HEADER + "resources: [cm.yaml]\npatches: [{path: p.yaml}]\n",
            "cm.yaml": CONFIGMAP,
            "p.yaml": CONFIGMAP.replace("name: cfg", "name: other"),
        },
    )
    with pytest.raises(RenderError, match="matches 0"):
        render(tmp_path)


def test_duplicates_and_missing_env_files_fail(tmp_path: Path) -> None:
    write_tree(tmp_path, {"kustomization.yaml": HEADER + "resources: [cm.yaml, cm.yaml]\n", "cm.yaml": CONFIGMAP})
    with pytest.raises(RenderError, match="duplicate"):
        render(tmp_path)
    secrets = tmp_path / "secrets"  # a checkout before the user has written the real env files
    shutil.copytree(K8S_ROOT / "secrets", secrets, ignore=shutil.ignore_patterns("*.env"))
    with pytest.raises(RenderError, match="env file not found"):
        render(secrets)


def test_yaml_anchors_become_independent_copies(tmp_path: Path) -> None:
    doc = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  labels: &same {k: v}\n  annotations: *same\n"
    kustomization = HEADER + "resources: [cm.yaml]\nlabels: [{pairs: {x: y}}]\n"
    write_tree(tmp_path, {"kustomization.yaml": kustomization, "cm.yaml": doc})
    meta = render(tmp_path)[0]["metadata"]
    assert meta["labels"] == {"k": "v", "x": "y"}
    assert meta["annotations"] == {"k": "v"}, "a label added through one alias must not appear through the other"


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        ("busybox", ("busybox", "")),
        ("ghcr.io/ufvideo/train:0.1.0", ("ghcr.io/ufvideo/train", ":0.1.0")),
        ("localhost:5001/ufvideo/train", ("localhost:5001/ufvideo/train", "")),
        ("localhost:5001/ufvideo/train:dev", ("localhost:5001/ufvideo/train", ":dev")),
        ("img@sha256:abc", ("img", "@sha256:abc")),
    ],
)
def test_split_image(ref: str, expected: tuple[str, str]) -> None:
    assert split_image(ref) == expected


def _normalised(objects: list[dict]) -> dict:
    out = {}
    for obj in objects:
        if obj.get("kind") == "Secret" and "data" in obj:
            obj = {**obj, "data": {k: base64.b64decode(v).decode() for k, v in obj["data"].items()}}
        out[object_id(obj)] = obj
    return out


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
def test_renderer_matches_kubectl_kustomize(secrets_dir: Path) -> None:
    directories = {**entrypoints(secrets_dir), "base": K8S_ROOT / "base", "base/minio": K8S_ROOT / "base" / "minio"}
    for name, directory in directories.items():
        theirs = _normalised(kubectl_kustomize(directory))
        mine = _normalised(render(directory))
        assert mine.keys() == theirs.keys(), name
        for key in mine:
            assert mine[key] == theirs[key], f"{name}: {key} differs from kubectl kustomize"
