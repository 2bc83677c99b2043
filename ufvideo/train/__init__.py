"""Stage-1 and stage-2 training on the HF `Trainer`: typed config, freeze policies, trainer, callbacks, `run(cfg)`.

Importing this package loads transformers' `Trainer` (seconds); the CLI imports it only inside `ufvideo train`.
"""

from __future__ import annotations

from ufvideo.train.args import TrainConfig, gradient_accumulation
from ufvideo.train.run import run
from ufvideo.train.stages import POLICIES, apply_policy

__all__ = ["POLICIES", "TrainConfig", "apply_policy", "gradient_accumulation", "run"]
