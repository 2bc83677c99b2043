"""Checkpoint metadata (`ufvideo.json`), content digests and local materialisation of `s3://` checkpoints.

A checkpoint is a `save_pretrained` directory plus `ufvideo.json` (DESIGN.md 4.3), local or in S3; everything here
goes through `ufvideo.storage`, so the same weights give the same digest wherever they live.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ufvideo import storage

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


def materialize(uri: str | os.PathLike[str], cache: str | os.PathLike[str] | None = None, key: str = "") -> Path:
    """A local directory holding the checkpoint: a local path as is, an `s3://` prefix downloaded once.

    The download lands in a temp directory that is renamed into place only when complete, so an interrupted
    download is never mistaken for a checkpoint. `key` (e.g. the checkpoint digest) names the cache entry;
    without it the URI does, so a rewritten prefix should be given a new key.
    """
    if not storage.is_s3(uri):
        local = Path(uri)
        if not local.is_dir():
            raise FileNotFoundError(f"{uri}: checkpoint directory does not exist")
        return local
    root = Path(cache) if cache is not None else cache_dir()
    name = key or hashlib.sha256(str(uri).encode()).hexdigest()
    target = root / name[:32]
    if (target / _COMPLETE_MARK).exists():
        return target
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=root))
    try:
        storage.copy_tree(str(uri), staging)
        (staging / _COMPLETE_MARK).write_text(str(uri) + "\n")
        try:
            os.replace(staging, target)
        except OSError:  # another process finished the same download first
            if not (target / _COMPLETE_MARK).exists():
                raise
    finally:
        with contextlib.suppress(FileNotFoundError):
            shutil.rmtree(staging)
    return target
