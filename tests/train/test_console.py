"""The training console: a progress bar per stage with loss, learning rate, tokens/s and ETA on a terminal, a line
per tenth of the run when piped, the per-step dicts only at debug level, and no raw dicts from HF's printer."""

from __future__ import annotations

import io
import logging
from pathlib import Path

import pytest
from transformers import TrainerControl, TrainerState, TrainingArguments
from transformers.trainer_callback import PrinterCallback

from ufvideo.train.console import ConsoleProgress, describe

from .conftest import tiny_config


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _drive(progress: ConsoleProgress, steps: int = 4) -> None:
    """What the Trainer calls during `steps` optimizer steps with a log after each."""
    args = TrainingArguments(output_dir="unused", report_to="none")
    state, control = TrainerState(max_steps=steps), TrainerControl()
    progress.on_train_begin(args, state, control)
    for step in range(1, steps + 1):
        state.global_step = step
        logs = {"loss": 2.0 / step, "learning_rate": 1e-3 * step, "tokens_per_s": 1234.5, "grad_norm": 0.5}
        progress.on_step_end(args, state, control)  # HF's order: the step ends, then its numbers are logged
        progress.on_log(args, state, control, logs=logs)
    progress.on_train_end(args, state, control)


def test_a_terminal_gets_one_progress_bar_with_the_numbers_that_matter(caplog: pytest.LogCaptureFixture) -> None:
    terminal = _Terminal()
    with caplog.at_level(logging.INFO, logger="ufvideo.train.console"):
        _drive(ConsoleProgress(2, stream=terminal))
    shown = terminal.getvalue()
    assert "stage 2" in shown and "4/4" in shown
    assert "loss=0.5000" in shown and "lr=4.00e-03" in shown and "tok/s=1,234" in shown  # the last log's values
    assert "{" not in shown and "grad_norm" not in shown
    assert not caplog.records  # nothing else at info level


def test_piped_output_gets_a_line_per_tenth_and_dicts_only_at_debug(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="ufvideo.train.console"):
        _drive(ConsoleProgress(1, stream=io.StringIO()), steps=20)
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 10 and lines[0].startswith("stage 1: step 2/20 (10%), loss 1.0000, lr 2.00e-03")
    assert lines[-1].startswith("stage 1: step 20/20 (100%)") and "ETA 0m00s" in lines[-1]
    assert all("{" not in line for line in lines)
    caplog.clear()
    with caplog.at_level(logging.DEBUG, logger="ufvideo.train.console"):
        _drive(ConsoleProgress(1, stream=io.StringIO()), steps=2)
    debug = [r.getMessage() for r in caplog.records if r.levelno == logging.DEBUG]
    assert debug[0] == "step 1: {'loss': 2.0, 'learning_rate': 0.001, 'tokens_per_s': 1234.5, 'grad_norm': 0.5}"


def test_describe_takes_what_the_log_carries() -> None:
    assert describe({"ce_loss": 1.5, "epoch": 0.1}) == {"loss": "1.5000"}
    assert describe({}) == {}


def test_the_trainer_prints_progress_not_dicts(synth_dir: Path, tmp_path: Path) -> None:
    from ufvideo.data.dataset import CuratedDataset
    from ufvideo.train.run import _load_settings, build_model, make_trainer

    cfg = tiny_config(1, synth_dir, tmp_path / "out")
    model, processor = build_model(cfg)
    trainer = make_trainer(cfg, model, processor, CuratedDataset(cfg.data, cfg.split, _load_settings(cfg, model)))
    kinds = [type(c) for c in trainer.callback_handler.callbacks]
    assert PrinterCallback not in kinds and kinds.count(ConsoleProgress) == 1
    assert next(c for c in trainer.callback_handler.callbacks if isinstance(c, ConsoleProgress)).stage == 1
