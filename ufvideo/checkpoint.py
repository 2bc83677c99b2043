"""Checkpoint metadata (`ufvideo.json`), content digests and local materialisation of `s3://` checkpoints.

A checkpoint is a `save_pretrained` directory plus `ufvideo.json` (DESIGN.md 4.3), local or in S3; everything here
goes through `ufvideo.storage`, so the same weights give the same digest wherever they live.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ufvideo import storage
from ufvideo.errors import UFVideoError
from ufvideo.files import temp_dir

log = logging.getLogger(__name__)

CHECKPOINT_INFO = "ufvideo.json"
REQUIRED_INFO = ("profile", "stage", "data_digest", "git_commit", "created")
CACHE_ENV = "UFVIDEO_CHECKPOINT_CACHE"
_COMPLETE_MARK = ".ufvideo-complete"


def write_info(directory: str | os.PathLike[str], **fields: Any) -> dict[str, Any]:
    """Write `ufvideo.json` into a checkpoint directory, merged over any existing one; returns what was written.

    `created` (UTC, ISO 8601) and `git_commit` (the running code) are filled in when not given, because a
    checkpoint without them cannot be traced back to the run that made it.
    """
    uri = storage.join(directory, CHECKPOINT_INFO)
    info: dict[str, Any] = {}
    if storage.exists(uri):
        info = read_info(directory)
    info.update(fields)
    if not info.get("created"):
        info["created"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    if not info.get("git_commit"):
        from ufvideo.tracking import git_commit

        info["git_commit"] = git_commit()
    storage.write_text(uri, json.dumps(info, indent=2, sort_keys=True, default=str) + "\n")
    return info


def read_info(uri: str | os.PathLike[str]) -> dict[str, Any]:
    """`ufvideo.json` of a checkpoint (local directory or `s3://` prefix), checked for the contract's keys."""
    path = storage.join(uri, CHECKPOINT_INFO)
    try:
        text = storage.read_text(path)
    except FileNotFoundError as err:
        raise FileNotFoundError(f"{path}: no {CHECKPOINT_INFO}; is {uri} a UFVideo checkpoint?") from err
    try:
        info = json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: invalid JSON: {err}") from err
    if not isinstance(info, dict):
        raise ValueError(f"{path}: expected a JSON object, got {type(info).__name__}")
    missing = [key for key in REQUIRED_INFO if key not in info]
    if missing:
        raise ValueError(f"{path}: missing required field(s) {', '.join(missing)}")
    return info


def checkpoint_files(uri: str | os.PathLike[str]) -> list[tuple[str, str]]:
    """(relative posix path, full URI) of every file in the checkpoint, sorted by relative path."""
    base = str(uri).rstrip("/")
    files = []
    for full in storage.listdir(uri, recursive=True):
        relative = full[len(base) + 1 :] if storage.is_s3(full) else Path(os.path.relpath(full, base)).as_posix()
        if relative != _COMPLETE_MARK:  # a cache bookkeeping file, not part of the checkpoint
            files.append((relative, full))
    return sorted(files)


def checkpoint_digest(uri: str | os.PathLike[str], workers: int = 8) -> str:
    """sha256 over the sorted `(relative path, sha256 of file)` list: location-independent identity of a checkpoint.

    Files hash in parallel because S3 reads are latency-bound and checkpoints mix a few large shards with
    many small files.
    """
    files = checkpoint_files(uri)
    if not files:
        raise FileNotFoundError(f"{uri}: checkpoint directory is empty")
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        digests = list(pool.map(lambda item: storage.sha256(item[1]), files))
    total = hashlib.sha256()
    for (relative, _), digest in zip(files, digests, strict=True):
        total.update(f"{relative}\t{digest}\n".encode())
    return total.hexdigest()


def cache_dir() -> Path:
    """Where remote checkpoints are materialised: `UFVIDEO_CHECKPOINT_CACHE`, else `~/.cache/ufvideo/checkpoints`."""
    configured = os.environ.get(CACHE_ENV)
    return Path(configured) if configured else Path.home() / ".cache" / "ufvideo" / "checkpoints"


class CheckpointError(UFVideoError):
    """A checkpoint that is incomplete, changed under its completion mark, or not the one that was asked for."""


def _file_sizes(uri: str | os.PathLike[str]) -> dict[str, int]:
    return {relative: size for relative, size in storage.sizes(uri).items() if relative != _COMPLETE_MARK}


def completion_record(directory: str | os.PathLike[str]) -> dict[str, Any]:
    """What the completion mark of a checkpoint says: its digest and every file's size (a cheap listing check)."""
    return {"digest": checkpoint_digest(directory), "files": _file_sizes(directory)}


