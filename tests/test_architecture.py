"""The structure the step contract promises, checked on the source: the library's import graph has no cycle, the
library never imports the KFP face (`components/`, `pipelines/`), and every face reaches a step's `run(cfg)` in at
most two calls (`ufvideo train`, `ufvideo eval`, the evaluate component)."""

from __future__ import annotations

import ast
import importlib
import inspect
import json
from collections.abc import Collection, Iterator
from pathlib import Path
from typing import Any

import pytest
from kfp import dsl

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "ufvideo"


def modules() -> dict[str, Path]:
    """Every module of the package by dotted name (a package is its `__init__`)."""
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(REPO).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imported(path: Path, name: str, known: Collection[str] = ()) -> Iterator[str]:
    """Every module `path` imports, at any depth (function-level imports run too), except under TYPE_CHECKING.
    `from a import b` names `a.b` when that is one of the `known` modules, else `a` (importing a submodule runs its
    parent package's `__init__` first, as every child import does: that implicit edge is not a cycle)."""
    is_package = path.name == "__init__.py"

    def visit(node: ast.AST) -> Iterator[str]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _type_checking(child):
                yield from (m for stmt in child.orelse for m in visit(ast.Module([stmt], [])))
                continue
            if isinstance(child, ast.Import):
                yield from (alias.name for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    anchor = name.split(".") if is_package else name.split(".")[:-1]
                    anchor = anchor[: len(anchor) - (child.level - 1)]
                    base = ".".join(anchor + ([base] if base else []))
                for alias in child.names:
                    yield f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base
            yield from visit(child)

    yield from visit(ast.parse(path.read_text(encoding="utf-8")))


def import_graph() -> dict[str, set[str]]:
    known = modules()
    graph: dict[str, set[str]] = {}
    for name, path in known.items():
        edges = set()
        for target in imported(path, name, known):
            if target in known and target != name:
                edges.add(target)
        graph[name] = edges
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle as a path (first node repeated at the end), or None; iterative DFS with colours."""
    colour = dict.fromkeys(graph, 0)
    for start in graph:
        if colour[start]:
            continue
        stack: list[tuple[str, Iterator[str]]] = [(start, iter(sorted(graph[start])))]
        path = [start]
        colour[start] = 1
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                colour[node] = 2
                stack.pop()
                path.pop()
            elif colour[child] == 1:
                return path[path.index(child) :] + [child]
            elif colour[child] == 0:
                colour[child] = 1
                stack.append((child, iter(sorted(graph[child]))))
                path.append(child)
    return None


def test_the_cycle_finder_finds_cycles() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_the_import_scan_sees_relative_nested_and_from_imports(tmp_path: Path) -> None:
    source = tmp_path / "mod.py"
    source.write_text(
        "from typing import TYPE_CHECKING\nimport ufvideo.config\nfrom . import sibling\n"
        "def f():\n    from ufvideo.eval import run\nif TYPE_CHECKING:\n    import ufvideo.hidden\n"
    )
    found = set(imported(source, "ufvideo.data.mod", {"ufvideo.data.sibling", "ufvideo.eval.run"}))
    assert {"ufvideo.config", "ufvideo.data.sibling", "ufvideo.eval.run"} <= found
    assert "ufvideo.hidden" not in found


def test_no_import_cycle_in_the_package() -> None:
    graph = import_graph()
    assert len(graph) > 90 and "ufvideo.eval.registry" in graph
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_the_library_never_imports_the_kfp_face() -> None:
    offenders = []
    for name, path in modules().items():
        for target in imported(path, name):
            if target.split(".")[0] in ("components", "pipelines"):
                offenders.append(f"{path.relative_to(REPO)} imports {target}")
        text = path.read_text(encoding="utf-8")
        if "sys.path" in text or "importlib.reload" in text:
            offenders.append(f"{path.relative_to(REPO)} edits sys.path or reloads modules")
    assert not offenders, offenders


def _recorder(calls: list[list[str]], result: Any) -> Any:
    """A stand-in `run(cfg)` that records the call stack it was called with (function names, innermost first)."""

    def run(cfg: Any) -> Any:
        calls.append([frame.function for frame in inspect.stack()[1:]])
        calls[-1].insert(0, type(cfg).__name__)
        return result

    return run


def hops(stack: list[str], face: str) -> int:
    """Calls from the face's frame down to `run`: 1 means the face calls `run` itself."""
    return stack.index(face) + 1


@pytest.mark.parametrize(
    ("argv", "module", "config"),
    [
        (["train", "--stage", "1", "--data", "d", "--out", "o"], "ufvideo.train.run", "TrainConfig"),
        (["train", "--stage", "2", "--init", "i", "--out", "o"], "ufvideo.train.run", "TrainConfig"),
        (["eval", "--benchmark", "synthetic", "--checkpoint", "c", "--out", "o"], "ufvideo.eval.run", "EvalConfig"),
        (["predict", "--model", "m", "--video", "v.mp4", "--prompt", "p"], "ufvideo.predict.run", "PredictConfig"),
    ],
)
def test_cli_reaches_run_in_two_calls(argv: list[str], module: str, config: str, monkeypatch, capsys) -> None:
    from ufvideo import cli

    calls: list[list[str]] = []
    results = {"ufvideo.eval.run": {"benchmark": "synthetic", "num_samples": 0, "metrics": {}}}
    result = results.get(module, {"predictions": []} if module == "ufvideo.predict.run" else {})
    monkeypatch.setattr(importlib.import_module(module), "run", _recorder(calls, result))
    assert cli.main(argv) == 0
    ((cfg_name, *stack),) = calls
    assert cfg_name == config
    assert stack[0] == "run_step" and hops(stack, "main") == 2, stack


def test_torchrun_entry_is_the_cli(monkeypatch) -> None:
    """`python -m ufvideo.train` parses with the CLI's own flags (declared once) and lands in the same `run`."""
    import runpy
    import sys

    calls: list[list[str]] = []
    monkeypatch.setattr(importlib.import_module("ufvideo.train.run"), "run", _recorder(calls, {}))
    monkeypatch.setattr(sys, "argv", ["python -m ufvideo.train", "--stage", "1", "--out", "o", "seed=3"])
    with pytest.raises(SystemExit) as done:
        runpy.run_module("ufvideo.train", run_name="__main__")
    assert done.value.code == 0 and len(calls) == 1 and calls[0][0] == "TrainConfig"


def test_evaluate_component_reaches_run_in_two_calls(tmp_path: Path, monkeypatch) -> None:
    from components import evaluate_benchmark

    metrics_file = tmp_path / "metrics.json"
    metrics_file.write_text(json.dumps({"metrics": {}}))
    result = {
        "benchmark": "synthetic",
        "metrics": {"qa_accuracy": 50.0, "caption_cider": None},
        "num_samples": 2,
        "files": {"metrics": str(metrics_file)},
    }
    calls: list[list[str]] = []
    monkeypatch.setattr(importlib.import_module("ufvideo.eval.run"), "run", _recorder(calls, result))
    metrics = dsl.Metrics(name="m", uri=str(tmp_path / "m"))
    report = dsl.Markdown(name="r", uri=str(tmp_path / "r"))
    out = evaluate_benchmark.evaluate_benchmark(
        benchmark="synthetic",
        checkpoint_uri="ckpt",
        checkpoint_digest="d",
        workspace=str(tmp_path),
        run_id="",
        metrics=metrics,
        report=report,
    )
    assert out == (str(metrics_file),) and metrics.metadata["synthetic.qa_accuracy"] == 50.0
    ((cfg_name, *stack),) = calls
    assert cfg_name == "EvalConfig" and hops(stack, "evaluate_benchmark") == 2, stack


def test_every_step_resolves_its_config_from_the_contract() -> None:
    from ufvideo.config import ConfigError
    from ufvideo.contract import STEPS, config_class, load_step_config, step_runner

    flags = {
        "convert-data": {"source": "mevis", "root": "r", "out": "o"},
        "convert-model": {"src": "s", "out": "o"},
        "merge-model": {"adapter": "a", "out": "o"},
        "register": {"checkpoint": "c"},
        "predict": {"model": "m", "video": "v.mp4", "prompt": "p"},
    }
    for name in STEPS:
        cfg = load_step_config(name, "tiny", flags=flags.get(name))
        assert isinstance(cfg, config_class(name)) and callable(step_runner(name)), name
    with pytest.raises(ConfigError, match="needs 1"):
        load_step_config("train_stage1", "tiny", overrides=["stage=2", "init=x"])
    with pytest.raises(ConfigError, match="unknown step"):
        load_step_config("trian")
    converted = load_step_config("convert-data", flags=flags["convert-data"], overrides=["open_ended=5", "seed=2"])
    assert converted.options == {"open_ended": 5} and converted.seed == 2
