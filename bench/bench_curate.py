"""Conversion throughput and peak memory for the text-heavy sources (LLaVA-Video-178K, ST-Align, VideoRefer-700K).

Generates a large raw input in each source's real layout (JSON arrays, written incrementally), converts it
with `ufvideo.data.convert.run` in a fresh child process (so peak RSS is the run's own), and prints a Markdown
table: input records/s of wall time, input records per CPU-second (the per-core figure, which holds up when
other jobs share the machine) and peak RSS of the converting processes.

    python bench/bench_curate.py --records 200000 --workers 1
    python bench/bench_curate.py --records 400000 --workers 1 --sources llava_video_178k   # memory vs size
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import resource
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from ufvideo.data.convert import ConvertConfig, run
from ufvideo.data.masks import encode_rle

VIDEOS = 2000  # distinct video files the records point at (existence is checked, content is not read)
TEXT = "The person walks to the table, picks up a red cup and drinks from it while looking out of the window."


def _turns(question: str, answer: str, head: str = "<image>\n") -> list[dict[str, str]]:
    return [{"from": "human", "value": head + question}, {"from": "gpt", "value": answer}]


def _write_array(path: Path, items: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("[")
        for i, item in enumerate(items):
            handle.write(("," if i else "") + json.dumps(item))
        handle.write("]")


def _videos(root: Path, folder: str) -> None:
    (root / folder).mkdir(parents=True, exist_ok=True)
    for v in range(VIDEOS):
        (root / folder / f"v{v}.mp4").touch()


def gen_llava(root: Path, n: int) -> dict[str, Any]:
    _videos(root, "academic_source")
    per = n // 4
    for f in range(4):
        kind = "oe" if f % 2 == 0 else "mc"
        bucket = f"0_30_s_src{f}_v0_1"
        question = f"What does the person do? {TEXT}" if kind == "oe" else "What is picked up?\nA. cup\nB. book"
        items = (
            {
                "id": f"{f}-{i}",
                "data_source": bucket,
                "video": f"academic_source/v{i % VIDEOS}.mp4",
                "conversations": _turns(question, TEXT if kind == "oe" else "A."),
            }
            for i in range(per)
        )
        _write_array(root / bucket / f"{bucket.replace('_v0_1', '')}_{kind}_v0_1_qa_processed.json", items)
    return {"open_ended": None}


def gen_st_align(root: Path, n: int) -> dict[str, Any]:
    _videos(root, "videos")
    per = n // 4
    empty = {
        k: []
        for k in (
            "spatial_height_input_locations",
            "spatial_height_output_locations",
            "spatial_width_input_locations",
            "spatial_width_output_locations",
        )
    }
    for f in range(4):
        stage = "stage2" if f < 2 else "stage3"
        items = (
            {
                "id": i,
                "video": f"videos/v{i % VIDEOS}.mp4",
                "type": "tvg",
                "conversations": _turns(f"When does '{TEXT}' happen?", "It happens at {<TEMP-OUTPUT><TEMP-OUTPUT>}."),
                "variables": {"temporal_input_locations": [], "temporal_output_locations": [0.1, 0.6], **empty},
            }
            if i % 2 == 0
            else {
                "id": i,
                "video": f"videos/v{i % VIDEOS}.mp4",
                "type": "videoqa",
                "conversations": _turns("Why does the person drink?", TEXT),
            }
            for i in range(per)
        )
        _write_array(root / stage / f"part{f}.json", items)
    return {}


def gen_videorefer(root: Path, n: int) -> dict[str, Any]:
    _videos(root, "videos")
    size = (720, 1280)
    masks = []
    for k in range(8):
        mask = np.zeros(size, bool)
        mask[100 + 10 * k : 400 + 10 * k, 200 + 15 * k : 600 + 15 * k] = True
        masks.append({"segmentation": encode_rle(mask)})
    question = "Please give a detailed description of the highlighted object [<region>] in the video."

    def items(count: int, frames: int):
        for i in range(count):
            annotation = [{str(8 * j): masks[(i + j) % 8] for j in range(frames)}]
            yield {
                "id": i,
                "video": f"videos/v{i % VIDEOS}.mp4",
                "height": 720,
                "width": 1280,
                "conversations": _turns(question, TEXT, head="<video>\n"),
                "annotation": annotation,
            }

    third = n // 3
    _write_array(root / "videorefer-detailed-caption-125k.json", items(third, 4))
    _write_array(root / "videorefer-short-caption-500k.json", items(third, 1))
    _write_array(root / "videorefer-qa-75k.json", items(n - 2 * third, 4))
    return {"single_short": None}


GENERATORS = {"llava_video_178k": gen_llava, "st_align": gen_st_align, "videorefer_700k": gen_videorefer}


def _convert(cfg: ConvertConfig, queue: Any) -> None:
    start = time.perf_counter()
    manifest = run(cfg)
    wall = time.perf_counter() - start
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime  # the run's own cost, whatever else ran
    result = {"wall": wall, "cpu": cpu, "records": manifest["records"], "rejects": manifest["rejects"]["total"]}
    queue.put({**result, "rss_kb": max(own.ru_maxrss, kids.ru_maxrss)})


def bench(source: str, n: int, workers: int, tmp: Path) -> dict[str, Any]:
    raw, out = tmp / source / "raw", tmp / source / "out"
    options = GENERATORS[source](raw, n)
    size_mb = sum(p.stat().st_size for p in raw.rglob("*.json")) / 2**20
    cfg = ConvertConfig(source, str(raw), str(out), workers=workers, shard_size=5000, options=options)
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_convert, args=(cfg, queue))
    child.start()
    result = queue.get()
    child.join()
    extra = {"in_per_s": n / result["wall"], "per_cpu_s": n / result["cpu"]}
    return {"source": source, "input": n, "mb": size_mb, "workers": workers, **result, **extra}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--sources", nargs="*", default=list(GENERATORS))
    args = parser.parse_args()
    print(
        "| source | input records | input MB | workers | output records | rejects | wall s | CPU s "
        "| input rec/s (wall) | input rec per CPU-second | peak RSS MB |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory(prefix="bench_curate_") as tmp:
        for source in args.sources:
            r = bench(source, args.records, args.workers, Path(tmp))
            print(
                f"| {r['source']} | {r['input']:,} | {r['mb']:.0f} | {r['workers']} | {r['records']:,} "
                f"| {r['rejects']} | {r['wall']:.1f} | {r['cpu']:.1f} | {r['in_per_s']:,.0f} "
                f"| {r['per_cpu_s']:,.0f} | {r['rss_kb'] / 1024:.0f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
