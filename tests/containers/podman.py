"""podman for the container tier: build the CPU image the way `make image` does, serve the Docker API that kfp's
DockerRunner talks to, and run kfp's containers without the auto-remove race podman 4.3 loses.

Host facts this encodes (a Debian 12 root host without a reachable image registry): the base image comes from
debootstrap (`components/images/debootstrap-base.sh`), pip inside the build needs the host's CA bundle and may use
the local torch wheels, podman needs runc and explicit ulimits (`containers.conf` beside this file).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
CONTAINERS_CONF = Path(__file__).with_name("containers.conf")
IMAGE = "ghcr.io/ufvideo/ufvideo:0.1.0"  # components/image.py's default: the components run what `make image` built
BASE_IMAGE = os.environ.get("UFVIDEO_BASE_IMAGE", "localhost/ufvideo-base:bookworm-minbase")
WHEELS = os.environ.get("UFVIDEO_WHEELS", "/opt/wheels")
CA_FILE = os.environ.get("UFVIDEO_CA_FILE", "/etc/ssl/certs/ca-certificates.crt")


def env() -> dict[str, str]:
    return {**os.environ, "CONTAINERS_CONF": str(CONTAINERS_CONF)}


def podman(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["podman", *args], capture_output=True, text=True, env=env(), timeout=timeout)


def unavailable() -> str | None:
    """Why the container tier cannot run here (one line), or None."""
    if shutil.which("podman") is None:
        return "container tier: podman not found (apt-get install podman buildah runc)"
    if podman("info", timeout=60).returncode:
        return "container tier: `podman info` fails (see tests/containers/containers.conf)"
    return None


def ensure_base() -> None:
    """The debootstrap base image, made once (about 2 minutes) when missing."""
    if podman("image", "exists", BASE_IMAGE).returncode == 0:
        return
    script = REPO / "components" / "images" / "debootstrap-base.sh"
    out = subprocess.run(["nice", "-n", "19", str(script), BASE_IMAGE], capture_output=True, text=True, env=env())
    if out.returncode:
        raise RuntimeError(f"{script.name} failed: {out.stderr[-2000:]}")


def build_args() -> list[str]:
    """`make image` arguments for this host: base image, local wheels and CA bundle mounted at build time."""
    extra, index = [], []
    if Path(WHEELS).is_dir():  # torch from the local wheels (its +cpu build outranks PyPI's), the rest from PyPI
        extra += [f"-v {WHEELS}:{WHEELS}:ro", f"--build-arg WHEELS={WHEELS}"]
        index = ["TORCH_INDEX="]
    if Path(CA_FILE).is_file():
        extra += [f"-v {CA_FILE}:/run/host-ca.crt:ro", "--build-arg CA_BUNDLE=/run/host-ca.crt"]
    return ["ENGINE=podman", f"BASE_IMAGE={BASE_IMAGE}", f"IMAGE={IMAGE}", *index, f"IMAGE_ARGS={' '.join(extra)}"]


def build() -> float:
    """`make image` with podman (layer cache reused); returns the wall time in seconds."""
    ensure_base()
    start = time.monotonic()
    cmd = ["nice", "-n", "19", "make", "-C", str(REPO), "image", *build_args()]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env(), timeout=3600)
    if out.returncode:
        raise RuntimeError(f"make image failed:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}")
    return time.monotonic() - start


@contextlib.contextmanager
def docker_api(socket_dir: Path) -> Iterator[str]:
    """`podman system service` on a private unix socket: the Docker API (1.41) the docker SDK and kfp use.
    Yields the DOCKER_HOST value; the service is stopped (by its pid) on exit."""
    sock = socket_dir / "podman.sock"
    proc = subprocess.Popen(
        ["podman", "system", "service", "--time=0", f"unix://{sock}"],
        env=env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while not sock.exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("podman system service did not start")
            time.sleep(0.1)
        yield f"unix://{sock}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def run_container_then_remove(client: Any, image: str, command: list[str], volumes: dict, **run_args: Any) -> int:
    """kfp.local's `run_docker_container` without `auto_remove`: kfp 2.17 waits on an auto-removed container and
    podman 4.3 answers that with a 500 (not the 404 kfp handles), so this waits first and removes afterwards."""
    run_args.pop("auto_remove", None)
    container = client.containers.run(
        image=image, command=command, detach=True, stdout=True, stderr=True, volumes=volumes, **run_args
    )
    try:
        for line in container.logs(stream=True):
            print(line.decode(), end="")
        return int(container.wait()["StatusCode"])
    finally:
        container.remove(force=True)


def image_size(image: str = IMAGE) -> int:
    out = podman("image", "inspect", "--format", "{{.Size}}", image, timeout=60)
    return int(out.stdout.strip())
