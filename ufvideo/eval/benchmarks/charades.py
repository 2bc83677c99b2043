"""Charades-STA test: temporal grounding of a sentence, scored with R@{0.3,0.5,0.7} (IoU strictly above) and
mIoU on relative spans, as UFVideo's `eval_video_TVG.py` (scaling both spans by the duration changes nothing).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ufvideo.errors import DataError
from ufvideo.eval import metrics as M
from ufvideo.eval.benchmarks.common import span_scores, video_turns
from ufvideo.eval.benchmarks.roots import benchmark_root
from ufvideo.eval.registry import Benchmark, ScoreContext, Scores
from ufvideo.eval.types import Prediction, Sample, Turn
from ufvideo.files import read_json

ROOT = "charades"
VIDEOS = "Charades_v1_480"
QUESTION = "When is {event} occur in the video? Only give the start and end timestamp."


def _sample(index: int, video: Path, caption: str, span: tuple[float, float]) -> Sample:
    sample = Sample(
        id=f"{video.stem}/{index}",
        benchmark="charades_sta",
        task="tvg",
        video=str(video),
        conversation=[],
        ground_truth={"span": [float(span[0]), float(span[1])]},
        meta={"video": video.stem, "caption": caption},
    )
    return sample


def _from_json(path: Path, videos: Path) -> Iterator[Sample]:
    """UFVideo/LLaVA-ST `test.json`: `{image_id, caption, timestamp: [s, e] relative}`."""
    for i, item in enumerate(read_json(path)):
        if not {"image_id", "caption", "timestamp"} <= set(item):
            raise DataError(f"{path}[{i}]: needs image_id, caption and timestamp")
        name = Path(item["image_id"]).name
        name = name[2:] if name.startswith("v_") else name
        yield _sample(i, videos / name, item["caption"], tuple(item["timestamp"]))


def _from_txt(path: Path, videos: Path) -> Iterator[Sample]:
    """The official `charades_sta_test.txt` (`VID start end##sentence`, seconds); spans made relative by probing."""
    from ufvideo.data.video import probe

    durations: dict[str, float] = {}
    with open(path, encoding="utf-8") as handle:
        for i, line in enumerate(handle):
            if not line.strip():
                continue
            try:
                head, sentence = line.rstrip("\n").split("##", 1)
                vid, start, end = head.split()
                span = (float(start), float(end))
            except ValueError:
                raise DataError(f"{path}:{i + 1}: expected 'VIDEO start end##sentence', got {line!r}") from None
            video = videos / f"{vid}.mp4"
            if vid not in durations:
                durations[vid] = probe(video).duration
            yield _sample(i, video, sentence, (span[0] / durations[vid], span[1] / durations[vid]))


def charades_load(data_root: Path, split: str = "test") -> Iterator[Sample]:
    markers = (f"{split}.json", f"charades_sta_{split}.txt")
    root = benchmark_root(data_root, (ROOT, "Charades-STA", "charades_sta"), markers, "Charades-STA")
    json_path, txt_path = root / f"{split}.json", root / f"charades_sta_{split}.txt"
    if json_path.is_file():
        yield from _from_json(json_path, root / VIDEOS)
    elif txt_path.is_file():
        yield from _from_txt(txt_path, root / VIDEOS)
    else:
        raise FileNotFoundError(f"{root}: neither {json_path.name} nor {txt_path.name} found")


def charades_prompt(sample: Sample) -> list[Turn]:
    event = sample.meta["caption"].strip().lower().rstrip(".")
    return video_turns(QUESTION.format(event=event))


def charades_parse(prediction: Prediction, sample: Sample, strict: bool = False) -> dict[str, Any]:
    span = M.parse_span(prediction.text, strict=strict)
    return {
        "video": sample.meta["video"],
        "pred_text": prediction.text,
        "pred_span": None if span is None else list(span),
        "gt_span": sample.ground_truth["span"],
    }


def charades_score(rows: list[dict[str, Any]], ctx: ScoreContext) -> Scores:
    return span_scores(rows)


BENCHMARK = Benchmark(
    name="charades_sta",
    task="tvg",
    metrics=("r_at_0_3", "r_at_0_5", "r_at_0_7", "miou"),
    split="test",
    load=charades_load,
    prompt=charades_prompt,
    parse=charades_parse,
    score=charades_score,
    published={"r_at_0_3": 71.2, "r_at_0_5": 49.6, "r_at_0_7": 24.1, "miou": 44.7},
    paths={"annotations": f"{ROOT}/test.json or {ROOT}/charades_sta_test.txt", "videos": f"{ROOT}/{VIDEOS}"},
)
