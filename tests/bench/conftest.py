"""The bench scripts import their sibling modules by name (they run as `python bench/<script>.py`); so do the tests."""

from __future__ import annotations

import sys
from pathlib import Path

BENCH = str(Path(__file__).resolve().parents[2] / "bench")
if BENCH not in sys.path:
    sys.path.insert(0, BENCH)
