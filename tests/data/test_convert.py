"""The conversion runner: resume after an interruption, discarding stale parts, and the CLI handler."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.data.sources.helpers import dump, tiny_video
from ufvideo.cli import main
from ufvideo.config import ConfigError
from ufvideo.data import convert as convert_mod
from ufvideo.data.convert import WORK, ConvertConfig, run
from ufvideo.data.shards import iter_records
from ufvideo.data.sources import get_source


def _raw(root: Path, files: int = 3, per_file: int = 5) -> Path:
    tiny_video(root / "v" / "a.mp4", frames=2)
    for f in range(files):
        items = [
            {
                "id": f"{f}-{i}",
                "video": "v/a.mp4",
                "conversations": [{"from": "human", "value": f"<image>\nQ{f}.{i}"}, {"from": "gpt", "value": "A"}],
            }
            for i in range(per_file)
        ]
        dump(root / f"b{f}" / f"b{f}_oe_qa_processed.json", items)
    return root


def test_interrupted_run_resumes_from_finished_units_and_chunks(tmp_path: Path, monkeypatch) -> None:
    raw = _raw(tmp_path / "raw")
    cfg = ConvertConfig(
        "llava_video_178k", str(raw), str(tmp_path / "out"), checkpoint_every=2, workers=1, options={"open_ended": None}
    )
    source = get_source("llava_video_178k")
    seen: list[tuple[str, int]] = []

    def counting(ctx, unit, index, raw_item):
        seen.append((unit.file.split("/")[0], index))
        if len(seen) == 9 and not getattr(counting, "resumed", False):
            raise KeyboardInterrupt
        return source.convert(ctx, unit, index, raw_item)

    monkeypatch.setattr(
        convert_mod, "get_source", lambda name: type(source)(**{**source.__dict__, "convert": counting})
    )
    with pytest.raises(KeyboardInterrupt):
        run(cfg)
    assert seen[-1] == ("b1", 3)
    assert not (tmp_path / "out" / "manifest.json").exists()
    assert (tmp_path / "out" / WORK / "u00000" / "done").is_file()
    seen.clear()
    counting.resumed = True
    run(cfg)
    # b0 was done; b1's chunks [0, 2) and [2, 4)... only [0, 2) finished before index 3 died, so b1 restarts at 2
    assert seen == [("b1", 2), ("b1", 3), ("b1", 4)] + [("b2", i) for i in range(5)]
    assert [r["meta"]["orig_id"] for r in iter_records(tmp_path / "out")] == [
        f"{f}-{i}" for f in range(3) for i in range(5)
    ]  # input order, nothing twice
    assert not (tmp_path / "out" / WORK).exists()


def test_changed_options_discard_stale_parts(tmp_path: Path) -> None:
    raw = _raw(tmp_path / "raw")
    out = tmp_path / "out"
    run(ConvertConfig("llava_video_178k", str(raw), str(out), keep_work=True, options={"open_ended": None}))
    assert (out / WORK).is_dir()
    manifest = run(ConvertConfig("llava_video_178k", str(raw), str(out), options={"open_ended": 4}))
    assert manifest["records"] == 4


def test_cli_handler_and_bad_configs(tmp_path: Path, capsys) -> None:
    raw = _raw(tmp_path / "raw", files=1)
    argv = ["data", "convert", "--source", "llava_video_178k", "--root", str(raw), "--out", str(tmp_path / "o")]
    assert main([*argv, "--split", "train", "--profile", "tiny", "open_ended=2", "seed=5"]) == 0
    assert "converted llava_video_178k: 2 records" in capsys.readouterr().out
    with pytest.raises(ConfigError, match="options.nope: unknown key"):
        run(ConvertConfig("llava_video_178k", str(raw), str(tmp_path / "p"), options={"nope": 1}))
    with pytest.raises(ConfigError, match="split 'valid' not supported"):
        run(ConvertConfig("llava_video_178k", str(raw), str(tmp_path / "p"), split="valid"))
    with pytest.raises(ConfigError, match="unknown source 'kinetics'"):
        run(ConvertConfig("kinetics", str(raw), str(tmp_path / "p")))
    with pytest.raises(FileNotFoundError, match="raw root not found"):
        run(ConvertConfig("mevis", str(tmp_path / "none"), str(tmp_path / "p")))
