"""Checkpoint metadata, location-independent digests and materialisation of s3:// checkpoints (moto)."""

from __future__ import annotations

import json
import shutil

import pytest

from ufvideo import storage
from ufvideo.checkpoint import (
    CHECKPOINT_INFO,
    CheckpointError,
    checkpoint_digest,
    materialize,
    publish,
    read_info,
    write_info,
)


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
    digest = publish(local, uri)
    assert digest == checkpoint_digest(uri) == checkpoint_digest(local)  # the completion mark is not content
    assert read_info(uri) == read_info(local)

    cache = tmp_path / "cache"
    first = materialize(uri, cache)
    assert first == cache / digest[:32] and checkpoint_digest(first) == digest
    assert materialize(uri, cache) == first and materialize(uri, cache, key=digest) == first
    with pytest.raises(CheckpointError, match="was expected"):
        materialize(uri, cache, key="0" * 64)  # a registered digest the prefix no longer holds
    with pytest.raises(FileNotFoundError):
        materialize(f"{s3_bucket}/runs/missing", cache)
    assert sorted(p.name for p in cache.iterdir()) == [first.name]  # no half-written entry left behind
    assert materialize(local) == local
    with pytest.raises(FileNotFoundError, match="does not exist"):
        materialize(tmp_path / "nope")


def test_a_rewritten_prefix_is_never_served_from_the_old_cache_entry(tmp_path, s3_bucket):
    """Train to s3://b/ckpt, evaluate, train again to the same URI, evaluate: the second read must see the second
    weights (the cache used to be keyed by URI and returned the first)."""
    uri, cache = f"{s3_bucket}/ckpt", tmp_path / "cache"
    old = publish(_checkpoint(tmp_path / "one", b"1" * 1000), uri)
    assert checkpoint_digest(materialize(uri, cache)) == old
    new = publish(_checkpoint(tmp_path / "two", b"2" * 1000), uri)
    assert new != old
    again = materialize(uri, cache)
    assert checkpoint_digest(again) == new and (again / "model.safetensors").read_bytes() == b"2" * 1000


def test_a_prefix_without_its_completion_mark_is_refused(tmp_path, s3_bucket):
    local = _checkpoint(tmp_path / "ckpt")
    uri, cache = f"{s3_bucket}/partial", tmp_path / "cache"
    storage.copy(local / CHECKPOINT_INFO, storage.join(uri, CHECKPOINT_INFO))  # an upload cut short
    with pytest.raises(CheckpointError, match="no completion mark"):
        materialize(uri, cache)
    assert not cache.exists() or not any(cache.iterdir())
    publish(local, uri)  # while rewriting, the mark is removed first: a reader in between is refused
    storage.remove(storage.join(uri, ".ufvideo-complete"))
    with pytest.raises(CheckpointError, match="no completion mark"):
        materialize(uri, cache)
    # Without a mark, only content verified against an expected digest is accepted.
    assert checkpoint_digest(materialize(uri, cache, key=checkpoint_digest(local))) == checkpoint_digest(local)


def test_objects_changed_under_the_mark_and_a_damaged_cache_entry(tmp_path, s3_bucket):
    local = _checkpoint(tmp_path / "ckpt")
    uri, cache = f"{s3_bucket}/ckpt", tmp_path / "cache"
    digest = publish(local, uri)
    entry = materialize(uri, cache)
    (entry / "model.safetensors").write_bytes(b"w" * 10)  # damaged on disk: verified before use, fetched again
    assert checkpoint_digest(materialize(uri, cache)) == digest
    storage.write_bytes(storage.join(uri, "model.safetensors"), b"edited")
    with pytest.raises(CheckpointError, match="differ from its completion mark"):
        materialize(uri, cache)
