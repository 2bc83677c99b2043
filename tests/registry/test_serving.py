"""The README's serving example for real: `mlflow models serve -m models:/NAME@champion` as a subprocess on loopback,
asked with the README's own request body; one bad row comes back with an error, the others with answers."""

from __future__ import annotations

import json
import os
import re
import socket
import sys
import urllib.request
import uuid
from pathlib import Path

import numpy as np

from tests.fixtures_servers import _command, _launch, _stop
from ufvideo.checkpoint import write_info
from ufvideo.data.video import write_video
from ufvideo.registry import versions
from ufvideo.registry.versions import CANDIDATE

README = Path(__file__).resolve().parents[2] / "README.md"


def _readme_request() -> tuple[str, dict]:
    """The `mlflow models serve` model URI and the JSON body of the `curl` call, as the README shows them."""
    text = README.read_text(encoding="utf-8")
    serve = re.search(r"mlflow models serve -m (\S+)", text)
    body = re.search(r"curl .*?/invocations .*?-d '(\{.*?\})'", text, re.S)
    assert serve and body, "README has no `mlflow models serve` + curl example"
    return serve.group(1), json.loads(body.group(1))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_the_readme_request_against_the_scoring_server(tmp_path: Path, mlflow_tracking: str) -> None:
    from ufvideo.model import ufvideo_tiny

    model, processor = ufvideo_tiny(seed=0)
    ckpt = tmp_path / "ckpt"
    model.save_pretrained(ckpt, processor=processor)
    write_info(ckpt, profile="tiny", stage=2, data_digest="synthetic-digest")
    metrics = tmp_path / "metrics.json"
    metrics.write_text(json.dumps({"benchmark": "synthetic", "metrics": {"qa_accuracy": 10.0}}))
    name = f"ufvideo-serving-{uuid.uuid4().hex[:8]}"
    versions.register(str(ckpt), [str(metrics)], name=name)
    lenient = tmp_path / "lenient.yaml"
    lenient.write_text("tolerance: 100.0\nmin_metrics: 1\nbenchmarks: {}\n")
    assert versions.promote(name, version=CANDIDATE, policy=str(lenient)).decision.passed

    frames = np.zeros((12, 48, 64, 3), dtype=np.uint8)
    for t in range(12):
        frames[t, 10:26, 4 * t : 4 * t + 16] = (220, 30, 30)
    clip = tmp_path / "clip.mp4"
    write_video(clip, frames, fps=4)

    uri, body = _readme_request()
    assert uri.startswith("models:/") and uri.endswith("@champion")
    uri = uri.replace(uri[len("models:/") : uri.index("@")], name)
    text = json.dumps(body).replace("/data/clip.mp4", str(clip)).replace("/data/", f"{tmp_path}/")
    port = _free_port()
    env = {**os.environ, "MLFLOW_MODELS_WORKERS": "1", "UFVIDEO_CHECKPOINT_CACHE": str(tmp_path / "cache")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"  # uvicorn, as in an activated venv
    serve = [*_command("mlflow", ["mlflow"]), "models", "serve", "-m", uri, "--env-manager", "local"]
    proc = _launch(
        "mlflow models serve",
        [*serve, "--host", "127.0.0.1", "--port", str(port)],
        f"http://127.0.0.1:{port}/ping",
        tmp_path / "serve.log",
        env,
        timeout=240,
    )
    try:
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/invocations",
            data=text.encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=300) as response:
            assert response.status == 200
            answer = json.loads(response.read())
    finally:
        _stop(proc)
    rows = answer["predictions"]
    assert len(rows) == len(body["dataframe_records"]) == 2
    assert rows[0]["error"] is None and rows[0]["text"] and len(rows[0]["frames"]) == 8
    assert "missing.mp4" in rows[1]["error"] and rows[1]["text"] == "" and rows[1]["masks"] == []
