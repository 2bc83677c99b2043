"""ufvideo.storage against local disk and a real moto S3 server on loopback: one API, both backends."""

from __future__ import annotations

import hashlib
import os
import uuid
from pathlib import Path

import pytest

from ufvideo import storage

# Loaded as a plugin, not imported: registered once even when conftest.py names it too, so each server starts once.

MiB = 1024 * 1024


@pytest.fixture(params=["local", "s3"])
def root(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A writable base URI on either backend, so each behaviour is checked on both."""
    if request.param == "local":
        return str(tmp_path / "root")
    return request.getfixturevalue("s3_bucket") + "/root"


def test_split_and_join() -> None:
    assert storage.split_s3("s3://bucket/a/b.json") == ("bucket", "a/b.json")
    assert storage.split_s3("s3://bucket") == ("bucket", "")
    assert storage.join("s3://bucket/ckpt", "sub", "w.bin") == "s3://bucket/ckpt/sub/w.bin"
    assert storage.join("/data/ckpt", "w.bin") == os.path.join("/data/ckpt", "w.bin")
    assert storage.is_s3("s3://b/k") and not storage.is_s3("/s3://b") and not storage.is_s3(Path("s3:/b"))
    with pytest.raises(ValueError, match="not an s3"):
        storage.split_s3("/tmp/x")
    with pytest.raises(ValueError, match="no bucket"):
        storage.split_s3("s3:///key")


def test_write_read_list_exists(root: str) -> None:
    storage.write_text(storage.join(root, "manifest.json"), '{"n": 1}\n')
    storage.write_bytes(storage.join(root, "shards", "a.jsonl"), b"a\n")
    storage.write_bytes(storage.join(root, "shards", "deep", "b.jsonl"), b"b\n")

    assert storage.read_text(storage.join(root, "manifest.json")) == '{"n": 1}\n'
    assert storage.read_bytes(storage.join(root, "shards", "deep", "b.jsonl")) == b"b\n"
    assert storage.exists(storage.join(root, "manifest.json"))
    assert storage.exists(storage.join(root, "shards"))  # a directory (an S3 prefix) exists too
    assert not storage.exists(storage.join(root, "nope.json"))
    assert not storage.exists(storage.join(root, "shard"))  # a prefix of a name is not a directory

    assert storage.listdir(root) == [storage.join(root, "manifest.json"), storage.join(root, "shards")]
    assert storage.listdir(root, recursive=True) == [
        storage.join(root, "manifest.json"),
        storage.join(root, "shards", "a.jsonl"),
        storage.join(root, "shards", "deep", "b.jsonl"),
    ]
    with pytest.raises(FileNotFoundError, match="no such directory"):
        storage.listdir(storage.join(root, "missing"))

    # Overwrite replaces the whole content; the digest follows.
    storage.write_bytes(storage.join(root, "manifest.json"), b"x" * 10)
    assert storage.sha256(storage.join(root, "manifest.json")) == hashlib.sha256(b"x" * 10).hexdigest()


def test_copy_every_combination(s3_bucket: str, tmp_path: Path) -> None:
    payload = os.urandom(300_000)
    local_src = tmp_path / "src.bin"
    local_src.write_bytes(payload)
    first, second = f"{s3_bucket}/a/x.bin", f"{s3_bucket}/b/x.bin"
    back = tmp_path / "out" / "x.bin"

    storage.copy(local_src, first)  # local -> s3
    storage.copy(first, second)  # s3 -> s3, server side
    storage.copy(second, back)  # s3 -> local
    storage.copy(back, tmp_path / "again.bin")  # local -> local
    assert (tmp_path / "again.bin").read_bytes() == payload
    assert storage.sha256(second) == storage.sha256(local_src)

    with pytest.raises(FileNotFoundError, match=f"{s3_bucket}/nope.bin"):
        storage.copy(f"{s3_bucket}/nope.bin", second)  # the error names the missing source


def test_copy_tree_round_trip(s3_bucket: str, tmp_path: Path) -> None:
    ckpt = tmp_path / "ckpt"
    files = {"config.json": b"{}", "model.safetensors": os.urandom(50_000), "tokenizer/vocab.json": b'{"a": 0}'}
    for name, data in files.items():
        (ckpt / name).parent.mkdir(parents=True, exist_ok=True)
        (ckpt / name).write_bytes(data)

    uploaded = storage.copy_tree(ckpt, f"{s3_bucket}/runs/1/ckpt")
    assert uploaded == sorted(f"{s3_bucket}/runs/1/ckpt/{name}" for name in files)
    mirrored = storage.copy_tree(f"{s3_bucket}/runs/1/ckpt", f"{s3_bucket}/registry/ckpt")
    assert len(mirrored) == 3
    restored = storage.copy_tree(f"{s3_bucket}/registry/ckpt/", tmp_path / "restored")
    assert restored == sorted(str(tmp_path / "restored" / name) for name in files)
    for name, data in files.items():
        assert (tmp_path / "restored" / name).read_bytes() == data


def test_multipart_upload_and_download(s3_bucket: str, tmp_path: Path) -> None:
    big = tmp_path / "shard.bin"
    big.write_bytes(os.urandom(11 * MiB))
    uri = f"{s3_bucket}/big/shard.bin"

    storage.upload_file(big, uri, threshold=5 * MiB, chunksize=5 * MiB)
    bucket, key = storage.split_s3(uri)
    head = storage.client().head_object(Bucket=bucket, Key=key)
    assert head["ContentLength"] == 11 * MiB
    assert head["ETag"].strip('"').endswith("-3")  # a multipart ETag counts its parts: 5 + 5 + 1 MiB

    out = tmp_path / "dl" / "shard.bin"
    storage.download_file(uri, out, threshold=5 * MiB, chunksize=5 * MiB)
    assert storage.sha256(out) == storage.sha256(big) == storage.sha256(uri)
    assert os.listdir(out.parent) == ["shard.bin"]  # the temp file was renamed, nothing left beside it

    storage.upload_file(big, f"{s3_bucket}/big/single.bin", threshold=64 * MiB)
    single = storage.client().head_object(Bucket=bucket, Key="big/single.bin")
    assert "-" not in single["ETag"]  # below the threshold it is one PUT


def test_missing_objects_name_the_uri(s3_bucket: str, tmp_path: Path) -> None:
    missing = f"{s3_bucket}/no/such/key.json"
    with pytest.raises(FileNotFoundError, match=f"{missing}: no such object"):
        storage.read_bytes(missing)
    with pytest.raises(FileNotFoundError, match="no such object"):
        storage.sha256(missing)

    keep = tmp_path / "keep.json"
    keep.write_text("old")
    with pytest.raises(FileNotFoundError, match=missing):
        storage.download_file(missing, keep)
    assert keep.read_text() == "old" and os.listdir(tmp_path) == ["keep.json"]

    no_bucket = f"s3://missing-{uuid.uuid4().hex[:8]}/k"
    with pytest.raises(FileNotFoundError, match="bucket 'missing-.*' does not exist"):
        storage.read_bytes(no_bucket)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        storage.write_bytes(no_bucket, b"x")
    assert not storage.exists(no_bucket)
    with pytest.raises(FileNotFoundError, match="no such file to upload"):
        storage.upload_file(tmp_path / "absent.bin", f"{s3_bucket}/x")


def test_no_credentials_is_a_permission_error(s3_bucket: str, monkeypatch: pytest.MonkeyPatch) -> None:
    storage.write_bytes(f"{s3_bucket}/secret.txt", b"s")
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/config")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    with pytest.raises(PermissionError, match=f"{s3_bucket}/secret.txt: no AWS credentials"):
        storage.read_bytes(f"{s3_bucket}/secret.txt")


def test_endpoint_s3_overrides_generic_endpoint(
    s3_bucket: str,
    moto_server: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    storage.write_bytes(f"{s3_bucket}/k", b"v")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # discard port: nothing answers there
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", moto_server)
    assert storage.read_bytes(f"{s3_bucket}/k") == b"v"


def test_failed_local_write_keeps_old_content(tmp_path: Path) -> None:
    target = tmp_path / "manifest.json"
    storage.write_text(target, "old")
    with pytest.raises(TypeError):
        storage.write_bytes(target, "not bytes")  # type: ignore[arg-type]  # fails inside the write
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["manifest.json"]  # no temp file left behind


def test_check_writable_probes_and_cleans_up(s3_bucket: str, tmp_path: Path) -> None:
    storage.check_writable(f"{s3_bucket}/runs/ckpt")
    with pytest.raises(FileNotFoundError):
        storage.listdir(s3_bucket, recursive=True)  # the probe object is gone again
    with pytest.raises(FileNotFoundError, match="bucket 'no-such-bucket-x' does not exist"):
        storage.check_writable("s3://no-such-bucket-x/ckpt")
    storage.check_writable(tmp_path / "out")
    assert list((tmp_path / "out").iterdir()) == []
    (tmp_path / "ro").mkdir(mode=0o500)
    if os.geteuid() != 0:  # root writes anywhere
        with pytest.raises(storage.StorageError, match="not writable"):
            storage.check_writable(tmp_path / "ro" / "sub")
