"""A training stage's loss curve as CSV rows, for DVC plots (`ufvideo pipeline history`).

Why from the step checkpoints: the newest `trainer_state.json` holds every logged step up to it, so an interrupted
run still plots what it did.
"""

from __future__ import annotations

from pathlib import Path

from ufvideo.files import read_json


def training_history(run_out: str) -> list[dict[str, float]]:
    """The loss curve of a training stage (`<out>/checkpoints/checkpoint-N/trainer_state.json`, newest N): one row
    per logging step, for DVC plots. Empty when the stage saved no step checkpoint."""
    states = sorted(
        Path(run_out, "checkpoints").glob("checkpoint-*/trainer_state.json"),
        key=lambda p: int(p.parent.name.rsplit("-", 1)[-1]) if p.parent.name.rsplit("-", 1)[-1].isdigit() else -1,
    )
    if not states:
        return []
    history = read_json(states[-1]).get("log_history", [])
    keys = ("loss", "ce_loss", "bce_loss", "dice_loss", "learning_rate")
    rows = []
    for entry in history:
        if "loss" in entry and "step" in entry:
            rows.append({"step": int(entry["step"]), **{k: float(entry[k]) for k in keys if k in entry}})
    return rows


def write_csv(path: str, rows: list[dict[str, float]]) -> None:
    columns = list(dict.fromkeys(key for row in rows for key in row)) or ["step", "loss"]
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    lines = [",".join(columns)] + [",".join(str(row.get(col, "")) for col in columns) for row in rows]
    Path(path).write_text("\n".join(lines) + "\n", encoding="utf-8")
