"""What a benchmark is: a `Benchmark` declaration (task kind, metrics, published numbers, data paths) plus four small
named functions `<bench>_load`, `<bench>_prompt`, `<bench>_parse` and `<bench>_score`, and the scoring types.

The table of benchmarks is `ufvideo.eval.benchmarks.TABLE`; this module imports none of them (no cycle).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ufvideo.config import ConfigError
from ufvideo.eval.types import Prediction, Sample, Turn

PER_EXPRESSION = "per_expression"
FRAME_POOLED = "frame_pooled"
AGGREGATIONS = (PER_EXPRESSION, FRAME_POOLED)


@dataclass
class ScoreContext:
    """What scoring needs beyond the parsed rows: the J/F aggregation and the judge (None = not configured)."""

    aggregation: str = PER_EXPRESSION
    judge: Any = None

    def __post_init__(self) -> None:
        if self.aggregation not in AGGREGATIONS:
            raise ConfigError(f"aggregation must be one of {AGGREGATIONS}, got {self.aggregation!r}")


@dataclass
class Scores:
    """A benchmark's result: flat metrics (percent, or 0-5 for judge scores; None = not computed), notes saying
    how they were computed, and details for the report (per-task accuracy, J&F per video, IoUs)."""

    metrics: dict[str, float | None]
    notes: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    aggregation: str | None = None


Loader = Callable[[Path, str], Iterator[Sample]]
Prompter = Callable[[Sample], list[Turn]]
Parser = Callable[..., dict[str, Any]]
Scorer = Callable[[list[dict[str, Any]], ScoreContext], Scores]
MaskLayout = Callable[[Sample, int, int], str]
PriorFn = Callable[[Path], Callable[[Sample], str]]


@dataclass(frozen=True)
class Benchmark:
    """A benchmark declaration.

    paths: default data locations relative to `--data-root` (documentation and the loaders' defaults).
    mask_layout(sample, seg_index, position) -> the relative PNG path of one predicted mask in the official
        layout (position indexes `sample.sam_frames`); None for benchmarks without mask output.
    submission: name of the zip writer for server-scored splits ("mevis", "ref_youtube_vos"), else None.
    prior(data_root) -> answer(sample): the blind baseline's answer for each sample, computed from the benchmark's
        training split only (the `blind_prior` control); None where the benchmark has no training split.
    headline: the metrics a summary shows first (one or two per task), in order; empty = all of `metrics`.
    """

    name: str
    task: str
    metrics: tuple[str, ...]
    split: str
    load: Loader
    prompt: Prompter
    parse: Parser
    score: Scorer
    published: Mapping[str, float] = field(default_factory=dict)
    paths: Mapping[str, str] = field(default_factory=dict)
    mask_layout: MaskLayout | None = None
    submission: str | None = None
    judged: bool = False
    notes: tuple[str, ...] = ()
    prior: PriorFn | None = None
    headline: tuple[str, ...] = ()

    def samples(self, data_root: str | Path, split: str | None = None) -> Iterator[Sample]:
        """What the runner evaluates: each loaded sample with `prompt(sample)` as its conversation. Loaders read
        the data; the prompt is the declaration's, so one benchmark's wording lives in one function."""
        for sample in self.load(Path(data_root), split or self.split):
            sample.conversation = self.prompt(sample)
            yield sample


def parse_prediction(benchmark: Benchmark, prediction: Prediction, sample: Sample, strict: bool = False) -> dict:
    """Run the benchmark's parser and stamp the row with the sample id, so rows can be joined and resumed."""
    row = benchmark.parse(prediction, sample, strict=strict)
    return {"id": sample.id, **row}
