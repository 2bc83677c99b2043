"""The CPU image, built and used (opt-in: `pytest -m container`; several minutes on a first build).

`make image` builds `components/images/Dockerfile.cpu` with podman; then `curate_data` and `register_model` run
inside it under `kfp.local.DockerRunner` (podman's Docker API) and under the SubprocessRunner on the same inputs, and
their outputs must agree: the curated shards byte for byte, the dataset digest and counts, the registered version.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.containers import podman
from tests.registry.helpers import fake_checkpoint, write_metrics

pytestmark = [
    pytest.mark.container,
    pytest.mark.skipif(podman.unavailable() is not None, reason=podman.unavailable() or ""),
    pytest.mark.timeout(3600),
    pytest.mark.filterwarnings("ignore:You may be attemping to run a task:RuntimeWarning"),  # the Subprocess half
]
RUN_ID = "container-run"


@pytest.fixture(scope="module")
def image() -> str:
    seconds = podman.build()
    print(f"make image: {seconds:.0f} s, {podman.image_size() / 1e6:.0f} MB")
    return podman.IMAGE


@pytest.fixture(scope="module")
def docker_host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with podman.docker_api(tmp_path_factory.mktemp("podman")) as host:
        yield host


def _root(tmp_path_factory: pytest.TempPathFactory, name: str) -> Path:
    root = tmp_path_factory.mktemp(name)
    root.chmod(0o777)  # the image runs as uid 1000; kfp mounts the pipeline root at the same path
    return root


def _environment(root: Path) -> dict[str, str]:
    return {
        "MLFLOW_TRACKING_URI": f"sqlite:///{root / 'mlflow.db'}",
        "UFVIDEO_MODEL_NAME": "container-test",
        "HOME": "/tmp",
    }


def _run_both(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch, docker_host: str, call: Any
) -> dict[str, tuple[Path, Any]]:
    """`call(root)` under the SubprocessRunner and under the DockerRunner, each in its own pipeline root."""
    from kfp import local
    from kfp.local import docker_task_handler

    monkeypatch.setenv("DOCKER_HOST", docker_host)
    monkeypatch.setattr(docker_task_handler, "run_docker_container", podman.run_container_then_remove)
    results = {}
    for name in ("subprocess", "docker"):
        root = _root(tmp_path_factory, name)
        for key, value in _environment(root).items():
            monkeypatch.setenv(key, value)  # the SubprocessRunner's steps inherit this process's environment
        monkeypatch.delenv("MLFLOW_RUN_ID", raising=False)
        if name == "subprocess":
            runner: Any = local.SubprocessRunner(use_venv=False)
        else:
            runner = local.DockerRunner(environment=_environment(root))
        local.init(runner=runner, pipeline_root=str(root), raise_on_error=True)  # the mount covers every path
        results[name] = (root, call(root))
    return results


def _files(directory: Path) -> dict[str, bytes]:
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


def test_curate_data_in_the_image_matches_the_subprocess_run(
    image: str, docker_host: str, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    from components import curate_data as module

    curate_data = module.component(image)  # bound to the image built here (the default tag)
    runs = _run_both(
        tmp_path_factory,
        monkeypatch,
        docker_host,
        lambda root: curate_data(workspace=str(root / "ws"), run_id=RUN_ID, synth_videos=4),
    )
    (host_root, host), (box_root, box) = runs["subprocess"], runs["docker"]
    assert box.outputs["digest"] == host.outputs["digest"] and len(host.outputs["digest"]) == 64
    assert box.outputs["uri"] == str(box_root / "ws" / "runs" / RUN_ID / "curated")
    assert box.outputs["dataset"].metadata["records"] == host.outputs["dataset"].metadata["records"] > 0
    curated_host, curated_box = Path(host.outputs["uri"]), Path(box.outputs["uri"])
    shards = {k: v for k, v in _files(curated_host).items() if k.endswith(".jsonl")}
    assert shards and shards == {k: v for k, v in _files(curated_box).items() if k.endswith(".jsonl")}
    videos_host, videos_box = host_root / "ws" / "data" / "synth", box_root / "ws" / "data" / "synth"
    assert _files(videos_host).keys() == _files(videos_box).keys()


def test_register_model_in_the_image_matches_the_subprocess_run(
    image: str, docker_host: str, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    from components import register_model as module

    register_model = module.component(image)

    def register(root: Path) -> Any:
        checkpoint = fake_checkpoint(root / "ckpt", seed=3)
        metrics = write_metrics(root / "eval", "synthetic", {"qa_accuracy": 40.0}, checkpoint)
        for path in checkpoint.rglob("*"):  # written here as root (0600 temp files); the image runs as uid 1000
            path.chmod(0o755 if path.is_dir() else 0o644)
        return register_model(
            checkpoint_uri=str(checkpoint), metrics_uris=[str(metrics)], workspace=str(root / "ws"), run_id=RUN_ID
        )

    runs = _run_both(tmp_path_factory, monkeypatch, docker_host, register)
    (host_root, host), (box_root, box) = runs["subprocess"], runs["docker"]
    outputs = ("name", "version", "champion")
    assert [box.outputs[k] for k in outputs] == [host.outputs[k] for k in outputs] == ["container-test", "1", "1"]
    host_json = json.loads((host_root / "ws" / "runs" / RUN_ID / "register.json").read_text())
    box_json = json.loads((box_root / "ws" / "runs" / RUN_ID / "register.json").read_text())
    assert box_json["checkpoint"]["digest"] == host_json["checkpoint"]["digest"]
    assert box_json["promotion"]["passed"] is host_json["promotion"]["passed"] is True
    assert (box_root / "mlflow.db").is_file()  # the step in the container wrote the mounted tracking store
