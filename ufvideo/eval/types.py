"""What flows through an evaluation: a benchmark `Sample` (everything inference needs plus ground truth) and
the model's `Prediction` for it. Loaders make Samples, `ufvideo.eval.inference.predict` makes Predictions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

Rle = dict[str, Any]
Turn = dict[str, str]


@dataclass
class Sample:
    """One benchmark item.

    video: a video file path, or a list of frame image paths (a frame folder); absolute, or relative to the
        data root. `fps` is set where the source has no timing of its own (MVBench's TVQA frames: 3 fps).
    clip: (start, end) seconds to sample frames from (MVBench's bounded tasks); None = the whole video.
    conversation: ChatML turns `{"from": "human"|"gpt", "value": str}`. With `teacher_forced` the last gpt turn
        (e.g. "Sure, [SEG].") is part of the input, as the public RVOS evaluation feeds it, and nothing is generated.
    regions: one `{absolute frame index: RLE}` per `<region>` in the prompt, in order; `region_mode` says how the
        model turns them into tokens ("single": the one given frame; "multi": every given frame).
    sam_frames: absolute frame indices at which one mask per `[SEG]` is wanted, in output order.
    ground_truth: whatever the benchmark's parse/score functions compare against (never read by inference).
    meta: names the official output layouts need (video key, expression id, frame names, task type, ...).
    """

    id: str
    benchmark: str
    task: str
    video: str | list[str]
    conversation: list[Turn]
    clip: tuple[float | None, float | None] | None = None
    fps: float | None = None
    regions: list[dict[int, Rle]] | None = None
    region_mode: str | None = None
    sam_frames: list[int] | None = None
    teacher_forced: bool = False
    height: int | None = None
    width: int | None = None
    ground_truth: dict[str, Any] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def prompt(self) -> str:
        """The first human turn, the text the public scripts call the question/instruction."""
        return next(t["value"] for t in self.conversation if t["from"] == "human")


@dataclass
class Prediction:
    """The model's answer to one Sample.

    text: the decoded answer with temporal tokens kept (`<TEMP-NNN>`); empty when teacher-forced.
    masks: one (len(sample.sam_frames), H, W) bool array per `[SEG]`, at the video's resolution.
    spans: time spans (seconds) the model decoded, informational; benchmarks parse `text` as the public code does.
    """

    id: str
    text: str = ""
    masks: list[np.ndarray] = field(default_factory=list)
    spans: list[tuple[float, float]] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)
