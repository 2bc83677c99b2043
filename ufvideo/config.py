"""Typed configs: YAML recipes shipped in `ufvideo/configs/`, dotted `key=value` overrides, strict dataclass loading.

Each step owns a dataclass; a profile YAML (`tiny`, `ufvideo-7b`) holds one section per step. Loading is strict
(unknown keys and wrong types fail with the dotted path named) because a silently ignored typo in a recipe
costs a GPU-day.
"""

from __future__ import annotations

import copy
import dataclasses
import os
import types
import typing
from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

import yaml

from ufvideo.errors import UFVideoError

T = TypeVar("T")
PROFILES = ("tiny", "ufvideo-7b", "ufvideo-7b-lora")


class ConfigError(UFVideoError):
    """A config value that cannot be used; the message names the file (when known) and the dotted key."""


def configs_dir() -> Path:
    """The shipped recipes directory (inside the installed package)."""
    return Path(str(resources.files("ufvideo") / "configs"))


def load_yaml(path: str | os.PathLike[str]) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as handle:
            data = yaml.safe_load(handle)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level must be a mapping, got {type(data).__name__}")
    return data


def profile_path(name: str) -> Path:
    if name not in PROFILES:
        raise ConfigError(f"unknown profile {name!r}; allowed: {', '.join(PROFILES)}")
    return configs_dir() / "profiles" / f"{name}.yaml"


def load_profile(name: str, overrides: Sequence[str] = ()) -> dict[str, Any]:
    """A shipped profile as a plain dict, with dotted overrides applied. A profile that says `extends: OTHER` is
    OTHER with its own keys merged over it (section by section), so a variant states only what differs."""
    data = load_yaml(profile_path(name))
    parent = data.pop("extends", None)
    if parent is not None:
        if parent == name or parent not in PROFILES:
            raise ConfigError(f"{profile_path(name)}: extends: {parent!r} is not another shipped profile")
        data = _merge(load_profile(parent), data)
    return apply_overrides(data, overrides)


def parse_override(item: str) -> tuple[list[str], Any]:
    """`a.b.c=value` -> (["a", "b", "c"], value); the value is parsed as YAML so `lr=2e-5` is a float."""
    key, sep, raw = item.partition("=")
    if not sep or not key or any(not part for part in key.split(".")):
        raise ConfigError(f"override {item!r} must look like dotted.key=value")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as exc:
        raise ConfigError(f"override {item!r}: value is not valid YAML: {exc}") from exc
    if isinstance(value, str) and _looks_numeric(value):
        value = float(value)  # YAML 1.1 reads `1e-5` (no dot) as a string; users mean a number
    return key.split("."), value


def _looks_numeric(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return text.strip().lower() not in {"nan", "inf", "-inf", "+inf", "infinity", "-infinity"}


def apply_overrides(config: Mapping[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """Return a deep copy of `config` with each `dotted.key=value` set, creating intermediate mappings."""
    result = copy.deepcopy(dict(config))
    for item in overrides:
        path, value = parse_override(item)
        node = result
        for depth, part in enumerate(path[:-1]):
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"override {item!r}: '{'.'.join(path[: depth + 1])}' is a value, not a section")
            node = child
        node[path[-1]] = value
    return result


def from_dict(cls: type[T], data: Mapping[str, Any], where: str = "") -> T:
    """Build dataclass `cls` from `data`, checking every key and type; nested dataclasses recurse."""
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"{cls!r} is not a dataclass")
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where or cls.__name__}: expected a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        allowed = ", ".join(sorted(fields))
        raise ConfigError(f"{_join(where, unknown[0])}: unknown key; allowed keys here: {allowed}")
    kwargs: dict[str, Any] = {}
    for name, field in fields.items():
        if name in data:
            kwargs[name] = _coerce(hints[name], data[name], _join(where, name))
        elif field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
            raise ConfigError(f"{_join(where, name)}: required key is missing")
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:
        if isinstance(exc, ConfigError):
            raise
        raise ConfigError(f"{where or cls.__name__}: {exc}") from exc


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _coerce(hint: Any, value: Any, where: str) -> Any:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in (a for a in args if a is not type(None)):
            try:
                return _coerce(arg, value, where)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0] if len(errors) == 1 else f"{where}: {value!r} matches none of {hint}")
    if origin is typing.Literal:
        if value not in args:
            raise ConfigError(f"{where}: {value!r} is not allowed; allowed: {', '.join(map(repr, args))}")
        return value
    if dataclasses.is_dataclass(hint):
        return from_dict(hint, value, where)
    if origin in (list, tuple, Sequence) or hint in (list, tuple):
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{where}: expected a list, got {type(value).__name__}")
        item = args[0] if args else Any
        items = [_coerce(item, v, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple or hint is tuple else items
    if origin in (dict, Mapping) or hint is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: expected a mapping, got {type(value).__name__}")
        vt = args[1] if len(args) == 2 else Any
        return {str(k): _coerce(vt, v, f"{where}.{k}") for k, v in value.items()}
    return _coerce_scalar(hint, value, where)


def _coerce_scalar(hint: Any, value: Any, where: str) -> Any:
    if hint is bool:
        if isinstance(value, bool):
            return value
    elif hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
    elif hint is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    elif hint is str:
        if isinstance(value, str):
            return value
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)
    else:
        return value
    raise ConfigError(f"{where}: expected {hint.__name__}, got {type(value).__name__} {value!r}")


def to_dict(obj: Any) -> dict[str, Any]:
    """A dataclass config as plain data (for logging as MLflow params and writing next to outputs)."""
    return dataclasses.asdict(obj)


def load_section(
    cls: type[T],
    section: str,
    *,
    profile: str = "tiny",
    config_file: str | os.PathLike[str] | None = None,
    overrides: Sequence[str] = (),
    values: Mapping[str, Any] | None = None,
) -> T:
    """Resolve one step's config: profile section, then an optional YAML file, then explicit values, then overrides.

    `config_file` may hold either the bare section or a whole profile-shaped document (then its `section` key
    is used). Overrides are relative to the section (`seed=3`) or absolute with the section prefix (`synth.seed=3`).
    """
    base = load_profile(profile).get(section, {}) or {}
    where = f"{profile_path(profile)} [{section}]"
    if config_file is not None:
        data = load_yaml(config_file)
        data = data.get(section, data) if isinstance(data.get(section), dict) else data
        base = _merge(base, data)
        where = str(config_file)
    if values:
        base = _merge(base, {k: v for k, v in values.items() if v is not None})
    relative = [o[len(section) + 1 :] if o.startswith(f"{section}.") else o for o in overrides]
    try:
        return from_dict(cls, apply_overrides(base, relative))
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from exc


def _merge(base: Mapping[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(dict(base))
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged
