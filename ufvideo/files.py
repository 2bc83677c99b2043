"""Local-file primitives shared by every step: atomic writes and content digests.

Every writer in the project goes through `atomic_write` so an interrupted run never leaves a
half-written shard, manifest or checkpoint file where a reader would trust it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from ufvideo.errors import DataError

_CHUNK = 1 << 20


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike[str], mode: str = "w", encoding: str | None = "utf-8") -> Iterator[IO[Any]]:
    """Open a temp file beside `path`; on clean exit fsync and rename it over `path`.

    The temp file lives in the same directory so the final `os.replace` is atomic on POSIX.
    On any exception the temp file is removed and the previous content of `path` is untouched.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    binary = "b" in mode
    fd, tmp = temp_file(target)
    try:
        with os.fdopen(fd, mode, encoding=None if binary else encoding) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def umask() -> int:
    """The process umask, read without changing it (`os.umask` can only be read by setting it, racing threads)."""
    try:
        with open("/proc/self/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    current = os.umask(0o022)
    os.umask(current)
    return current


def temp_file(target: Path) -> tuple[int, str]:
    """`mkstemp` beside `target`, but with the mode a plain `open` would give (0666 & ~umask), not 0600: outputs on
    a shared volume must stay readable by the other users (pods) the umask allows."""
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.fchmod(fd, 0o666 & ~umask())
    return fd, tmp


def umask_mode(path: str | os.PathLike[str]) -> None:
    """Give a file the mode a plain `open` would have (0666 & ~umask); for writers that create files 0600
    (safetensors does), so a pod running as another UID on the shared volume can still read them."""
    os.chmod(path, 0o666 & ~umask())


def temp_dir(parent: Path, prefix: str) -> Path:
    """`mkdtemp` with the mode `mkdir` would give (0777 & ~umask) instead of 0700, for the same reason."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    path.chmod(0o777 & ~umask())
    return path


def write_json(path: str | os.PathLike[str], obj: Any, indent: int | None = 2) -> None:
    """Write JSON atomically with sorted keys, so identical content gives identical bytes."""
    with atomic_write(path) as handle:
        json.dump(obj, handle, indent=indent, sort_keys=True, ensure_ascii=False)
        handle.write("\n")


def read_json(path: str | os.PathLike[str], what: str = "file") -> Any:
    """The one JSON reader: a missing file is a FileNotFoundError naming it (and `what` it is), invalid JSON a
    `DataError` naming the file and line."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"{path}: {what} not found")
    with open(path, encoding="utf-8") as handle:
        try:
            return json.load(handle)
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}: invalid JSON: {exc.msg} (line {exc.lineno})") from exc


def file_identity(path: Path) -> tuple[str, int, int]:
    """(path, size, mtime in ns): what tells a file's current content from an earlier one without reading it, for
    caches of what was read from it (video headers, decoded frames). Raises OSError if the file is gone."""
    stat = path.stat()
    return str(path), stat.st_size, stat.st_mtime_ns


def sha256_file(path: str | os.PathLike[str]) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
