"""The step contract: every step is a typed config `XConfig` plus `run(cfg) -> result`, and this table says where
each lives and which profile section is its base. Every face (the `ufvideo` CLI, `dvc.yaml`'s commands, the KFP
components through `ufvideo.pipeline.steps`, Python) builds the config with `load_step_config` and calls `run`:

    cfg = load_step_config("eval", profile="tiny", file="params.yaml", overrides=["batch_size=2"], flags={...})
    result = step_runner("eval")(cfg)

Why a table read by importlib: a step's module (and its heavy imports: torch, transformers, mlflow) loads only
when that step runs, and no module has to import its callers to be found.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ufvideo.config import ConfigError, load_section


@dataclass(frozen=True)
class Step:
    """Where a step lives. `section`: its profile/params.yaml section; `module`: holds `config` (the dataclass) and
    `run`; `fixed`: config values the step name implies (a mismatch with the file is a ConfigError);
    `options_field`: overrides whose key is not a config field go under this mapping field (converter options)."""

    section: str
    module: str
    config: str
    fixed: Mapping[str, Any] = field(default_factory=dict)
    options_field: str | None = None


STEPS: dict[str, Step] = {
    "synth": Step("synth", "ufvideo.data.synthetic", "SynthConfig"),
    "curate": Step("curate", "ufvideo.data.curate", "CurateConfig"),
    "convert-data": Step("convert", "ufvideo.data.convert", "ConvertConfig", options_field="options"),
    "convert-model": Step("model_convert", "ufvideo.model.convert", "ModelConvertConfig"),
    "merge-model": Step("model_merge", "ufvideo.model.merge", "MergeConfig"),
    "train_stage1": Step("train_stage1", "ufvideo.train.run", "TrainConfig", fixed={"stage": 1}),
    "train_stage2": Step("train_stage2", "ufvideo.train.run", "TrainConfig", fixed={"stage": 2}),
    "eval": Step("eval", "ufvideo.eval.run", "EvalConfig"),
    "register": Step("register", "ufvideo.registry.commands", "RegisterConfig"),
    "predict": Step("predict", "ufvideo.predict.run", "PredictConfig"),
}


def step(name: str) -> Step:
    if name not in STEPS:
        raise ConfigError(f"unknown step {name!r}; steps: {', '.join(STEPS)}")
    return STEPS[name]


def config_class(name: str) -> type:
    spec = step(name)
    return getattr(importlib.import_module(spec.module), spec.config)


def step_runner(name: str) -> Callable[[Any], Any]:
    """The step's `run(cfg)`, looked up when called (so a test's monkeypatch of the module's `run` is honoured)."""
    return importlib.import_module(step(name).module).run


def load_step_config(
    name: str,
    profile: str = "tiny",
    file: str | os.PathLike[str] | None = None,
    overrides: Sequence[str] = (),
    flags: Mapping[str, Any] | None = None,
) -> Any:
    """The resolved config of step `name`: the profile's section, then `file` (the bare section or a whole
    profile-shaped document such as params.yaml), then `flags` (None values are "not given"), then the dotted
    `overrides` (relative to the section, or prefixed with it: `seed=3` or `synth.seed=3`)."""
    spec = step(name)
    cls = config_class(name)
    items = list(overrides)
    if spec.options_field:
        items = _options(cls, spec.section, spec.options_field, items)
    cfg = load_section(cls, spec.section, profile=profile, config_file=file, overrides=items, values=flags)
    for key, value in spec.fixed.items():
        if getattr(cfg, key) != value:
            raise ConfigError(f"{spec.section}: {key} is {getattr(cfg, key)!r} but step {name} needs {value!r}")
    return cfg


def _options(cls: type, section: str, options_field: str, overrides: list[str]) -> list[str]:
    """`open_ended=5000` -> `options.open_ended=5000` when `open_ended` is not a field of the config."""
    import dataclasses

    fields = {f.name for f in dataclasses.fields(cls)}
    out = []
    for item in overrides:
        key = item.split("=", 1)[0].removeprefix(f"{section}.")
        out.append(item if key.split(".")[0] in fields else f"{options_field}.{item.removeprefix(f'{section}.')}")
    return out
