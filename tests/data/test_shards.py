"""Curated directories: writer/reader round trip, manifest, atomicity, and validation that names file and line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.factories import make_record
from ufvideo.data.schema import TASKS, RecordError
from ufvideo.data.shards import (
    CuratedWriter,
    ShardError,
    dataset_digest,
    iter_records,
    read_manifest,
    validate_dir,
)
from ufvideo.files import sha256_file


def _write(out: Path, n: int = 12, shard_size: int = 5) -> dict:
    with CuratedWriter(out, recipe={"name": "unit"}, shard_size=shard_size) as writer:
        for i in range(n):
            writer.write(make_record(TASKS[i % len(TASKS)], i), split="test" if i % 4 == 3 else "train")
    return read_manifest(out)


def test_round_trip_and_manifest(tmp_path: Path) -> None:
    manifest = _write(tmp_path)
    assert manifest["records"] == 12
    assert manifest["counts"]["by_split"] == {"test": 3, "train": 9}
    assert sum(manifest["counts"]["by_task"].values()) == 12
    assert manifest["recipe"] == {"name": "unit"}
    assert [s["path"] for s in manifest["shards"]] == ["test-00000.jsonl", "train-00000.jsonl", "train-00001.jsonl"]
    for shard in manifest["shards"]:
        assert sha256_file(tmp_path / shard["path"]) == shard["sha256"]
    assert manifest["digest"] == dataset_digest(manifest["shards"])
    records = list(iter_records(tmp_path, split="train"))
    assert len(records) == 9 and records[0] == make_record(TASKS[0], 0)
    assert len(list(iter_records(tmp_path))) == 12
    assert not list(tmp_path.glob(".*.tmp"))
    report = validate_dir(tmp_path)
    assert report.ok, report.errors
    assert report.records == 12 and report.by_split == {"train": 9, "test": 3}


def test_same_input_gives_same_bytes(tmp_path: Path) -> None:
    assert _write(tmp_path / "a")["digest"] == _write(tmp_path / "b")["digest"]


def test_invalid_or_duplicate_record_is_refused(tmp_path: Path) -> None:
    with CuratedWriter(tmp_path) as writer:
        writer.write(make_record("qa", 0))
        with pytest.raises(RecordError, match="field 'id': duplicate id"):
            writer.write(make_record("qa", 0))
        bad = make_record("qa", 1)
        bad["task"] = "nope"
        with pytest.raises(RecordError, match="field 'task'"):
            writer.write(bad)
    assert read_manifest(tmp_path)["records"] == 1


def test_crash_leaves_no_manifest_and_no_partial_shard(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError), CuratedWriter(tmp_path, shard_size=3) as writer:
        for i in range(5):
            writer.write(make_record("qa", i))
        raise RuntimeError("killed")
    assert not (tmp_path / "manifest.json").exists()
    assert not list(tmp_path.glob(".*.tmp"))
    with pytest.raises(FileNotFoundError, match="no manifest"):
        read_manifest(tmp_path)


def test_validate_names_file_line_and_field(tmp_path: Path) -> None:
    _write(tmp_path)
    shard = tmp_path / "train-00000.jsonl"
    lines = shard.read_text().splitlines()
    record = json.loads(lines[1])
    record["height"] = -3
    lines[1] = json.dumps(record)
    lines[2] = "{not json"
    shard.write_text("\n".join(lines) + "\n")
    report = validate_dir(tmp_path)
    assert not report.ok
    text = "\n".join(report.errors)
    assert f"{shard}: sha256 differs" in text
    assert f"{shard}:2 (id {record['id']}): field 'height'" in text
    assert f"{shard}:3: field '<line>': invalid JSON" in text
    with pytest.raises(ShardError, match="sha256 differs"):  # readers never trust an edited shard
        list(iter_records(tmp_path, split="train"))
    _reseal(tmp_path)
    with pytest.raises(RecordError) as info:
        list(iter_records(tmp_path, split="train"))
    assert (info.value.file, info.value.line, info.value.field) == (str(shard), 2, "height")


def _reseal(directory: Path) -> None:
    """Make the manifest vouch for the shards as they are now (what a buggy or malicious writer could do)."""
    manifest = json.loads((directory / "manifest.json").read_text())
    for shard in manifest["shards"]:
        shard["sha256"] = sha256_file(directory / shard["path"])
    (directory / "manifest.json").write_text(json.dumps(manifest))


def test_validate_reports_missing_shard_and_bad_manifest(tmp_path: Path) -> None:
    _write(tmp_path)
    (tmp_path / "test-00000.jsonl").unlink()
    assert any("missing" in e for e in validate_dir(tmp_path).errors)
    (tmp_path / "manifest.json").write_text(json.dumps({"format": "other"}))
    assert "field 'format'" in validate_dir(tmp_path).errors[0]


def test_an_interrupted_rewrite_never_pairs_the_old_manifest_with_new_shards(tmp_path: Path) -> None:
    _write(tmp_path)
    with pytest.raises(RuntimeError, match="killed"), CuratedWriter(tmp_path, shard_size=5) as writer:
        for i in range(7):  # one new shard is complete (renamed into place) when the rewrite dies
            writer.write(make_record("caption", 100 + i))
        raise RuntimeError("killed")
    with pytest.raises(FileNotFoundError, match="no manifest"):
        list(iter_records(tmp_path))
    assert not list(tmp_path.glob("test-*.jsonl"))  # the old dataset's shards went with its manifest


def test_a_record_error_raised_through_a_with_block_keeps_its_type(tmp_path: Path) -> None:
    """RecordError was a frozen dataclass: leaving a `with` block, Python sets its __traceback__ and got
    FrozenInstanceError instead, with the file/line/field message lost."""
    bad = make_record("qa", 0)
    bad["task"] = "nope"
    with pytest.raises(RecordError, match="field 'task'") as info, CuratedWriter(tmp_path) as writer:
        writer.write(bad)
    assert info.value.field == "task" and info.value.__traceback__ is not None


def test_a_truncated_line_is_named_by_file_and_line(tmp_path: Path) -> None:
    _write(tmp_path)
    shard = tmp_path / "train-00000.jsonl"
    data = shard.read_bytes()
    shard.write_bytes(data[: data.rindex(b"\n", 0, len(data) - 1) + 12])  # the last line cut after 11 bytes
    _reseal(tmp_path)
    with pytest.raises(RecordError, match=rf"{shard}:5: field '<line>': invalid JSON.*cut short"):
        list(iter_records(tmp_path, split="train"))
