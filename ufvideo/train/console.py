"""What a person watching `ufvideo train` sees: one progress bar per stage (steps, ETA, loss, learning rate,
tokens/s) instead of a Python dict per logging step. The dicts still go to MLflow (`callbacks.MLflowLogger`) and to
the console at debug level (`ufvideo -v`). Where stderr is not a terminal (CI, `kubectl logs`), a bar would be a
stream of carriage returns, so a plain line is logged every tenth of the run instead.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import IO, Any

from transformers import TrainerCallback

log = logging.getLogger(__name__)
LINES_WHEN_PIPED = 10  # progress lines per stage when stderr is not a terminal


def _duration(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}h{rest // 60:02d}m" if hours else f"{rest // 60}m{rest % 60:02d}s"


def describe(logs: dict[str, Any]) -> dict[str, str]:
    """The few numbers worth watching, formatted: loss, learning rate and tokens/s (those the log carries)."""
    shown = {}
    loss = logs.get("loss", logs.get("ce_loss"))
    if isinstance(loss, int | float):
        shown["loss"] = f"{loss:.4f}"
    if isinstance(logs.get("learning_rate"), int | float):
        shown["lr"] = f"{logs['learning_rate']:.2e}"
    if isinstance(logs.get("tokens_per_s"), int | float):
        shown["tok/s"] = f"{logs['tokens_per_s']:,.0f}"
    return shown


class ConsoleProgress(TrainerCallback):
    """Rank 0's console view of one training stage; everything else stays quiet."""

    def __init__(self, stage: int | str, stream: IO[str] | None = None) -> None:
        self.stage = stage
        self.stream = stream
        self.bar: Any = None
        self.shown: dict[str, str] = {}
        self.started = 0.0
        self.first_step = 0
        self.next_line = 0
        self.last_line = -1

    @staticmethod
    def _every(total: int) -> int:
        return max(1, total // LINES_WHEN_PIPED)

    def _interactive(self) -> bool:
        stream = self.stream or sys.stderr
        return bool(getattr(stream, "isatty", lambda: False)())

    def on_train_begin(self, args: Any, state: Any, control: Any, **_: Any) -> None:
        if not state.is_world_process_zero:
            return
        self.started, self.first_step = time.monotonic(), state.global_step
        self.next_line = state.global_step + self._every(state.max_steps)
        if self._interactive():
            from tqdm.auto import tqdm

            self.bar = tqdm(
                total=state.max_steps,
                initial=state.global_step,
                desc=f"stage {self.stage}",
                unit="step",
                dynamic_ncols=True,
                file=self.stream or sys.stderr,
            )

    def on_step_end(self, args: Any, state: Any, control: Any, **_: Any) -> None:
        if state.is_world_process_zero and self.bar is not None:
            self.bar.update(state.global_step - self.bar.n)

    def line(self, step: int, total: int) -> str:
        """`stage 2: step 40/400 (10%), loss 1.2345, lr 2.00e-05, tok/s 1,234, ETA 5m00s` (ETA from this run's pace)."""
        elapsed = time.monotonic() - self.started
        done = step - self.first_step
        eta = elapsed / done * (total - step) if done > 0 else None
        fields = [f"{k} {v}" for k, v in self.shown.items()]
        fields.append(f"ETA {_duration(eta)}" if eta is not None else "ETA ?")
        return f"stage {self.stage}: step {step}/{total} ({100 * step // max(total, 1)}%), " + ", ".join(fields)

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **_: Any) -> None:
        """HF logs after `on_step_end`, so the numbers of step N arrive here; the piped line is written here too."""
        if not state.is_world_process_zero or not logs:
            return
        log.debug("step %d: %s", state.global_step, logs)
        self.shown.update(describe(logs))
        if self.bar is not None:
            self.bar.set_postfix(self.shown)
        elif state.global_step != self.last_line and state.global_step >= min(self.next_line, state.max_steps):
            self._write_line(state)

    def _write_line(self, state: Any) -> None:
        self.next_line = state.global_step + self._every(state.max_steps)
        self.last_line = state.global_step
        log.info("%s", self.line(state.global_step, state.max_steps))

    def on_train_end(self, args: Any, state: Any, control: Any, **_: Any) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        elif state.is_world_process_zero and self.last_line != state.global_step:
            self._write_line(state)  # the last step was not logged (logging_steps does not divide it)
