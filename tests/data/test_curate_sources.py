"""Mixtures over raw public sources: convert-then-mix, reuse of finished conversions, the shipped recipe."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.data.sources.test_llava_video_178k import _fixture as llava_fixture
from tests.data.sources.test_mevis import _mevis
from ufvideo.config import configs_dir, from_dict, load_section, load_yaml
from ufvideo.data import convert as convert_mod
from ufvideo.data.curate import CurateConfig, SourceSpec
from ufvideo.data.curate import curate as run
from ufvideo.data.shards import data_root, iter_records, validate_dir
from ufvideo.data.sources import NAMES, get_source


def test_mixture_of_raw_sources(tmp_path: Path, monkeypatch) -> None:
    llava_fixture(tmp_path / "llava")
    _mevis(tmp_path / "mevis")
    recipe = tmp_path / "mix.yaml"
    recipe.write_text(
        f"""seed: 1
sources:
  - name: llava
    source: llava_video_178k
    root: {tmp_path / "llava"}
    path: {tmp_path / "conv" / "llava"}
    options: {{open_ended: 2}}
  - name: mevis
    source: mevis
    root: {tmp_path / "mevis"}
    path: {tmp_path / "conv" / "mevis"}
    repeat: 3
"""
    )
    cfg = load_section(CurateConfig, "curate", config_file=recipe, values={"out": str(tmp_path / "out")})
    manifest = run(cfg)
    assert validate_dir(cfg.out).ok
    assert manifest["counts"]["by_source"] == {"llava_video_178k": 2 + 2, "mevis": 2 * 3}
    assert manifest["counts"]["by_task"] == {"mcqa": 2, "qa": 2, "rvos": 6}
    root = data_root(cfg.out)
    for record in iter_records(cfg.out):
        for frame in record["video"] if isinstance(record["video"], list) else [record["video"]]:
            assert (root / frame).exists()
    calls = []
    real = convert_mod.run
    monkeypatch.setattr(convert_mod, "run", lambda c: calls.append(c.source) or real(c))
    again = run(cfg)  # conversions are reused: same settings, finished manifests
    assert calls == [] and again["digest"] == manifest["digest"]
    cfg.sources[0].options = {"open_ended": 1}
    changed = run(cfg)
    assert calls == ["llava_video_178k"]  # changed options -> converted again, the other source reused
    assert changed["counts"]["by_source"] == {"llava_video_178k": 1 + 2, "mevis": 6}


def test_spec_needs_source_and_root_together() -> None:
    with pytest.raises(ValueError, match="'source' and 'root' go together"):
        SourceSpec(name="x", path="p", source="mevis")


def test_shipped_stage2_recipe_is_valid() -> None:
    data = load_yaml(configs_dir() / "mixtures" / "ufvideo_stage2.yaml")
    cfg = from_dict(CurateConfig, data)
    # the eight public sources; `ufvideo_json` reads UFVideo's own (unreleased) converted files instead
    assert {spec.source for spec in cfg.sources} == set(NAMES) - {"ufvideo_json"}
    for spec in cfg.sources:
        from_dict(get_source(spec.source).options, spec.options)  # every option names a real converter option
    repeats = {spec.name: spec.repeat for spec in cfg.sources}
    assert (repeats["ref_youtube_vos"], repeats["mevis"], repeats["ref_davis17"], repeats["revos"]) == (7, 5, 10, 5)
    assert next(s for s in cfg.sources if s.name == "llava_video_178k").options["open_ended"] == 100_000
