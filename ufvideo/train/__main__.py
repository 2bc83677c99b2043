"""`python -m ufvideo.train --stage N ...`: what torchrun launches on every rank; exactly `ufvideo train ...` (the
flags are declared once, in `ufvideo.cli`)."""

from __future__ import annotations

import sys

from ufvideo.cli import main

if __name__ == "__main__":
    sys.exit(main(["train", *sys.argv[1:]]))
