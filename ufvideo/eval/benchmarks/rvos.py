"""Referring video object segmentation: MeViS valid_u (scored here) and valid (server), Ref-YouTube-VOS valid
(server) and Ref-DAVIS17 val (scored here). One `[SEG]` per expression, masks on every frame of the video.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from ufvideo.data.masks import union_rles
from ufvideo.errors import DataError
from ufvideo.eval.benchmarks.common import jf_scores, mask_row, rvos_turns
from ufvideo.eval.benchmarks.roots import benchmark_root
from ufvideo.eval.registry import Benchmark, ScoreContext, Scores
from ufvideo.eval.types import Prediction, Rle, Sample, Turn
from ufvideo.files import read_json

SERVER_NOTE = "no public ground truth: J, F and J&F come from the official server (upload submission.zip)"
JF_METRICS = ("j", "f", "jf")


def meta_videos(meta_path: Path) -> dict[str, Any]:
    meta = read_json(meta_path)
    if not isinstance(meta, Mapping) or not isinstance(meta.get("videos"), Mapping):
        raise DataError(f"{meta_path}: expected {{'videos': {{...}}}}")
    return dict(meta["videos"])


def sorted_expressions(video: Mapping[str, Any]) -> list[tuple[str, Mapping[str, Any]]]:
    return sorted(video["expressions"].items(), key=lambda kv: int(kv[0]) if str(kv[0]).isdigit() else kv[0])


def union_track(mask_dict: Mapping[str, list[Rle | None]], anno_ids: list[int], frames: int, where: str) -> list:
    """Per frame, the union of the expression's objects (MeViS/ReVOS GT); None where none of them is present."""
    tracks = []
    for anno in anno_ids:
        track = mask_dict.get(str(anno))
        if track is None:
            raise DataError(f"{where}: anno_id {anno} not in mask_dict")
        if len(track) != frames:
            raise DataError(f"{where}: anno_id {anno} has {len(track)} masks for {frames} frames")
        tracks.append(track)
    out = []
    for t in range(frames):
        present = [track[t] for track in tracks if track[t]]
        out.append(None if not present else present[0] if len(present) == 1 else union_rles(present))
    return out


def rvos_sample(
    benchmark: str, frames_dir: Path, vid: str, frames: list[str], exp_id: str, expression: str, **extra: Any
) -> Sample:
    sample = Sample(
        id=f"{vid}/{exp_id}",
        benchmark=benchmark,
        task="rvos",
        video=[str(frames_dir / vid / f"{name}.jpg") for name in frames],
        conversation=[],
        sam_frames=list(range(len(frames))),
        teacher_forced=True,
        ground_truth=extra.pop("ground_truth", {}),
        meta={"video": vid, "exp_id": exp_id, "frames": list(frames), "expression": expression, **extra},
    )
    return sample


def rvos_prompt(sample: Sample) -> list[Turn]:
    return rvos_turns(sample.meta["expression"])


def mevis_load(data_root: Path, split: str = "valid_u") -> Iterator[Sample]:
    if Path(data_root).name == split and (Path(data_root) / "meta_expressions.json").is_file():
        data_root = Path(data_root).parent  # --data-root pointed at the split folder itself
    names = ("mevis", "MeViS_release")
    root = benchmark_root(data_root, names, (f"{split}/meta_expressions.json",), f"MeViS ({split})") / split
    videos = meta_videos(root / "meta_expressions.json")
    mask_dict = read_json(root / "mask_dict.json") if split != "valid" else None
    for vid, video in videos.items():
        frames = [str(f) for f in video["frames"]]
        for exp_id, exp in sorted_expressions(video):
            gt = {}
            if mask_dict is not None:
                where = f"{root / 'meta_expressions.json'}: video {vid} expression {exp_id}"
                gt = {"masks": [union_track(mask_dict, list(exp["anno_id"]), len(frames), where)]}
            yield rvos_sample(f"mevis_{split}", root / "JPEGImages", vid, frames, exp_id, exp["exp"], ground_truth=gt)


def ref_youtube_vos_load(data_root: Path, split: str = "valid") -> Iterator[Sample]:
    """The competition valid set: valid/meta_expressions.json also lists the test videos, which are removed."""
    names = ("ref-youtube-vos", "Ref-YouTube-VOS", "ref_youtube_vos", "refer_youtube_vos")
    root = benchmark_root(data_root, names, (f"meta_expressions/{split}/meta_expressions.json",), "Ref-YouTube-VOS")
    videos = meta_videos(root / "meta_expressions" / split / "meta_expressions.json")
    test_meta = root / "meta_expressions" / "test" / "meta_expressions.json"
    if split == "valid" and test_meta.is_file():
        for vid in meta_videos(test_meta):
            videos.pop(vid, None)
    for vid, video in sorted(videos.items()):
        frames = [str(f) for f in video["frames"]]
        for exp_id, exp in sorted_expressions(video):
            yield rvos_sample("ref_youtube_vos", root / split / "JPEGImages", vid, frames, exp_id, exp["exp"])


