"""`ufvideo predict`: run a checkpoint or a registered version on one's own video (or a JSONL batch of requests)
and get the answer, spans in seconds, mask PNGs and an overlay video. `from ufvideo.predict import run`."""

from __future__ import annotations

from ufvideo.predict.run import PredictConfig, run

__all__ = ["PredictConfig", "run"]
