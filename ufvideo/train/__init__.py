"""Stage-1 and stage-2 training on the HF `Trainer`: typed config, freeze policies, trainer, callbacks, `run(cfg)`.

Importing this package loads transformers' `Trainer` (seconds); the CLI imports it only inside `ufvideo train`.
"""

from __future__ import annotations

from ufvideo.train.args import TrainConfig, add_arguments, gradient_accumulation
from ufvideo.train.run import load_config, main, run
from ufvideo.train.stages import POLICIES, apply_policy

__all__ = [
    "POLICIES",
    "TrainConfig",
    "add_arguments",
    "apply_policy",
    "gradient_accumulation",
    "load_config",
    "main",
    "run",
]
