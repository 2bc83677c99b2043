"""A curated dataset on disk: JSONL shards per split plus `manifest.json` (counts, sha256 per shard, recipe).

Shards are written under a temp name and renamed when complete, and the manifest is written last, so a
directory with a manifest is always complete and a crashed run never leaves a shard a reader would trust.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from ufvideo.data.schema import RecordError, record_errors
from ufvideo.errors import DataError, UFVideoError
from ufvideo.files import read_json, sha256_file, sha256_text, write_json

MANIFEST = "manifest.json"
FORMAT = "ufvideo-curated"
FORMAT_VERSION = 1
SPLITS = ("train", "test", "val")


def _shard_name(split: str, index: int) -> str:
    return f"{split}-{index:05d}.jsonl"


def serialize(record: Mapping[str, Any]) -> str:
    """The one JSONL line format of shards (sorted keys, UTF-8), so equal records give equal bytes."""
    return json.dumps(record, ensure_ascii=False, sort_keys=True)


def dataset_digest(shards: list[Mapping[str, Any]]) -> str:
    """Digest of a dataset's content: it changes iff any shard's bytes or the shard layout change."""
    return sha256_text(json.dumps([[s["path"], s["sha256"]] for s in shards], sort_keys=True))


class CuratedWriter:
    """Streams validated records into per-split shards; `close()` writes the manifest.

    Used as a context manager: on an exception, partial shards are deleted and no manifest is written,
    so the output directory never claims to hold data it does not.
    """

    def __init__(
        self,
        out_dir: str | os.PathLike[str],
        *,
        data_root: str = ".",
        recipe: Mapping[str, Any] | None = None,
        shard_size: int = 2000,
    ) -> None:
        if shard_size <= 0:
            raise ValueError(f"shard_size must be positive, got {shard_size}")
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        _retire_previous(self.out_dir)
        self.data_root, self.recipe, self.shard_size = data_root, dict(recipe or {}), shard_size
        self._open: dict[str, tuple[TextIO, Path, int, int]] = {}  # split -> (handle, tmp path, index, count)
        self._next_index: Counter[str] = Counter()
        self._shards: list[dict[str, Any]] = []
        self._by_source: Counter[str] = Counter()
        self._by_task: Counter[str] = Counter()
        self._by_split: Counter[str] = Counter()
        self._by_split_task: dict[str, Counter[str]] = {}
        self._ids: set[str] = set()
        self._rejects: Counter[str] = Counter()
        self._closed = False

    def __enter__(self) -> CuratedWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *_: Any) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def write(self, record: Mapping[str, Any], split: str = "train") -> None:
        """Validate and append one record; an invalid or duplicate record raises `RecordError`."""
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; allowed: {', '.join(SPLITS)}")
        errors = record_errors(record, file=f"<record for {self.out_dir}/{split}>", line=len(self._ids) + 1)
        if errors:
            raise errors[0]
        self.write_validated(
            serialize(record), split, record_id=record["id"], source=record["source"], task=record["task"]
        )

    def write_validated(self, line: str, split: str, *, record_id: str, source: str, task: str) -> None:
        """Append a record already validated and `serialize`d elsewhere (converter worker processes).

        Validating in the workers keeps the single writing process from becoming the bottleneck; ids are still
        checked for duplicates here, the only place that sees every record.
        """
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; allowed: {', '.join(SPLITS)}")
        if record_id in self._ids:
            raise RecordError(f"<record for {self.out_dir}>", len(self._ids) + 1, "id", "duplicate id", record_id)
        self._ids.add(record_id)
        handle, tmp, index, count = self._handle(split)
        handle.write(line + "\n")
        self._open[split] = (handle, tmp, index, count + 1)
        self._by_source[source] += 1
        self._by_task[task] += 1
        self._by_split[split] += 1
        self._by_split_task.setdefault(split, Counter())[task] += 1
        if count + 1 >= self.shard_size:
            self._finish(split)

    def count_reject(self, source: str) -> None:
        """Rejected records are counted in the manifest so a lossy conversion is never silent."""
        self._rejects[source] += 1

    def _handle(self, split: str) -> tuple[TextIO, Path, int, int]:
        if split not in self._open:
            index = self._next_index[split]
            self._next_index[split] += 1
            tmp = self.out_dir / f".{_shard_name(split, index)}.tmp"
            self._open[split] = (open(tmp, "w", encoding="utf-8"), tmp, index, 0)  # noqa: SIM115 (closed in _finish)
        return self._open[split]

    def _finish(self, split: str) -> None:
        handle, tmp, index, count = self._open.pop(split)
        handle.flush()
        os.fsync(handle.fileno())
        handle.close()
        final = self.out_dir / _shard_name(split, index)
        os.replace(tmp, final)
        self._shards.append({"path": final.name, "split": split, "records": count, "sha256": sha256_file(final)})

    def abort(self) -> None:
        for handle, tmp, _, _ in self._open.values():
            handle.close()
            tmp.unlink(missing_ok=True)
        self._open.clear()
        self._closed = True

    def close(self) -> dict[str, Any]:
        if self._closed:
            raise RuntimeError("CuratedWriter is already closed")
        for split in list(self._open):
            self._finish(split)
        self._closed = True
        shards = sorted(self._shards, key=lambda s: s["path"])
        manifest = {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "data_root": self.data_root,
            "records": sum(self._by_split.values()),
            "counts": {
                "by_source": dict(sorted(self._by_source.items())),
                "by_task": dict(sorted(self._by_task.items())),
                "by_split": dict(sorted(self._by_split.items())),
                "by_split_task": {k: dict(sorted(v.items())) for k, v in sorted(self._by_split_task.items())},
            },
            "rejects": {"total": sum(self._rejects.values()), "by_source": dict(sorted(self._rejects.items()))},
            "shards": shards,
            "recipe": self.recipe,
            "digest": dataset_digest(shards),
        }
        write_json(self.out_dir / MANIFEST, manifest)
        return manifest


def _retire_previous(out_dir: Path) -> None:
    """Remove an earlier dataset's manifest (first) and shards before writing a new one into the same directory.

    The manifest goes first, so a rewrite interrupted at any point leaves a directory that readers refuse
    ("no manifest") instead of an old manifest beside new shards.
    """
    manifest = out_dir / MANIFEST
    if not manifest.exists():
        return
    try:
        old = [str(s["path"]) for s in read_json(manifest).get("shards", [])]
    except (ValueError, AttributeError, TypeError, KeyError, UFVideoError):
        old = []
    manifest.unlink()
    _fsync_dir(out_dir)
    for name in old:
        if "/" not in name and name.endswith(".jsonl"):
            (out_dir / name).unlink(missing_ok=True)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read_manifest(dataset_dir: str | os.PathLike[str]) -> dict[str, Any]:
    path = Path(dataset_dir) / MANIFEST
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no manifest; not a curated dataset directory (or its writer did not finish)")
    manifest = read_json(path)
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise DataError(f"{path}: field 'format': expected {FORMAT!r}")
    if manifest.get("version") != FORMAT_VERSION:
        raise DataError(f"{path}: field 'version': unsupported version {manifest.get('version')!r}")
    return manifest


def data_root(dataset_dir: str | os.PathLike[str], manifest: Mapping[str, Any] | None = None) -> Path:
    """Where a dataset's relative `video` paths resolve: `data_root` of the manifest, relative to the dataset dir."""
    manifest = manifest if manifest is not None else read_manifest(dataset_dir)
    return (Path(dataset_dir) / manifest.get("data_root", ".")).resolve()


