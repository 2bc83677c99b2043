"""Convert one raw public source into a curated directory: `ufvideo data convert --source NAME --root DIR --out DIR`.

Units (input files, batches of videos) are converted in worker processes into checkpointed part files under
`OUT/.work/`; an interrupted run reuses every finished unit and chunk. A single-process merge then applies the
published per-group sampling (seeded), writes the shards, `rejects.jsonl` and the manifest, in unit order,
so the output does not depend on the number of workers. Video paths in records are relative to the raw root,
and the manifest's `data_root` points there (relative to OUT).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import multiprocessing
import os
import random
import shutil
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from ufvideo.config import ConfigError, from_dict, to_dict
from ufvideo.data.schema import RecordError, record_errors
from ufvideo.data.shards import CuratedWriter, read_manifest, serialize
from ufvideo.data.sources import get_source
from ufvideo.data.sources.base import BadJson, Context, Invalid, Out, Reject, Skip, Source, Unit
from ufvideo.files import atomic_write, read_json, write_json
from ufvideo.process import die_with_parent

log = logging.getLogger(__name__)
WORK = ".work"
REJECTS = "rejects.jsonl"


@dataclass
class ConvertConfig:
    source: str
    root: str
    out: str
    split: str = "train"  # the source's own split name (e.g. MeViS valid_u); mapped to train/val/test
    seed: int = 0
    workers: int = 0  # 0: one per core
    shard_size: int = 2000
    checkpoint_every: int = 20_000  # source records per resumable chunk of a unit
    keep_work: bool = False
    options: dict[str, Any] = field(default_factory=dict)  # the converter's own options (its `Options` dataclass)


def make_context(cfg: ConvertConfig) -> tuple[Source, Context]:
    source = get_source(cfg.source)
    if cfg.split not in source.splits:
        raise ConfigError(
            f"source {cfg.source!r}: split {cfg.split!r} not supported; allowed: {', '.join(source.splits)}"
        )
    options = from_dict(source.options, cfg.options, where="options")
    root = Path(cfg.root).resolve()
    if not root.is_dir():
        raise FileNotFoundError(f"{cfg.source}: raw root not found: {root}")
    work = Path(cfg.out).resolve() / WORK
    ctx = Context(cfg.source, root, cfg.split, source.splits[cfg.split], cfg.seed, options, work)
    return source, ctx


def identity(cfg: ConvertConfig) -> dict[str, Any]:
    """What the part files depend on: a resumed run may reuse them only if this is unchanged."""
    data = to_dict(cfg)
    for key in ("out", "workers", "keep_work", "shard_size"):
        data.pop(key)
    data["root"] = str(Path(cfg.root).resolve())
    return data


class _Chunk:
    """One checkpointed part file of a unit: records and rejects as tab-separated lines, plus a stats sidecar."""

    def __init__(self, unit_dir: Path, number: int, start: int) -> None:
        self.path = unit_dir / f"c{number:05d}.part"
        self.tmp = unit_dir / f".c{number:05d}.part.tmp"
        self.handle = open(self.tmp, "w", encoding="utf-8")  # noqa: SIM115 (closed in finish)
        self.start, self.groups, self.skips, self.rejects = start, Counter(), Counter(), 0

    def add(self, item: Out | Reject | Skip, ctx: Context, unit: Unit, index: int) -> None:
        if isinstance(item, Out):
            record = item.record
            errors = record_errors(record, file=unit.file, line=index)
            if errors:
                item = Reject(unit.file, index, errors[0].field, errors[0].message)
            else:
                fields = (ctx.out_split, item.group, record["id"], record["task"], serialize(record))
                self.handle.write("R\t" + "\t".join(fields) + "\n")
                self.groups[item.group] += 1
                return
        if isinstance(item, Reject):
            self.handle.write("X\t" + json.dumps({**dataclasses.asdict(item), "source": ctx.source}) + "\n")
            self.rejects += 1
        else:
            self.skips[item.reason] += 1

    def finish(self, next_index: int) -> dict[str, Any]:
        self.handle.close()
        os.replace(self.tmp, self.path)
        stats = {"next": next_index, "groups": dict(self.groups), "skips": dict(self.skips), "rejects": self.rejects}
        write_json(self.path.with_suffix(".json"), stats, indent=None)
        return stats


def _convert_unit(job: tuple[ConvertConfig, int, Unit, bool]) -> int:
    """Convert one unit into checkpointed chunks; returns the unit index. Runs in a worker process."""
    cfg, number, unit, progress = job
    source, ctx = make_context(cfg)
    unit_dir = ctx.work / f"u{number:05d}"
    if (unit_dir / "done").is_file():
        return number
    unit_dir.mkdir(parents=True, exist_ok=True)
    finished = sorted(unit_dir.glob("c*.json"))
    start = read_json(finished[-1])["next"] if finished else 0
    chunk = _Chunk(unit_dir, len(finished), start)
    if start == 0:
        for reject in unit.rejects:
            chunk.add(reject, ctx, unit, reject.index)
    index = start - 1
    bar = tqdm(desc=unit.label, unit="rec", disable=not progress or None, leave=False)
    for index, raw in source.records(ctx, unit, start):
        for item in _safe_convert(source, ctx, unit, index, raw):
            chunk.add(item, ctx, unit, index)
        bar.update()
        if index + 1 - chunk.start >= cfg.checkpoint_every:
            chunk.finish(index + 1)
            chunk = _Chunk(unit_dir, len(list(unit_dir.glob("c*.json"))), index + 1)
    bar.close()
    chunk.finish(index + 1)
    (unit_dir / "done").write_text("ok\n")
    return number


def _safe_convert(source: Source, ctx: Context, unit: Unit, index: int, raw: Any) -> list[Out | Reject | Skip]:
    """A converter failure on one record becomes a reject naming it; the run goes on."""
    if isinstance(raw, BadJson):
        return [Reject(unit.file, index, "<json>", raw.message)]
    try:
        return list(source.convert(ctx, unit, index, raw))
    except Invalid as exc:
        return [Reject(unit.file, index, exc.field, exc.reason)]
    except Exception as exc:  # a converter bug on odd input must not lose the other million records
        log.debug("convert %s:%d failed", unit.file, index, exc_info=True)
        return [Reject(unit.file, index, "<record>", f"{type(exc).__name__}: {exc}")]


def _prepare_work(cfg: ConvertConfig, work: Path) -> None:
    wanted = identity(cfg)
    marker = work / "config.json"
    if work.is_dir() and (not marker.is_file() or read_json(marker) != wanted):
        log.info("convert: discarding parts of a run with another configuration in %s", work)
        shutil.rmtree(work)
    work.mkdir(parents=True, exist_ok=True)
    if not marker.is_file():
        write_json(marker, wanted)


def _run_units(cfg: ConvertConfig, units: list[Unit]) -> None:
    workers = min(cfg.workers or os.cpu_count() or 1, max(len(units), 1))
    jobs = [(cfg, n, unit, workers == 1) for n, unit in enumerate(units)]
    bar = tqdm(total=len(jobs), desc=f"convert {cfg.source}", unit="unit", disable=None)
    if workers == 1:
        for job in jobs:
            _convert_unit(job)
            bar.update()
    else:
        methods = multiprocessing.get_all_start_methods()
        mp = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
        with mp.Pool(workers, initializer=die_with_parent) as pool:  # no worker outlives a killed convert
            for _ in pool.imap(_convert_unit, jobs):
                bar.update()
    bar.close()


def _chunks(work: Path, count: int) -> list[tuple[Path, dict[str, Any]]]:
    chunks = []
    for number in range(count):
        for stats in sorted((work / f"u{number:05d}").glob("c*.json")):
            chunks.append((stats.with_suffix(".part"), read_json(stats)))
    return chunks


def _selection(source: Source, ctx: Context, totals: Counter[str]) -> tuple[dict[str, set[int] | None], dict]:
    """Per group, the indices to keep (None: all), drawn with a generator seeded by (seed, group)."""
    sizes = source.sample_sizes(ctx.options)
    chosen: dict[str, set[int] | None] = {}
    notes = {}
    for group, total in sorted(totals.items()):
        size = sizes.get(group)
        if size is None or size >= total:
            chosen[group] = None
            if size is not None and size > total:
                notes[group] = f"asked for {size}, only {total} available: kept all"
        else:
            chosen[group] = set(random.Random(f"{ctx.seed}:{group}").sample(range(total), size))
    return chosen, notes


def _merge(cfg: ConvertConfig, source: Source, ctx: Context, chunks: list[tuple[Path, dict[str, Any]]]) -> None:
    """Stream the parts, in unit order, into shards and `rejects.jsonl`, keeping each group's sampled indices."""
    out = Path(cfg.out).resolve()
    totals: Counter[str] = Counter()
    skips: Counter[str] = Counter()
    for _, stats in chunks:
        totals.update(stats["groups"])
        skips.update(stats["skips"])
    chosen, notes = _selection(source, ctx, totals)
    recipe = {"convert": identity(cfg), "units": len({path.parent for path, _ in chunks})}
    seen: Counter[str] = Counter()
    kept: Counter[str] = Counter()
    with (
        CuratedWriter(out, data_root=os.path.relpath(ctx.root, out), recipe=recipe, shard_size=cfg.shard_size) as w,
        atomic_write(out / REJECTS) as rejects,
    ):
        for path, _ in tqdm(chunks, desc=f"write {cfg.source}", unit="chunk", disable=None):
            with open(path, encoding="utf-8") as handle:
                for line in handle:
                    if line.startswith("X\t"):
                        rejects.write(line[2:])
                        w.count_reject(cfg.source)
                        continue
                    _, split, group, rid, task, payload = line.rstrip("\n").split("\t", 5)
                    n = seen[group]
                    seen[group] += 1
                    keep = chosen[group]
                    if keep is not None and n not in keep:
                        continue
                    try:
                        w.write_validated(payload, split, record_id=rid, source=cfg.source, task=task)
                        kept[group] += 1
                    except RecordError as exc:  # a duplicate id: only the merge sees every record
                        reason = f"{exc.message} {rid} (the source names one object twice)"
                        reject = {"file": "<merge>", "index": n, "field": exc.field, "reason": reason}
                        rejects.write(json.dumps({**reject, "source": cfg.source}) + "\n")
                        w.count_reject(cfg.source)
        w.recipe["stats"] = {
            "converted": dict(sorted(totals.items())),
            "kept": dict(sorted(kept.items())),
            "skipped": dict(sorted(skips.items())),
            "sampling": notes,
        }


def run(cfg: ConvertConfig) -> dict[str, Any]:
    """Convert `cfg.source` from `cfg.root` into `cfg.out`; returns the manifest."""
    source, ctx = make_context(cfg)
    _prepare_work(cfg, ctx.work)
    if source.prepare is not None:
        source.prepare(ctx)
    units = source.plan(ctx)
    if not units:
        raise FileNotFoundError(f"{cfg.source}: no input files found under {ctx.root} for split {cfg.split!r}")
    _run_units(cfg, units)
    _merge(cfg, source, ctx, _chunks(ctx.work, len(units)))
    if not cfg.keep_work:
        shutil.rmtree(ctx.work, ignore_errors=True)
    return read_manifest(cfg.out)
