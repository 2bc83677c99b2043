"""`python -m ufvideo.pipeline {compile,submit,run-local,history}`: the same commands as `ufvideo pipeline ...`."""

from __future__ import annotations

import argparse
import logging
import sys

from ufvideo.pipeline.commands import add_parser

if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m ufvideo.pipeline")
    add_parser(parser.add_subparsers(dest="group", required=True))
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = parser.parse_args(["pipeline", *sys.argv[1:]])
    sys.exit(args.func(args))
