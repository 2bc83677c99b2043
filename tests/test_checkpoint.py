"""Checkpoint metadata, location-independent digests and materialisation of s3:// checkpoints (moto)."""

from __future__ import annotations

import json
import shutil

import pytest

from ufvideo import storage
from ufvideo.checkpoint import CHECKPOINT_INFO, checkpoint_digest, materialize, read_info, write_info


def _checkpoint(root, weights: bytes = b"w" * 1000):
    root.mkdir(parents=True)
    (root / "model.safetensors").write_bytes(weights)
    (root / "sub").mkdir()
    (root / "sub" / "tokenizer.json").write_text("{}")
    write_info(root, profile="tiny", stage=1, data_digest="abc")
    return root


def test_write_info_fills_defaults_merges_and_reads_back(tmp_path, monkeypatch):
    monkeypatch.setenv("UFVIDEO_GIT_COMMIT", "feedbeef")
    ckpt = _checkpoint(tmp_path / "ckpt")
    info = read_info(ckpt)
    assert info["git_commit"] == "feedbeef" and info["profile"] == "tiny" and info["stage"] == 1
    assert info["created"].endswith("+00:00")
    write_info(ckpt, stage=2, steps=10)
    merged = read_info(ckpt)
    assert (merged["stage"], merged["steps"], merged["created"]) == (2, 10, info["created"])


def test_read_info_names_the_problem(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"no ufvideo.json; is .* a UFVideo checkpoint"):
        read_info(tmp_path)
    (tmp_path / CHECKPOINT_INFO).write_text(json.dumps({"profile": "tiny"}))
    with pytest.raises(ValueError, match="missing required field.*stage, data_digest, git_commit, created"):
        read_info(tmp_path)
    (tmp_path / CHECKPOINT_INFO).write_text("{not json")
    with pytest.raises(ValueError, match=r"ufvideo.json: invalid JSON"):
        read_info(tmp_path)


def test_digest_depends_on_content_and_names_only(tmp_path):
    a = _checkpoint(tmp_path / "a")
    b = tmp_path / "b"
    shutil.copytree(a, b)
    digest = checkpoint_digest(a)
    assert len(digest) == 64 and checkpoint_digest(b) == digest  # location does not matter
    (b / "model.safetensors").write_bytes(b"w" * 999 + b"x")
    assert checkpoint_digest(b) != digest
    shutil.rmtree(b)
    shutil.copytree(a, b)
    (b / "sub" / "tokenizer.json").rename(b / "sub" / "tokenizer2.json")
    assert checkpoint_digest(b) != digest  # same bytes under another name is another checkpoint
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError):
        checkpoint_digest(tmp_path / "empty")


def test_s3_checkpoint_digest_info_and_materialize(tmp_path, s3_bucket):
    local = _checkpoint(tmp_path / "ckpt")
    uri = f"{s3_bucket}/runs/r1/checkpoint"
    storage.copy_tree(local, uri)
    assert checkpoint_digest(uri) == checkpoint_digest(local)
    assert read_info(uri) == read_info(local)
    write_info(uri, stage=2)
    assert read_info(uri)["stage"] == 2
    storage.copy(local / CHECKPOINT_INFO, storage.join(uri, CHECKPOINT_INFO))  # restore

    cache = tmp_path / "cache"
    first = materialize(uri, cache, key="k1")
    assert first.parent == cache and checkpoint_digest(first) == checkpoint_digest(local)
    # Cached: a second call does not touch S3 (the objects are gone) and returns the same directory.
    storage.client().delete_object(Bucket=s3_bucket[5:], Key="runs/r1/checkpoint/model.safetensors")
    assert materialize(uri, cache, key="k1") == first
    with pytest.raises(FileNotFoundError):
        materialize(f"{s3_bucket}/runs/missing", cache)
    assert sorted(p.name for p in cache.iterdir()) == [first.name]  # no half-written entry left behind
    assert materialize(local) == local
    with pytest.raises(FileNotFoundError, match="does not exist"):
        materialize(tmp_path / "nope")
