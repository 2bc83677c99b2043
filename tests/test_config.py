"""Typed config loading: shipped profiles, dotted overrides, and errors that name the offending key."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pytest

from ufvideo.config import (
    PROFILES,
    ConfigError,
    apply_overrides,
    from_dict,
    load_profile,
    load_section,
    parse_override,
)
from ufvideo.data.curate import CurateConfig


@dataclass
class Inner:
    lr: float = 1e-3
    names: list[str] = field(default_factory=list)


@dataclass
class Outer:
    steps: int
    mode: Literal["a", "b"] = "a"
    inner: Inner = field(default_factory=Inner)
    inners: list[Inner] = field(default_factory=list)
    note: str | None = None


def test_parse_override_types() -> None:
    assert parse_override("a.b=3") == (["a", "b"], 3)
    assert parse_override("lr=1e-5") == (["lr"], 1e-5)
    assert parse_override("lr=2.0e-5") == (["lr"], 2e-5)
    assert parse_override("flag=true") == (["flag"], True)
    assert parse_override("xs=[1, 2]") == (["xs"], [1, 2])
    assert parse_override("name=") == (["name"], "")
    for bad in ("novalue", "=3", "a..b=1"):
        with pytest.raises(ConfigError, match="dotted.key=value"):
            parse_override(bad)


def test_apply_overrides_creates_sections_and_copies() -> None:
    base = {"train": {"lr": 1.0}}
    out = apply_overrides(base, ["train.lr=0.5", "eval.batch=4"])
    assert out == {"train": {"lr": 0.5}, "eval": {"batch": 4}} and base == {"train": {"lr": 1.0}}
    with pytest.raises(ConfigError, match="'train.lr' is a value"):
        apply_overrides(base, ["train.lr.x=1"])


def test_from_dict_strictness() -> None:
    cfg = from_dict(Outer, {"steps": 3.0, "inner": {"lr": 1}, "inners": [{"names": ["x"]}]})
    assert cfg.steps == 3 and cfg.inner.lr == 1.0 and cfg.inners[0].names == ["x"]
    with pytest.raises(ConfigError, match=r"^inner\.lrr: unknown key; allowed keys here: lr, names"):
        from_dict(Outer, {"steps": 1, "inner": {"lrr": 1}})
    with pytest.raises(ConfigError, match=r"^steps: required key is missing"):
        from_dict(Outer, {})
    with pytest.raises(ConfigError, match=r"^mode: 'c' is not allowed; allowed: 'a', 'b'"):
        from_dict(Outer, {"steps": 1, "mode": "c"})
    with pytest.raises(ConfigError, match=r"^steps: expected int, got str"):
        from_dict(Outer, {"steps": "many"})
    with pytest.raises(ConfigError, match=r"^inners\[0\]\.names: expected a list"):
        from_dict(Outer, {"steps": 1, "inners": [{"names": "x"}]})
    with pytest.raises(ConfigError, match=r"steps: expected int, got bool"):
        from_dict(Outer, {"steps": True})


@pytest.mark.parametrize("profile", PROFILES)
def test_shipped_profiles_load(profile: str) -> None:
    data = load_profile(profile)
    assert data["profile"] == profile
    cfg = load_section(CurateConfig, "curate", profile=profile)
    assert cfg.sources and cfg.sources[0].name == "synthetic"


def test_load_section_precedence(tmp_path: Path) -> None:
    recipe = tmp_path / "mix.yaml"
    recipe.write_text("seed: 5\nsources: [{name: s, path: p, repeat: 2}]\n")
    cfg = load_section(CurateConfig, "curate", config_file=recipe, values={"out": "o"}, overrides=["curate.seed=9"])
    assert (cfg.seed, cfg.out, cfg.sources[0].repeat, cfg.shard_size) == (9, "o", 2, 2000)
    with pytest.raises(ConfigError, match=r"mix\.yaml: sources\[0\]: sources\[s\]\.repeat must be >= 1"):
        load_section(CurateConfig, "curate", config_file=recipe, overrides=["sources=[{name: s, path: p, repeat: 0}]"])
    with pytest.raises(ConfigError, match="unknown profile 'huge'"):
        load_profile("huge")