def ref_davis17_load(data_root: Path, split: str = "valid") -> Iterator[Sample]:
    """Ref-DAVIS17 converted to the Ref-YouTube-VOS layout; GT is `Annotations/<vid>/<frame>.png == obj_id`."""
    names = ("ref-davis17", "Ref-DAVIS17", "ref_davis17", "davis17")
    root = benchmark_root(data_root, names, (f"meta_expressions/{split}/meta_expressions.json",), "Ref-DAVIS17")
    videos = meta_videos(root / "meta_expressions" / split / "meta_expressions.json")
    for vid, video in sorted(videos.items()):
        frames = [str(f) for f in video["frames"]]
        pngs = [str(root / split / "Annotations" / vid / f"{name}.png") for name in frames]
        for exp_id, exp in sorted_expressions(video):
            gt = {"png": pngs, "obj_id": int(exp["obj_id"])}
            yield rvos_sample(
                "ref_davis17", root / split / "JPEGImages", vid, frames, exp_id, exp["exp"], ground_truth=gt
            )


def rvos_parse(prediction: Prediction, sample: Sample, strict: bool = False) -> dict[str, Any]:
    row: dict[str, Any] = {"video": sample.meta["video"], "exp_id": sample.meta["exp_id"]}
    if not sample.ground_truth:
        return {**row, "scored": False, "missing": not prediction.masks}
    return {**row, "scored": True, **mask_row(prediction, sample)}


def rvos_score(rows: list[dict[str, Any]], ctx: ScoreContext) -> Scores:
    if rows and not any(r.get("scored") for r in rows):
        missing = sum(1 for r in rows if r.get("missing"))
        notes = [SERVER_NOTE] + ([f"{missing} expression(s) without a predicted mask track"] if missing else [])
        return Scores(dict.fromkeys(JF_METRICS), notes, aggregation=ctx.aggregation)
    return jf_scores(rows, ctx)


def mevis_layout(sample: Sample, seg_index: int, position: int) -> str:
    """`<video>/<exp_id>/<frame>.png`: MeViS's prediction and submission layout."""
    return f"{sample.meta['video']}/{sample.meta['exp_id']}/{sample.meta['frames'][position]}.png"


def ref_youtube_vos_layout(sample: Sample, seg_index: int, position: int) -> str:
    """`Annotations/<video>/<exp_id>/<frame>.png`: the zip the Ref-YouTube-VOS server expects."""
    return "Annotations/" + mevis_layout(sample, seg_index, position)


MEVIS_VALID_U = Benchmark(
    name="mevis_valid_u",
    task="rvos",
    metrics=JF_METRICS,
    split="valid_u",
    load=mevis_load,
    prompt=rvos_prompt,
    parse=rvos_parse,
    score=rvos_score,
    published={"jf": 62.8, "j": 60.9, "f": 64.6},
    mask_layout=mevis_layout,
    paths={"split": "mevis/valid_u"},
    notes=("UFVideo's published number is frame-pooled; the default here is the official per-expression mean",),
)

MEVIS_VALID = Benchmark(
    name="mevis_valid",
    task="rvos",
    metrics=JF_METRICS,
    split="valid",
    load=mevis_load,
    prompt=rvos_prompt,
    parse=rvos_parse,
    score=rvos_score,
    published={"jf": 55.1, "j": 52.3, "f": 57.8},
    mask_layout=mevis_layout,
    paths={"split": "mevis/valid"},
    submission="mevis",
)

REF_YOUTUBE_VOS = Benchmark(
    name="ref_youtube_vos",
    task="rvos",
    metrics=JF_METRICS,
    split="valid",
    load=ref_youtube_vos_load,
    prompt=rvos_prompt,
    parse=rvos_parse,
    score=rvos_score,
    published={"jf": 73.4, "j": 72.2, "f": 74.6},
    mask_layout=ref_youtube_vos_layout,
    paths={"root": "ref-youtube-vos"},
    submission="ref_youtube_vos",
)

REF_DAVIS17 = Benchmark(
    name="ref_davis17",
    task="rvos",
    metrics=JF_METRICS,
    split="valid",
    load=ref_davis17_load,
    prompt=rvos_prompt,
    parse=rvos_parse,
    score=rvos_score,
    published={"jf": 74.6, "j": 70.3, "f": 78.9},
    mask_layout=mevis_layout,
    paths={"root": "ref-davis17"},
    notes=(
        "per-expression mean over all expressions (Sa2VA's protocol); ReferFormer instead averages four "
        "DAVIS-toolkit runs, one per annotator set",
    ),
)