def iter_records(
    dataset_dir: str | os.PathLike[str], split: str | None = None, validate: bool = True
) -> Iterator[dict[str, Any]]:
    """Stream records of one split (or all), in shard order; errors name the shard file and line."""
    manifest = read_manifest(dataset_dir)
    for shard in manifest["shards"]:
        if split is not None and shard["split"] != split:
            continue
        path = Path(dataset_dir) / shard["path"]
        verify_shard(dataset_dir, shard)  # before the first record: never yield records the manifest does not vouch for
        with open(path, "rb") as handle:
            for line_no, line in enumerate(handle, start=1):
                record = parse_line(line, path, line_no)
                if validate:
                    errors = record_errors(record, str(path), line_no)
                    if errors:
                        raise errors[0]
                yield record


def parse_line(line: bytes, path: str | os.PathLike[str], line_no: int) -> dict[str, Any]:
    """One shard line -> its record; a line that is not a JSON object raises `RecordError` naming file and line."""
    try:
        record = json.loads(line)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        cut = "" if line.endswith(b"\n") else " (the line is cut short: truncated file?)"
        raise RecordError(str(path), line_no, "<line>", f"invalid JSON: {getattr(exc, 'msg', exc)}{cut}") from None
    if not isinstance(record, dict):
        raise RecordError(str(path), line_no, "<line>", f"expected a JSON object, got {type(record).__name__}")
    return record


