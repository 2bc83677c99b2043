"""Where a benchmark lives under `--data-root`: the benchmark's own folder as downloaded (any name), or a parent
holding it under its customary name (`mvbench/`, `charades/`, ...; any letter case). A benchmark is recognised by
files only it has, so a miss says exactly which files were looked for, and where.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ufvideo.errors import UFVideoError


class DataRootError(UFVideoError, FileNotFoundError):
    """`--data-root` holds no recognisable copy of the benchmark; the message lists every path looked for."""


def _has(folder: Path, marker: str) -> bool:
    return any(folder.glob(marker)) if any(c in marker for c in "*?[") else (folder / marker).exists()


def _candidates(data_root: Path, names: Sequence[str]) -> list[Path]:
    """The folder itself, then its children named like the benchmark (exact names first, then any letter case)."""
    found = [data_root, *(data_root / name for name in names)]
    if data_root.is_dir():
        lowered = {name.lower() for name in names}
        found += sorted(child for child in data_root.iterdir() if child.is_dir() and child.name.lower() in lowered)
    return list(dict.fromkeys(found))


def benchmark_root(data_root: str | Path, names: Sequence[str], markers: Sequence[str], what: str) -> Path:
    """The folder that holds one of `markers` (paths relative to the benchmark folder; globs allowed).

    names: the customary folder name first, then others it is published under. Raises `DataRootError` naming the
    files looked for when neither `data_root` nor a child of it holds the benchmark.
    """
    root = Path(data_root)
    if not root.is_dir():
        raise DataRootError(f"--data-root {root}: no such folder (expected the {what} folder or its parent)")
    candidates = _candidates(root, names)
    for folder in candidates:
        if any(_has(folder, marker) for marker in markers):
            return folder
    looked = ", ".join(str(folder / marker) for folder in candidates[:2] for marker in markers)
    raise DataRootError(
        f"--data-root {root}: no {what} found; looked for {looked}. Point --data-root at the {what} folder as "
        f"downloaded, or at a folder holding it as {names[0]}/"
    )
