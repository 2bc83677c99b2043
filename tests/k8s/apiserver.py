"""A real Kubernetes API server for custom resources, started for the tests: etcd + the upstream
apiextensions-apiserver (`../shared/tools/k8s-crd-apiserver`, see its README), on loopback.

It enforces what a cluster's API server enforces on custom resources (structural schemas, strict field validation,
CEL rules, server-side apply, the status subresource, watch), so the Kubeflow objects of `k8s/` and of the launcher
meet the real thing instead of a schema extract. It serves no core kinds; those keep their offline validation.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from tests.k8s import crds

REPO = Path(__file__).resolve().parents[2]
TOOL_ENV = "UFVIDEO_CRD_APISERVER"
FIELD_MANAGER = "ufvideo-tests"


def tool_dir() -> Path:
    """Where start.sh and the binary live: $UFVIDEO_CRD_APISERVER, else ../shared/tools/k8s-crd-apiserver."""
    return Path(os.environ.get(TOOL_ENV) or REPO.parent / "shared" / "tools" / "k8s-crd-apiserver")


def unavailable() -> str | None:
    """Why the API-server tier cannot run here (one line), or None when it can."""
    if not (tool_dir() / "start.sh").is_file():
        return f"k8s API-server tier: no crd-apiserver at {tool_dir()} (set {TOOL_ENV})"
    for tool, hint in (("etcd", "apt-get install etcd-server"), ("kubectl", "install kubectl"), ("xz", "xz-utils")):
        if shutil.which(tool) is None:
            return f"k8s API-server tier: {tool} not found ({hint})"
    return None


def _free_port() -> int:
    """A port p with p, p+7000 and p+7001 free (start.sh puts etcd's client and peer ports there)."""
    for _ in range(200):
        port = random.randint(20000, 28000)
        with contextlib.ExitStack() as stack:
            try:
                for candidate in (port, port + 7000, port + 7001):
                    sock = stack.enter_context(socket.socket())
                    sock.bind(("127.0.0.1", candidate))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port triple for the API server")


def _alive(pid: int) -> bool:
    """Running (a zombie left for an init that does not reap counts as gone)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


class ApiServer:
    """One etcd + apiextensions-apiserver pair in `workdir`; `start`, `install` a release's CRDs, `stop`."""

    def __init__(self, workdir: Path, binary: Path | None = None) -> None:
        self.workdir = workdir
        self.binary = binary  # an unpacked crd-apiserver to reuse (start.sh unpacks 37 MB of xz otherwise)
        self.kubeconfig = workdir / "kubeconfig"
        self.pids: list[int] = []

    def start(self) -> ApiServer:
        if self.binary is not None:
            (self.workdir / "bin").mkdir(parents=True, exist_ok=True)
            shutil.copy2(self.binary, self.workdir / "bin" / "crd-apiserver")
        cmd = [str(tool_dir() / "start.sh"), str(self.workdir), str(_free_port())]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        pid_file = self.workdir / "pids"
        self.pids = [int(p) for p in pid_file.read_text().split()] if pid_file.is_file() else []
        if out.returncode:
            self.stop()
            log = (self.workdir / "apiserver.log").read_text()[-2000:] if out.returncode != 3 else ""
            raise RuntimeError(f"crd-apiserver did not start: {out.stderr.strip()}\n{log}")
        return self

    def stop(self) -> None:
        """Terminate exactly the two processes start.sh started, and wait for them to go."""
        for pid in self.pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and any(_alive(pid) for pid in self.pids):
            for pid in self.pids:  # they are start.sh's orphans, reaped by init; children of ours are reaped here
                with contextlib.suppress(ChildProcessError, OSError):
                    os.waitpid(pid, os.WNOHANG)
            time.sleep(0.1)
        self.pids = []

    def kubectl(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "KUBECONFIG": str(self.kubeconfig)}
        return subprocess.run(["kubectl", *args], input=stdin, capture_output=True, text=True, env=env, timeout=120)

    def install(self, release: str) -> None:
        """Install one supported release's CRDs and wait until they serve."""
        paths = crds.write_plain(release, self.workdir / "crds" / release)
        for path in paths:
            out = self.kubectl("apply", "--server-side", f"--field-manager={FIELD_MANAGER}", "-f", str(path))
            if out.returncode:
                raise RuntimeError(f"installing {path.name} of {release}: {out.stderr.strip()}")
        deadline = time.monotonic() + 60
        while True:  # kubectl wait errors out (instead of waiting) on a CRD whose status is not written yet
            out = self.kubectl("wait", "--for=condition=Established", "crd", "--all", "--timeout=30s")
            if out.returncode == 0:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"{release} CRDs not established: {out.stderr.strip()}")
            time.sleep(0.2)

    def dry_run(
        self, objects: Iterable[dict[str, Any]], server_side: bool = True, namespace: str = "ufvideo"
    ) -> subprocess.CompletedProcess:
        """`kubectl apply [--server-side] --dry-run=server --validate=strict` of `objects` (one request each).

        Both modes matter: server-side apply checks fields against the schema as typed by structured-merge-diff,
        which lets a field under a property-less `type: object` through (and then prunes it silently); a plain
        apply is decoded strictly and rejects it, as `kubectl apply -k` does for a user.
        """
        text = yaml.safe_dump_all(list(objects), sort_keys=False)
        mode = ["--server-side"] if server_side else []
        args = ["apply", *mode, "--dry-run=server", "--validate=strict", f"--field-manager={FIELD_MANAGER}"]
        return self.kubectl(*args, "-n", namespace, "-f", "-", stdin=text)
