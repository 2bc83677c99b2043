"""`ufvideo data validate --deep`: a missing video, a truncated mp4 and corrupt RLE counts, all of which a shallow
validation passes, are reported by file, line, record and field."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from ufvideo import cli
from ufvideo.data.shards import validate_dir
from ufvideo.data.synthetic import SynthConfig
from ufvideo.data.synthetic import generate as synth
from ufvideo.files import sha256_file


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("media") / "synth"
    synth(SynthConfig(out=str(out), videos=3, test_every=0))
    return out


def _records(directory: Path) -> list[tuple[Path, int, dict]]:
    found = []
    for shard in sorted(directory.glob("*.jsonl")):
        for number, line in enumerate(shard.read_text().splitlines(), start=1):
            found.append((shard, number, json.loads(line)))
    return found


def test_deep_validation_finds_what_records_alone_do_not(synthetic: Path, tmp_path: Path, capsys) -> None:
    data = tmp_path / "data"
    shutil.copytree(synthetic, data)
    assert validate_dir(data, deep=True).ok
    records = _records(data)
    videos = sorted({r["video"] for _, _, r in records})
    (data / videos[0]).unlink()  # missing
    raw = (data / videos[1]).read_bytes()
    (data / videos[1]).write_bytes(raw[: len(raw) // 2])  # truncated (a copy cut short)
    shard, number, record = next(x for x in records if x[2]["video"] == videos[2] and x[2].get("targets"))
    target = record["targets"][0]
    frame = next(k for k, v in target.items() if v is not None)
    counts = target[frame]["counts"]
    target[frame]["counts"] = counts[:3] + ("9" if counts[3] != "9" else "8") + counts[4:]
    lines = shard.read_text().splitlines()
    lines[number - 1] = json.dumps(record, sort_keys=True)
    shard.write_text("\n".join(lines) + "\n")
    manifest = json.loads((data / "manifest.json").read_text())  # the manifest vouches for the edit: only the
    for entry in manifest["shards"]:  # media checks can find it
        entry["sha256"] = sha256_file(data / entry["path"])
    (data / "manifest.json").write_text(json.dumps(manifest))

    assert validate_dir(data).ok  # the shallow validation passes all three
    errors = validate_dir(data, deep=True).errors
    text = "\n".join(errors)
    assert any(f"(id {r['id']}): field 'video'" in e for _, _, r in records if r["video"] == videos[0] for e in errors)
    assert videos[1].split("/")[-1] in text
    assert f"{shard}:{number} (id {record['id']}): field 'targets[0].{frame}': " in text and "corrupt" in text
    assert cli.main(["data", "validate", "--deep", str(data)]) == 1
    assert "INVALID" in capsys.readouterr().err
