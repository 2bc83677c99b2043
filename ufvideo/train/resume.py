"""Which step checkpoint a training run may resume from: the newest complete one *of the same run*.

Step checkpoints persist across reruns (DVC keeps them with `persist: true`), so a rerun after a kill resumes. A
rerun with another recipe or other data must not: `checkpoints/run.json` records what decides the weights (the
config without its output locations and bookkeeping, plus the data digest), and checkpoints made under another
key are removed before training starts fresh.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any

from ufvideo.config import to_dict
from ufvideo.files import read_json, write_json
from ufvideo.train.args import TrainConfig, checkpoints_dir
from ufvideo.train.callbacks import CHECKPOINT_PREFIX, latest_complete_checkpoint

log = logging.getLogger(__name__)
RUN_KEY_FILE = "run.json"
# Fields that change where things go or how often they are logged, never the weights: a rerun may change them.
NOT_IN_KEY = frozenset(
    {"out", "output_uri", "dataloader_num_workers", "frame_cache_mb", "save_total_limit", "logging_steps"}
)


def run_key(cfg: TrainConfig, data_digest: str) -> dict[str, Any]:
    config = {key: value for key, value in to_dict(cfg).items() if key not in NOT_IN_KEY}
    return {"config": config, "data_digest": data_digest}


def resume_point(cfg: TrainConfig, data_digest: str, clean: bool = False) -> str | None:
    """The checkpoint to resume from, or None. With `clean` (rank 0), checkpoints of another run key are removed
    and the current key is recorded."""
    directory = checkpoints_dir(cfg)
    key = run_key(cfg, data_digest)
    if clean:
        _drop_foreign(directory, key)
        write_json(directory / RUN_KEY_FILE, key)
    return latest_complete_checkpoint(directory, clean=clean)


def _drop_foreign(directory: Path, key: dict[str, Any]) -> None:
    found = sorted(directory.glob(f"{CHECKPOINT_PREFIX}*")) if directory.is_dir() else []
    if not found:
        return
    marker = directory / RUN_KEY_FILE
    recorded = read_json(marker) if marker.is_file() else None
    if recorded == key:
        return
    changed = _changed(recorded, key)
    log.warning("%s: checkpoints of another run (%s differ); starting fresh", directory, ", ".join(changed))
    for path in found:
        shutil.rmtree(path, ignore_errors=True)


def _changed(recorded: Any, key: dict[str, Any]) -> list[str]:
    if not isinstance(recorded, dict):
        return ["run key missing"]
    old, new = recorded.get("config") or {}, key["config"]
    names = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
    if recorded.get("data_digest") != key["data_digest"]:
        names.append("data")
    return names or ["run key"]
