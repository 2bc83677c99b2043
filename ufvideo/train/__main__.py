"""`python -m ufvideo.train --stage N ...`: the entry point torchrun launches on every rank (same flags as
`ufvideo train`)."""

from __future__ import annotations

import argparse
import json
import logging

from ufvideo.process import supervised
from ufvideo.train.args import add_arguments
from ufvideo.train.run import main

if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m ufvideo.train", description="train one UFVideo stage")
    add_arguments(parser)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    supervised()
    result = main(parser.parse_args())
    if result:
        print(json.dumps(result, indent=2, sort_keys=True))
