"""What verifying shard digests costs the readers: indexing a curated split (`CuratedDataset`, the pass training
does before its first step) with and without the sha256 check, on a generated dataset of realistic records.

    python bench/bench_shard_verify.py --records 200000

Prints the dataset size, the time to hash every shard (the whole cost of the check), the index time with the check
and the share of it the check takes. The check reads each shard once more; the JSON parse dominates.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the test factories' records

from tests.factories import make_record  # noqa: E402
from ufvideo.data.dataset import CuratedDataset  # noqa: E402
from ufvideo.data.schema import TASKS  # noqa: E402
from ufvideo.data.shards import CuratedWriter, read_manifest, verify_shard  # noqa: E402


def _write(out: Path, records: int) -> None:
    with CuratedWriter(out, shard_size=50_000) as writer:
        for i in range(records):
            writer.write(make_record(TASKS[i % len(TASKS)], i))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "data"
        _write(out, args.records)
        shards = read_manifest(out)["shards"]
        size = sum((out / s["path"]).stat().st_size for s in shards)
        hashing, indexing = [], []
        for _ in range(args.repeats):
            start = time.perf_counter()
            for shard in shards:
                verify_shard(out, shard)
            hashing.append(time.perf_counter() - start)
            start = time.perf_counter()
            CuratedDataset(out, "train")
            indexing.append(time.perf_counter() - start)
    best_hash, best_index = min(hashing), min(indexing)
    print("| records | shard MB | sha256 of all shards (s) | index with check (s) | check share |")
    print("|---|---|---|---|---|")
    share = best_hash / best_index
    print(f"| {args.records} | {size / 1e6:.0f} | {best_hash:.2f} | {best_index:.2f} | {share:.0%} |")


if __name__ == "__main__":
    main()