def verify_shard(dataset_dir: str | os.PathLike[str], shard: Mapping[str, Any]) -> Path:
    """The shard's path, after checking it exists and its sha256 matches the manifest (streamed: ~1 GB/s)."""
    path = Path(dataset_dir) / shard["path"]
    if not path.is_file():
        raise ShardError(f"{path}: shard listed in {Path(dataset_dir) / MANIFEST} is missing")
    if sha256_file(path) != shard.get("sha256"):
        raise ShardError(
            f"{path}: sha256 differs from {Path(dataset_dir) / MANIFEST} (the shard was modified or a rewrite of "
            "the directory was interrupted); rebuild the dataset"
        )
    return path


class ShardError(UFVideoError):
    """A shard that does not match its manifest: the dataset cannot be trusted as described."""


@dataclass
class ValidationReport:
    """Everything `ufvideo data validate` found, so the CLI can print counts and every error together."""

    records: int = 0
    by_task: Counter[str] = field(default_factory=Counter)
    by_split: Counter[str] = field(default_factory=Counter)
    by_source: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


def validate_dir(dataset_dir: str | os.PathLike[str], max_errors: int = 1000, deep: bool = False) -> ValidationReport:
    """Check a curated directory end to end: manifest, shard digests, every record, unique ids, counts; with
    `deep`, also every record's media (videos decode to their last frame, masks decode; `ufvideo.data.media`)."""
    report = ValidationReport()
    try:
        manifest = read_manifest(dataset_dir)
    except (OSError, ValueError, UFVideoError) as exc:
        report.errors.append(str(exc))
        return report
    seen: dict[str, str] = {}
    for shard in manifest.get("shards", []):
        path = Path(dataset_dir) / shard["path"]
        if not path.is_file():
            report.errors.append(f"{path}: shard listed in the manifest is missing")
            continue
        if sha256_file(path) != shard["sha256"]:
            report.errors.append(f"{path}: sha256 differs from the manifest (the shard was modified)")
        root = data_root(dataset_dir, manifest) if deep else None
        _validate_shard(path, shard, report, seen, root)
        if len(report.errors) >= max_errors:
            report.errors.append(f"stopped after {max_errors} errors")
            return report
    counts = manifest.get("counts", {})
    if dict(report.by_task) != counts.get("by_task"):
        report.errors.append(f"{Path(dataset_dir) / MANIFEST}: field 'counts.by_task' disagrees with the shards")
    return report


def _validate_shard(
    path: Path, shard: Mapping[str, Any], report: ValidationReport, seen: dict[str, str], root: Path | None = None
) -> None:
    n = 0
    with open(path, encoding="utf-8") as handle:
        for line_no, line in enumerate(handle, start=1):
            n += 1
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                report.errors.append(f"{path}:{line_no}: field '<line>': invalid JSON: {exc.msg}")
                continue
            errors = record_errors(record, str(path), line_no)
            report.errors.extend(str(e) for e in errors)
            if errors:
                continue
            where = f"{path}:{line_no}"
            if record["id"] in seen:
                report.errors.append(f"{where}: field 'id': duplicate of {seen[record['id']]}")
            seen[record["id"]] = where
            if root is not None:
                from ufvideo.data.media import media_errors  # decoders: imported only for a deep validation

                report.errors.extend(media_errors(record, root, where))
            report.records += 1
            report.by_task[record["task"]] += 1
            report.by_source[record["source"]] += 1
            report.by_split[shard["split"]] += 1
    if n != shard.get("records"):
        report.errors.append(f"{path}: has {n} records, the manifest says {shard.get('records')}")
