"""Records -> examples: LLM frames, region key frames and SAM frames decoded once, masks paired by (object, frame)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ufvideo.data.dataset import CuratedDataset, LoadSettings
from ufvideo.data.masks import decode_rle
from ufvideo.data.shards import ShardError
from ufvideo.data.synthetic import SynthConfig
from ufvideo.data.synthetic import generate as synth
from ufvideo.data.video import read_frames, segment_middle_indices
from ufvideo.files import sha256_file


@pytest.fixture(scope="module")
def synth_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("synth")
    synth(SynthConfig(out=str(out), videos=4, seed=3))
    return out


def test_examples_carry_exactly_the_annotated_frames(synth_dir: Path) -> None:
    ds = CuratedDataset(synth_dir, "train", LoadSettings(num_frames=8, num_sam_frames=4, num_video_tokens=64))
    assert len(ds) == 33 and len(ds.lengths) == 33 and min(ds.lengths) > 64
    seen = set()
    for index in range(len(ds)):
        record, example = ds.record(index), ds[index]
        seen.add(record["task"])
        video = synth_dir / record["video"]
        assert example["video"].shape == (8, 128, 128, 3)
        assert example["frame_indices"] == segment_middle_indices(record["num_frames"], 8)
        for o, region in enumerate(record.get("regions") or []):
            keys = sorted({int(k) for r in record["regions"] for k in r})
            for k, rle in region.items():
                p = keys.index(int(k))
                np.testing.assert_array_equal(example["regions"][o][p], decode_rle(rle))
                np.testing.assert_array_equal(example["key_frames"][p], read_frames(video, [int(k)])[0])
        if record.get("targets"):
            sam = example["sam_frame_indices"]
            with_mask = {int(k) for t in record["targets"] for k, v in t.items() if v is not None}
            assert set(sam) <= with_mask and len(sam) == min(4, len(with_mask)) and sam == sorted(sam)
            assert example["sam_frames"].shape == (len(sam), 128, 128, 3)
            for o, target in enumerate(record["targets"]):
                for p, k in enumerate(sam):
                    expected = target.get(str(k))
                    got = example["targets"][o][p]
                    if expected is None:
                        assert got is None
                    else:
                        np.testing.assert_array_equal(got, decode_rle(expected))
        else:
            assert example["targets"] is None and example["sam_frames"] is None
    assert {"qa", "referring", "rvos", "pixtrqa"} <= seen


def test_sam_frame_draw_is_seeded_per_epoch(synth_dir: Path) -> None:
    ds = CuratedDataset(synth_dir, "train", LoadSettings(num_frames=4, num_sam_frames=2), seed=1)
    rvos = ds.tasks.index("rvos")
    draws = []
    for epoch in range(4):
        ds.set_epoch(epoch)
        draws.append(ds[rvos]["sam_frame_indices"])
        assert ds[rvos]["sam_frame_indices"] == draws[-1]
    assert len({tuple(d) for d in draws}) > 1
    every = CuratedDataset(synth_dir, "train", LoadSettings(num_frames=4, num_sam_frames=None))
    target = every.record(rvos)["targets"][0]
    assert every[rvos]["sam_frame_indices"] == sorted(int(k) for k, v in target.items() if v is not None)


def _with_manifest(directory: Path, manifest: dict) -> Path:
    (directory / "manifest.json").write_text(json.dumps(manifest))
    return directory


def test_bad_mask_names_the_record(synth_dir: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    copy.mkdir()
    manifest = json.loads((synth_dir / "manifest.json").read_text())
    manifest["data_root"] = str(synth_dir)
    shard = next(s for s in manifest["shards"] if s["split"] == "train")
    lines = (synth_dir / shard["path"]).read_text().splitlines()
    index = next(i for i, line in enumerate(lines) if json.loads(line)["task"] == "rvos")
    record = json.loads(lines[index])
    key = next(k for k, v in record["targets"][0].items() if v is not None)
    record["targets"][0] = {key: {"size": [64, 64], "counts": record["targets"][0][key]["counts"]}}
    lines[index] = json.dumps(record)
    (copy / shard["path"]).write_text("\n".join(lines) + "\n")
    for other in manifest["shards"]:
        if other["path"] != shard["path"]:
            (copy / other["path"]).write_text((synth_dir / other["path"]).read_text())
    with pytest.raises(ShardError, match="sha256 differs"):  # an edited shard is refused before any record is read
        CuratedDataset(_with_manifest(copy, manifest), "train")
    shard["sha256"] = sha256_file(copy / shard["path"])  # the manifest now vouches for the edited shard
    _with_manifest(copy, manifest)
    ds = CuratedDataset(copy, "train", LoadSettings(num_frames=4))
    with pytest.raises(ValueError, match=rf"{record['id']}: targets\[0\]\[{key}\]: .*disagrees with the frame size"):
        ds[index]
    with pytest.raises(ValueError, match="has no records"):
        CuratedDataset(copy, "val")
