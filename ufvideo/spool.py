"""Tracking that never stops training: metrics, tags and run endings that cannot reach MLflow are kept in a local
JSONL spool and sent when the server answers again (at the next log, or by the next process using the spool).

While the server is failing it is not asked again for `retry_after` seconds, so an outage (or a server that accepts
connections but never answers) costs training one bounded request timeout per minute, not one per step.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ufvideo.files import atomic_write

log = logging.getLogger(__name__)


class MetricSpool:
    """A JSONL file of pending tracking calls, one `{"run_id", "metrics"|"tags"|"end", ...}` object per line."""

    def __init__(self, path: str | os.PathLike[str], retry_after: float = 60.0) -> None:
        self.path = Path(path)
        self.retry_after = retry_after
        self._down_since: float | None = None

    # ------------------------------------------------------------------ what callers use

    def log_metrics(self, run_id: str, metrics: Mapping[str, float], step: int | None = None) -> bool:
        """Send metrics (replaying anything pending first); on failure spool them. True when they reached MLflow."""
        entry = {"run_id": run_id, "metrics": dict(metrics), "step": step, "time": int(time.time() * 1000)}
        return self._send_or_keep(entry)

    def set_tags(self, run_id: str, tags: Mapping[str, str]) -> bool:
        return self._send_or_keep({"run_id": run_id, "tags": {k: str(v) for k, v in tags.items()}})

    def end_run(self, run_id: str, status: str) -> bool:
        return self._send_or_keep({"run_id": run_id, "end": status, "time": int(time.time() * 1000)})

    def pending(self) -> list[dict[str, Any]]:
        if not self.path.is_file():
            return []
        entries = []
        for number, line in enumerate(self.path.read_text(encoding="utf-8").splitlines(), start=1):
            try:
                entries.append(json.loads(line))
            except json.JSONDecodeError:
                log.warning("%s:%d: unreadable spool line skipped (cut short by a crash)", self.path, number)
        return entries

    def replay(self) -> int:
        """Send every pending entry in order; stops at the first failure (kept for later). Returns how many went."""
        entries = self.pending()
        sent = 0
        try:
            for entry in entries:
                _send(entry)
                sent += 1
        finally:
            if sent:
                self._rewrite(entries[sent:])
        return sent

    # ------------------------------------------------------------------ internals

    def _send_or_keep(self, entry: dict[str, Any]) -> bool:
        if self._down_since is not None and time.monotonic() - self._down_since < self.retry_after:
            self._append(entry)
            return False
        try:
            if self.path.is_file():
                replayed = self.replay()
                if replayed:
                    log.warning("MLflow answers again: replayed %d spooled call(s) from %s", replayed, self.path)
            _send(entry)
        except Exception as err:  # any failure of the tracking backend: training must go on
            if self._down_since is None:
                log.warning(
                    "MLflow tracking failed (%s: %s); training continues, tracking calls are spooled to %s and "
                    "replayed when the server answers",
                    type(err).__name__,
                    " ".join(str(err).split())[:300],
                    self.path,
                )
            self._down_since = time.monotonic()
            self._append(entry)
            return False
        self._down_since = None
        return True

    def _append(self, entry: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(entry, sort_keys=True) + "\n")
            handle.flush()
            os.fsync(handle.fileno())

    def _rewrite(self, entries: list[dict[str, Any]]) -> None:
        if not entries:
            self.path.unlink(missing_ok=True)
            return
        with atomic_write(self.path) as handle:
            handle.writelines(json.dumps(e, sort_keys=True) + "\n" for e in entries)


def _send(entry: Mapping[str, Any]) -> None:
    import mlflow
    from mlflow.entities import Metric, RunTag

    client = mlflow.MlflowClient()
    run_id = entry["run_id"]
    if "metrics" in entry:
        stamp, step = int(entry.get("time") or time.time() * 1000), int(entry.get("step") or 0)
        metrics = [Metric(key, float(value), stamp, step) for key, value in entry["metrics"].items()]
        client.log_batch(run_id, metrics=metrics, synchronous=True)
    elif "tags" in entry:
        client.log_batch(run_id, tags=[RunTag(k, v) for k, v in entry["tags"].items()], synchronous=True)
    elif "end" in entry:
        client.set_terminated(run_id, entry["end"], end_time=entry.get("time"))
