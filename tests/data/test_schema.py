"""The curated-record contract: every task kind validates, every error names file, line and field."""

from __future__ import annotations

import copy

import pytest

from tests.factories import box_rle, make_record
from ufvideo.data.schema import TASKS, RecordError, record_errors, temp_token, validate_record


@pytest.mark.parametrize("task", TASKS)
def test_every_task_kind_has_a_valid_record(task: str) -> None:
    assert record_errors(make_record(task)) == []


def _fields(record: dict, file: str = "shard.jsonl", line: int = 7) -> list[str]:
    errors = record_errors(record, file, line)
    assert errors, "expected at least one error"
    for error in errors:
        assert error.file == file and error.line == line
        assert str(error).startswith(f"{file}:{line}")
        assert f"field '{error.field}'" in str(error)
    return [e.field for e in errors]


def _mutate(kind: str, **changes: object) -> dict:
    record = copy.deepcopy(make_record(kind))
    for key, value in changes.items():
        if value is ...:
            del record[key]
        else:
            record[key] = value
    return record


@pytest.mark.parametrize(
    ("record", "field"),
    [
        (_mutate("qa", video=...), "video"),
        (_mutate("qa", task="segmentation"), "task"),
        (_mutate("qa", id="other/1"), "id"),
        (_mutate("qa", video=[]), "video"),
        (_mutate("qa", video=["a.jpg", ""]), "video[1]"),
        (_mutate("qa", height=0), "height"),
        (_mutate("qa", duration=-1.0), "duration"),
        (_mutate("qa", clip=[3.0, 1.0]), "clip"),
        (_mutate("qa", bogus=1), "bogus"),
        (_mutate("qa", region_mode="both"), "region_mode"),
        (_mutate("qa", meta=[1]), "meta"),
    ],
)
def test_field_errors_name_the_field(record: dict, field: str) -> None:
    assert field in _fields(record)


def test_conversation_errors() -> None:
    record = make_record("qa")
    record["conversations"][1]["from"] = "human"
    assert "conversations[1].from" in _fields(record)
    record = make_record("qa")
    record["conversations"][0]["value"] = "no video token"
    assert "conversations[0].value" in _fields(record)
    record = make_record("qa")
    record["conversations"] = record["conversations"][:1]
    assert "conversations" in _fields(record)
    record = make_record("qa")
    record["conversations"][1]["value"] = "   "
    assert "conversations[1].value" in _fields(record)


def test_region_and_target_consistency() -> None:
    record = make_record("referring")
    record["regions"].append({"1": box_rle(0, 0, 4, 4)})
    assert "regions" in _fields(record)  # 2 regions, 1 <region> token
    record = make_record("referring")
    record["regions"][0]["9"] = box_rle(0, 0, 4, 4)
    assert "regions[0]" in _fields(record)  # single mode with two frames
    record = make_record("referring")
    del record["regions"]
    assert "regions" in _fields(record)
    record = make_record("rvos")
    record["targets"] = [{"3": None}]
    assert "targets[0]" in _fields(record)  # no non-null mask
    record = make_record("rvos")
    record["conversations"][1]["value"] = "Sure."
    assert "targets" in _fields(record)  # targets but no [SEG]
    record = make_record("rvos")
    record["targets"][0]["x"] = record["targets"][0].pop("3")
    assert "targets[0]['x']" in _fields(record)


def test_rle_size_must_match_the_record() -> None:
    record = make_record("rvos")
    record["targets"][0]["3"] = box_rle(0, 0, 4, 4, h=10, w=10)
    assert "targets[0]['3'].size" in _fields(record)
    record["targets"][0]["3"] = {"size": [24, 32], "counts": 5}
    assert "targets[0]['3']" in _fields(record)


def test_temporal_tokens() -> None:
    record = make_record("tvg")
    record["conversations"][1]["value"] = "{<TEMP-010><TEMP-100>}"
    assert "conversations[1].value" in _fields(record)
    record = make_record("tvg")
    record["conversations"][1]["value"] = "from 1 to 2 seconds"
    assert "conversations" in _fields(record)
    assert temp_token(7) == "<TEMP-007>"
    with pytest.raises(ValueError, match="0, 99"):
        temp_token(100)


def test_validate_record_raises_first_error_with_id() -> None:
    record = _mutate("qa", duration=0)
    with pytest.raises(RecordError) as info:
        validate_record(record, "f.jsonl", 3)
    assert str(info.value) == "f.jsonl:3 (id unit/qa-0): field 'duration': must be a positive number"


def test_non_object_record() -> None:
    assert [e.field for e in record_errors([1, 2])] == ["<record>"]
