"""Mixture curation: seeded sampling, task filters, repetition, split preservation and rebased video paths."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.factories import make_record
from ufvideo.config import ConfigError
from ufvideo.data.curate import CurateConfig, SourceSpec
from ufvideo.data.curate import curate as run
from ufvideo.data.schema import TASKS
from ufvideo.data.shards import CuratedWriter, data_root, iter_records, validate_dir


def _source(root: Path, name: str, n: int) -> Path:
    (root / "videos").mkdir(parents=True)
    with CuratedWriter(root) as writer:
        for i in range(n):
            (root / "videos" / f"v{i}.mp4").write_bytes(b"x")
            writer.write(make_record(TASKS[i % len(TASKS)], i, source=name), split="test" if i % 5 == 4 else "train")
    return root


def test_mixture(tmp_path: Path) -> None:
    a = _source(tmp_path / "a", "alpha", 20)
    b = _source(tmp_path / "b", "beta", 10)
    cfg = CurateConfig(
        out=str(tmp_path / "out"),
        seed=3,
        sources=[
            SourceSpec(name="alpha", path=str(a), split="train", sample=6),
            SourceSpec(name="beta", path=str(b), tasks=["qa", "rvos"], repeat=3),
        ],
    )
    manifest = run(cfg)
    assert validate_dir(cfg.out).ok
    counts = manifest["counts"]
    assert counts["by_source"] == {"alpha": 6, "beta": 6}  # beta: qa x1 + rvos x1, repeated 3 times
    assert counts["by_split"] == {"train": 6 + 3, "test": 3}  # beta rvos-4 sits in its test split
    assert set(counts["by_task"]) >= {"qa", "rvos"}
    ids = [r["id"] for r in iter_records(cfg.out)]
    assert "beta/qa-0#rep2" in ids and len(ids) == len(set(ids))
    root = data_root(cfg.out)
    for record in iter_records(cfg.out):
        assert (root / record["video"]).is_file()
    assert manifest["recipe"]["sources"][0]["sample"] == 6
    again = run(CurateConfig(out=str(tmp_path / "again"), seed=3, sources=cfg.sources))
    assert again["digest"] == manifest["digest"]
    other = run(CurateConfig(out=str(tmp_path / "other"), seed=4, sources=cfg.sources))
    assert other["digest"] != manifest["digest"]


def test_bad_recipes(tmp_path: Path) -> None:
    a = _source(tmp_path / "a", "alpha", 4)
    with pytest.raises(ConfigError, match="exceeds the 4 available"):
        run(CurateConfig(out=str(tmp_path / "o"), sources=[SourceSpec(name="alpha", path=str(a), sample=9)]))
    with pytest.raises(ConfigError, match="lists no sources"):
        run(CurateConfig(out=str(tmp_path / "o")))
    with pytest.raises(ValueError, match=r"tasks: unknown \['seg'\]"):
        SourceSpec(name="x", path="p", tasks=["seg"])
    with pytest.raises(FileNotFoundError, match="no manifest"):
        run(CurateConfig(out=str(tmp_path / "o"), sources=[SourceSpec(name="x", path=str(tmp_path / "none"))]))