def publish(local: str | os.PathLike[str], uri: str) -> str:
    """Copy a finished local checkpoint to `uri` (local or `s3://`) and mark it complete last; returns its digest.

    Rewriting a prefix first removes its old mark, then every object the new checkpoint does not have, so a reader
    that comes while the upload runs (or after it died) finds no mark and refuses the prefix instead of mixing
    the two checkpoints.
    """
    record = completion_record(local)
    marker = storage.join(uri, _COMPLETE_MARK)
    storage.remove(marker)
    if storage.exists(uri):
        for relative, full in checkpoint_files(uri):
            if relative not in record["files"]:
                storage.remove(full)
    storage.copy_tree(local, uri)
    storage.write_text(marker, json.dumps(record, indent=2, sort_keys=True) + "\n")
    return str(record["digest"])


def read_completion(uri: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The completion mark of a checkpoint location, or None when it has none (never marked, or being rewritten)."""
    try:
        record = json.loads(storage.read_text(storage.join(uri, _COMPLETE_MARK)))
    except FileNotFoundError:
        return None
    except json.JSONDecodeError:  # a cache entry of an older version (it held the URI as text)
        return None
    if not isinstance(record, dict) or not isinstance(record.get("digest"), str):
        return None
    return record


def materialize(uri: str | os.PathLike[str], cache: str | os.PathLike[str] | None = None, key: str = "") -> Path:
    """A local directory holding the checkpoint: a local path as is, an `s3://` prefix downloaded once per content.

    The cache is keyed by the checkpoint digest written in the prefix's completion mark (or by `key`, the digest
    the caller expects, for prefixes uploaded without a mark), never by the URI: a prefix rewritten by a new
    training gets a new entry. Before use the prefix's object listing is checked against the mark, the cached
    entry's files against it too, and a download is hashed and compared with the digest before it is renamed into
    place, so a partial or changed download is never marked complete. `key` given and different from the mark's
    digest is refused: the prefix holds other weights than the caller (e.g. a registered version) expects.
    """
    if not storage.is_s3(uri):
        local = Path(uri)
        if not local.is_dir():
            raise FileNotFoundError(f"{uri}: checkpoint directory does not exist")
        return local
    mark = read_completion(uri)
    if mark is None and not key:
        if not storage.exists(uri):
            raise FileNotFoundError(f"{uri}: no such checkpoint (no objects under the prefix)")
        raise CheckpointError(
            f"{uri}: no completion mark ({_COMPLETE_MARK}); the upload is incomplete, still running or was not made "
            "by `ufvideo train --output-uri`; refusing to use it"
        )
    digest = str(mark["digest"]) if mark is not None else key
    if key and key != digest:
        raise CheckpointError(f"{uri}: holds checkpoint {digest[:12]}, but {key[:12]} was expected (prefix rewritten)")
    if mark is not None and _file_sizes(uri) != mark.get("files"):
        raise CheckpointError(f"{uri}: objects differ from its completion mark (changed after it was written)")
    root = Path(cache) if cache is not None else cache_dir()
    target = root / digest[:32]
    if _entry_ok(target, digest):
        return target
    root.mkdir(parents=True, exist_ok=True)
    staging = temp_dir(root, f".{target.name}.")
    try:
        storage.copy_tree(str(uri), staging)
        (staging / _COMPLETE_MARK).unlink(missing_ok=True)
        record = completion_record(staging)
        if record["digest"] != digest:
            raise CheckpointError(
                f"{uri}: downloaded content has digest {record['digest'][:12]}, expected {digest[:12]} "
                "(the prefix changed during the download, or its objects are corrupt)"
            )
        (staging / _COMPLETE_MARK).write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
        _install(staging, target, digest)
    finally:
        with contextlib.suppress(FileNotFoundError):
            shutil.rmtree(staging)
    return target


def _entry_ok(target: Path, digest: str) -> bool:
    """A cache entry is usable when its mark names `digest` and its files have the sizes the mark lists."""
    mark = read_completion(target) if target.is_dir() else None
    return mark is not None and mark["digest"] == digest and _file_sizes(target) == mark.get("files")


def _install(staging: Path, target: Path, digest: str) -> None:
    """Rename a verified download into place, first moving aside a damaged entry of the same digest."""
    if target.exists() and not _entry_ok(target, digest):
        log.warning("replacing damaged checkpoint cache entry %s", target)
        broken = target.with_name(f".{target.name}.broken-{os.getpid()}")
        os.replace(target, broken)
        shutil.rmtree(broken, ignore_errors=True)
    try:
        os.replace(staging, target)
    except OSError:  # another process finished the same download first
        if not _entry_ok(target, digest):
            raise
