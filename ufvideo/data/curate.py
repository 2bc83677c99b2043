"""Curation step: combine curated inputs into one training dataset per a seeded mixture recipe.

Each input is a curated directory (the synthetic set, or a converted public source); the recipe says how
many records of each to draw and how often to repeat them, as UFVideo's training list repeats some sets.
An input may also name a raw public source (`source`, `root`, converter `options`): it is converted into
`path` first, and reused on later runs while its conversion settings are unchanged.
"""

from __future__ import annotations

import logging
import os
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ufvideo.config import ConfigError, to_dict
from ufvideo.data.schema import TASKS
from ufvideo.data.shards import CuratedWriter, data_root, iter_records, read_manifest
from ufvideo.errors import UFVideoError

log = logging.getLogger(__name__)


@dataclass
class SourceSpec:
    """One input of a mixture: a curated directory and how to sample it."""

    name: str
    path: str
    split: str | None = None  # None keeps every split of the input, each record in its own split
    tasks: list[str] | None = None  # None keeps every task
    sample: int | None = None  # draw this many records (seeded, without replacement); None keeps all
    repeat: int = 1  # repetition factor after sampling (UFVideo repeats e.g. Ref-DAVIS17 x10)
    source: str | None = None  # a raw public source to convert into `path` first (a `ufvideo data convert` name)
    root: str | None = None  # that source's raw root directory
    source_split: str = "train"  # the source's own split to convert (e.g. MeViS valid_u)
    options: dict[str, Any] = field(default_factory=dict)  # converter options (e.g. LLaVA-Video open_ended: 100000)

    def __post_init__(self) -> None:
        if (self.source is None) != (self.root is None):
            raise ValueError(f"sources[{self.name}]: 'source' and 'root' go together (a raw source to convert)")
        if self.repeat < 1:
            raise ValueError(f"sources[{self.name}].repeat must be >= 1, got {self.repeat}")
        if self.sample is not None and self.sample < 0:
            raise ValueError(f"sources[{self.name}].sample must be >= 0, got {self.sample}")
        unknown = sorted(set(self.tasks or ()) - set(TASKS))
        if unknown:
            raise ValueError(f"sources[{self.name}].tasks: unknown {unknown}; allowed: {', '.join(TASKS)}")


@dataclass
class CurateConfig:
    out: str = "data/curated"
    seed: int = 0
    shard_size: int = 2000
    sources: list[SourceSpec] = field(default_factory=list)


def _rebase(video: str | list[str], src_root: Path, out_dir: Path) -> str | list[str]:
    """Re-express a video path relative to the output directory so the new dataset resolves it."""

    def one(path: str) -> str:
        absolute = Path(path) if os.path.isabs(path) else src_root / path
        return os.path.relpath(absolute, out_dir)

    return [one(p) for p in video] if isinstance(video, list) else one(video)


def _stream(spec: SourceSpec, splits: list[str], validate: bool) -> Iterator[tuple[str, dict[str, Any]]]:
    """(split, record) pairs of one source after split/task filtering, streamed from its shards."""
    for split in splits:
        for record in iter_records(spec.path, split=split, validate=validate):
            if spec.tasks is None or record["task"] in spec.tasks:
                yield split, record


def _select(spec: SourceSpec, rng: random.Random) -> tuple[list[str], set[int] | None, int]:
    """(splits, indices to keep or None for all, count kept): sampling needs only a count, so inputs of any size
    are streamed twice instead of being held in memory."""
    manifest = read_manifest(spec.path)
    splits = [spec.split] if spec.split is not None else _splits(manifest)
    total = sum(1 for _ in _stream(spec, splits, validate=False))
    if spec.sample is None:
        return splits, None, total
    if spec.sample > total:
        raise ConfigError(f"sources[{spec.name}].sample={spec.sample} exceeds the {total} available records")
    return splits, set(rng.sample(range(total), spec.sample)), spec.sample


def _ensure_converted(spec: SourceSpec, seed: int, shard_size: int) -> None:
    """Convert a raw source into `spec.path` unless a finished conversion with the same settings is there."""
    from ufvideo.data.convert import ConvertConfig, identity
    from ufvideo.data.convert import run as convert

    assert spec.source is not None and spec.root is not None
    cfg = ConvertConfig(
        source=spec.source,
        root=spec.root,
        out=spec.path,
        split=spec.source_split,
        seed=seed,
        shard_size=shard_size,
        options=dict(spec.options),
    )
    try:
        done = read_manifest(spec.path).get("recipe", {}).get("convert") == identity(cfg)
    except (OSError, UFVideoError):
        done = False
    if done:
        log.info("curate: %s already converted in %s", spec.name, spec.path)
    else:
        convert(cfg)


def _splits(manifest: dict[str, Any]) -> list[str]:
    return sorted({shard["split"] for shard in manifest["shards"]})


def curate(cfg: CurateConfig) -> dict[str, Any]:
    """Write the mixture to `cfg.out`; returns its manifest (with the digest later steps are keyed on). Untracked:
    `run` is the tracked step."""
    if not cfg.sources:
        raise ConfigError("curate: the recipe lists no sources")
    out_dir = Path(cfg.out)
    rng = random.Random(cfg.seed)
    with CuratedWriter(out_dir, recipe=to_dict(cfg), shard_size=cfg.shard_size) as writer:
        for spec in cfg.sources:
            if spec.source is not None:
                _ensure_converted(spec, cfg.seed, cfg.shard_size)
            src_root = data_root(spec.path)
            splits, keep, count = _select(spec, rng)
            for rep in range(spec.repeat):
                for n, (split, record) in enumerate(_stream(spec, splits, validate=True)):
                    if keep is not None and n not in keep:
                        continue
                    record["video"] = _rebase(record["video"], src_root, out_dir.resolve())
                    if rep:
                        record["id"] = f"{record['id']}#rep{rep}"
                    writer.write(record, split=split)
            log.info("curate: %s -> %d records x %d", spec.name, count, spec.repeat)
    return read_manifest(out_dir)


def run(cfg: CurateConfig) -> dict[str, Any]:
    """The curate step: `curate` inside its own MLflow run (config as params, output digest, records, rejects)."""
    from ufvideo import tracking

    with tracking.start_run("curate", params=to_dict(cfg)):
        manifest = curate(cfg)
        tracking.log_params({"output_digest": manifest["digest"]})
        tracking.log_metrics({"records": manifest["records"], "rejects": manifest["rejects"]["total"]})
    return manifest
