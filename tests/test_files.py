"""Files and directories the project creates get the umask's mode, not mkstemp's 0600 / mkdtemp's 0700 or
safetensors' 0600: on a shared volume, a pod running as another UID must be able to read them."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.factories import make_record
from ufvideo import storage
from ufvideo.checkpoint import materialize, publish, write_info
from ufvideo.data.shards import CuratedWriter
from ufvideo.files import atomic_write, umask, write_json


@pytest.fixture
def umask_022() -> Iterator[None]:
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_umask_is_read_without_changing_it(umask_022: None) -> None:
    assert umask() == 0o022 and umask() == 0o022


def test_atomic_writes_and_datasets_get_the_umask_mode(umask_022: None, tmp_path: Path) -> None:
    with atomic_write(tmp_path / "a.txt") as handle:
        handle.write("x")
    write_json(tmp_path / "b.json", {"k": 1})
    with CuratedWriter(tmp_path / "data") as writer:
        writer.write(make_record("qa", 0))
    for path in (tmp_path / "a.txt", tmp_path / "b.json", *(tmp_path / "data").iterdir()):
        assert _mode(path) == 0o644, path


def test_model_weights_get_the_umask_mode(umask_022: None, tmp_path: Path) -> None:
    from ufvideo.model import ufvideo_tiny
    from ufvideo.train.trainer import save_weights

    model, processor = ufvideo_tiny(seed=0)
    model.save_pretrained(tmp_path / "pretrained", processor=processor)
    save_weights(model, tmp_path / "trainer")
    for path in (tmp_path / "pretrained" / "model.safetensors", tmp_path / "trainer" / "model.safetensors"):
        assert _mode(path) == 0o644, path


def test_downloads_and_the_checkpoint_cache_get_the_umask_mode(umask_022: None, tmp_path: Path, s3_bucket: str):
    local = tmp_path / "ckpt"
    local.mkdir()
    (local / "model.safetensors").write_bytes(b"w" * 100)
    write_info(local, profile="tiny", stage=1, data_digest="d")
    uri = f"{s3_bucket}/ckpt"
    publish(local, uri)
    storage.download_file(storage.join(uri, "model.safetensors"), tmp_path / "one.bin")
    assert _mode(tmp_path / "one.bin") == 0o644
    entry = materialize(uri, tmp_path / "cache")
    assert _mode(entry) == 0o755 and _mode(entry / "model.safetensors") == 0o644
