"""Tests of the synthetic dataset: determinism, validity, every task kind, and answers/masks/spans that agree
with the renderer (the ground truth) and with the mp4 files actually written.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest

from ufvideo.data import synthetic
from ufvideo.data.masks import decode_rle
from ufvideo.data.schema import TASKS, record_errors
from ufvideo.data.shards import iter_records, validate_dir
from ufvideo.data.synthetic import SynthConfig, corpus_texts, scene_for, split_of
from ufvideo.data.synthetic import generate as run
from ufvideo.data.synthetic import language as lang
from ufvideo.data.synthetic.scene import COLOURS, SHAPES, SIZES, Scene, full_masks, render_frames, shape_template

SEED, VIDEOS = 1, 8
SPAN_RE = re.compile(r"\{<TEMP-(\d{3})><TEMP-(\d{3})>\}")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> tuple[SynthConfig, list[tuple[str, dict[str, Any]]]]:
    cfg = SynthConfig(out=str(tmp_path_factory.mktemp("synth") / "a"), seed=SEED, videos=VIDEOS)
    run(cfg)
    records = [(split, r) for split in ("train", "test") for r in iter_records(cfg.out, split=split)]
    return cfg, records


@pytest.fixture(scope="module")
def scenes(dataset: tuple[SynthConfig, list]) -> dict[int, Scene]:
    cfg, _ = dataset
    return {i: scene_for(cfg, i) for i in range(cfg.videos)}


def _files(root: str | Path) -> dict[str, bytes]:
    root = Path(root)
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _decode(path: Path) -> np.ndarray:
    with av.open(str(path)) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])


def _of(records: list[tuple[str, dict[str, Any]]], task: str) -> list[dict[str, Any]]:
    return [r for _, r in records if r["task"] == task]


def _answer(record: dict[str, Any]) -> str:
    return record["conversations"][1]["value"]


def test_every_task_kind_and_split_is_present(dataset: tuple[SynthConfig, list]) -> None:
    cfg, records = dataset
    assert {r["task"] for _, r in records} == set(TASKS)
    assert {r["region_mode"] for r in _of(records, "referring")} == {"single", "multi"}
    assert len(records) == cfg.videos * len(synthetic.BUILDERS)
    train = {r["video"] for s, r in records if s == "train"}
    test = {r["video"] for s, r in records if s == "test"}
    assert train and test and not train & test
    assert test == {f"videos/s{SEED}-{i:05d}.mp4" for i in range(cfg.videos) if split_of(i, cfg.test_every) == "test"}


def test_dataset_validates_and_videos_exist(dataset: tuple[SynthConfig, list]) -> None:
    cfg, records = dataset
    report = validate_dir(cfg.out)
    assert report.ok, report.errors[:5]
    assert report.records == len(records)
    for _, record in records:
        assert record_errors(record) == []
        assert record["id"].startswith("synthetic/") and record["source"] == "synthetic"
        assert (Path(cfg.out) / record["video"]).is_file()
        assert record["duration"] == record["num_frames"] / record["fps"]


def test_same_seed_gives_identical_bytes(tmp_path: Path, dataset: tuple[SynthConfig, list]) -> None:
    cfg, _ = dataset
    run(SynthConfig(out=str(tmp_path / "b"), seed=SEED, videos=VIDEOS))
    first, second = _files(cfg.out), _files(tmp_path / "b")
    assert sorted(first) == sorted(second)
    assert [k for k in first if first[k] != second[k]] == []


def test_videos_do_not_depend_on_the_count_and_seeds_differ(tmp_path: Path, dataset: tuple[SynthConfig, list]) -> None:
    cfg, records = dataset
    run(SynthConfig(out=str(tmp_path / "few"), seed=SEED, videos=2))
    run(SynthConfig(out=str(tmp_path / "other"), seed=SEED + 1, videos=2))
    full, few, other = _files(cfg.out), _files(tmp_path / "few"), _files(tmp_path / "other")
    for i in range(2):
        assert few[f"videos/s{SEED}-{i:05d}.mp4"] == full[f"videos/s{SEED}-{i:05d}.mp4"]
        assert other[f"videos/s{SEED + 1}-{i:05d}.mp4"] != full[f"videos/s{SEED}-{i:05d}.mp4"]
    shared = [r for _, r in records if r["meta"]["video_index"] < 2]
    assert list(iter_records(tmp_path / "few", split="train")) == shared
    other_texts = [_answer(r) for r in iter_records(tmp_path / "other", split="train")]
    assert other_texts != [_answer(r) for r in shared]


def test_targets_and_regions_are_the_renderers_masks(dataset: tuple[SynthConfig, list], scenes: dict) -> None:
    _, records = dataset
    checked = 0
    for _, record in records:
        scene = scenes[record["meta"]["video_index"]]
        objs = [scene.objects[i] for i in record["meta"]["objects"]]
        for masks, obj in zip(record.get("regions", []), objs):
            for key, rle in masks.items():
                assert np.array_equal(decode_rle(rle), scene.masks[obj.index, int(key)])
                checked += 1
        for masks in record.get("targets", []):
            (obj,) = objs
            for key, rle in masks.items():
                expected = scene.masks[obj.index, int(key)]
                if rle is None:
                    assert not expected.any(), f"{record['id']}: null target on frame {key} where the object is visible"
                else:
                    assert np.array_equal(decode_rle(rle), expected)
                    checked += 1
    assert checked > 100


def test_mp4_shows_each_objects_colour_inside_its_mask(dataset: tuple[SynthConfig, list], scenes: dict) -> None:
    cfg, _ = dataset
    names = list(COLOURS)
    palette = np.array([COLOURS[n] for n in names])
    for index in (0, 3):
        scene = scenes[index]
        frames = _decode(Path(cfg.out) / "videos" / f"s{SEED}-{index:05d}.mp4")
        assert frames.shape == (scene.num_frames, scene.height, scene.width, 3)
        # H.264 is lossy: the whole frame is close to the render, and every object's pixels read as its colour.
        assert np.abs(frames.astype(int) - render_frames(scene).astype(int)).mean() < 4.0
        for obj in scene.objects:
            for t in range(obj.start, obj.end + 1):
                median = np.median(frames[t][scene.masks[obj.index, t]].astype(int), axis=0)
                assert names[int(np.abs(palette - median).sum(axis=1).argmin())] == obj.colour
            for t in set(range(scene.num_frames)) - set(range(obj.start, obj.end + 1)):
                assert not scene.masks[obj.index, t].any()


def _spans(text: str) -> list[tuple[int, int]]:
    return [(int(a), int(b)) for a, b in SPAN_RE.findall(text)]


def test_time_spans_match_visibility(dataset: tuple[SynthConfig, list], scenes: dict) -> None:
    _, records = dataset
    for record in _of(records, "tvg") + _of(records, "dvc") + _of(records, "pixtrqa"):
        scene = scenes[record["meta"]["video_index"]]
        spans = _spans(_answer(record))
        assert spans and len(spans) == len(record["meta"]["objects"])
        for (a, b), index in zip(spans, record["meta"]["objects"]):
            visible = scene.visible_frames(scene.objects[index])
            assert visible == list(range(visible[0], visible[-1] + 1)), "an object is visible on one contiguous span"
            assert a == math.floor(99 * visible[0] / scene.num_frames + 0.5)
            assert b == math.floor(99 * (visible[-1] + 1) / scene.num_frames + 0.5)
            assert a < b
    for record in _of(records, "pixtrqa"):
        assert re.match(r"It appears during \{<TEMP-\d{3}><TEMP-\d{3}>\}\. ", _answer(record))
    assert any(a > 0 or b < 99 for r in _of(records, "tvg") for a, b in _spans(_answer(r)))


def test_time_token_rounds_half_up() -> None:
    assert lang.time_token(0.0, 5.0) == 0
    assert lang.time_token(5.0, 5.0) == 99
    assert lang.time_token(2.5, 5.0) == 50  # 49.5 rounds up, not to even
    assert lang.frame_span(0, 39, 8, 5.0) == "{<TEMP-000><TEMP-099>}"


def _options(question: str) -> list[str]:
    return re.findall(r"\(([A-D])\) (.+?)(?=\n| \([A-D]\) |\. Answer|$)", question)


def _mc_truth(kind: str, obj: Any, scene: Scene) -> str:
    """The option text that is true in the rendered scene, computed independently of the builder."""
    if kind == "count":
        return lang.number(len(scene.objects))
    if kind == "motion":
        return lang.motion(obj)
    if kind == "which_motion":
        return f"the {obj.name}"
    return {"colour": obj.colour, "shape": obj.shape}[kind]


def test_mcqa_letter_points_at_the_correct_option(dataset: tuple[SynthConfig, list], scenes: dict) -> None:
    _, records = dataset
    for record in _of(records, "mcqa"):
        scene = scenes[record["meta"]["video_index"]]
        options = _options(record["conversations"][0]["value"])
        assert [letter for letter, _ in options] == list("ABCD")
        texts = [text for _, text in options]
        assert len(set(texts)) == 4
        kind, objs = record["meta"]["kind"], [scene.objects[i] for i in record["meta"]["objects"]]
        truth = _mc_truth(kind, objs[0], scene)
        assert texts.count(truth) == 1
        assert _answer(record) == "ABCD"[texts.index(truth)]


def _fits(expr: str, obj: Any) -> bool:
    """Whether an expression describes `obj`, read word by word (independent of how the builder chose it)."""
    words = expr.split()
    for vocabulary, value in ((COLOURS, obj.colour), (SHAPES, obj.shape), (SIZES, obj.size)):
        named = [w for w in words if w in vocabulary]
        if named and named != [value]:
            return False
    verb = next((i for i, w in enumerate(words) if w in ("moving", "bouncing", "staying")), None)
    return verb is None or " ".join(words[verb:]) == lang.motion_ing(obj)


def test_answers_follow_from_the_scene(dataset: tuple[SynthConfig, list], scenes: dict) -> None:
    _, records = dataset
    for _, record in records:
        scene = scenes[record["meta"]["video_index"]]
        objs = [scene.objects[i] for i in record["meta"]["objects"]]
        answer = _answer(record)
        if record["task"] == "caption":
            assert f"{lang.number(len(scene.objects))} object" in answer
            for obj in scene.objects:
                assert f"{lang.full_name(obj)} " in answer and lang.motion(obj) in answer
        if record["task"] == "qa" and record["meta"]["kind"] in ("colour", "shape", "size"):
            assert getattr(objs[0], record["meta"]["kind"]) in answer
        if record["task"] in ("pixrqa", "pixhqa", "pixtrqa"):
            assert lang.motion(objs[0]) in answer and answer.endswith("is [SEG].")
            assert "The segmentation mask" in answer
        if record["task"] == "rvos":
            expr = record["meta"]["expression"]
            assert f"the {expr} in this image" in record["conversations"][0]["value"]
            matches = [o for o in scene.objects if _fits(expr, o)]
            assert matches == objs, f"{record['id']}: expression {expr!r} must pick out exactly one object"


def test_referring_regions_follow_their_mode(dataset: tuple[SynthConfig, list], scenes: dict) -> None:
    _, records = dataset
    for record in _of(records, "referring") + _of(records, "pixrqa"):
        scene = scenes[record["meta"]["video_index"]]
        question = record["conversations"][0]["value"]
        assert question.count("<region>") == len(record["regions"]) == len(record["meta"]["objects"])
        for masks, index in zip(record["regions"], record["meta"]["objects"]):
            frames = [int(k) for k in masks]
            assert set(frames) <= set(scene.visible_frames(scene.objects[index]))
            if record["region_mode"] == "single":
                assert len(frames) == 1
            else:
                assert 1 <= len(frames) <= 4
        if len(record["regions"]) == 2:
            assert "object_1: [<region>], object_2: [<region>]" in question
    for record in _of(records, "pixrqa"):
        (region,) = record["regions"]
        (first,) = (int(k) for k in region)
        assert first == scenes[record["meta"]["video_index"]].objects[record["meta"]["objects"][0]].start
        assert min(int(k) for k in record["targets"][0]) == first + 1


def test_rvos_targets_cover_every_frame(dataset: tuple[SynthConfig, list]) -> None:
    _, records = dataset
    for record in _of(records, "rvos"):
        (target,) = record["targets"]
        assert sorted(int(k) for k in target) == list(range(record["num_frames"]))
        assert sum(v is not None for v in target.values()) >= 4  # UFVideo's RVOS loader needs >= 4 masked frames
        assert _answer(record) in lang.RVOS_ANSWERS


def test_corpus_covers_every_word_of_the_dataset(dataset: tuple[SynthConfig, list]) -> None:
    _, records = dataset
    corpus = corpus_texts(videos=16)
    assert corpus == corpus_texts(videos=16)
    words = {w for text in corpus for w in re.findall(r"[A-Za-z_']+", text)}
    used = {w for _, r in records for t in r["conversations"] for w in re.findall(r"[A-Za-z_']+", t["value"])}
    assert used <= words, sorted(used - words)
    for template in lang.RVOS_QUESTIONS + lang.TVG_QUESTIONS + lang.PIXRQA_QUESTIONS:
        prefix = template.split("{")[0]
        assert any(prefix in text for text in corpus), template


@pytest.mark.parametrize(
    "bad",
    [
        {"width": 127},
        {"height": 16},
        {"num_frames": 8},
        {"videos": 0},
        {"test_every": 1},
        {"fps": 0},
        {"extra_questions": -1},
    ],
)
def test_config_rejects_unusable_values(bad: dict[str, int]) -> None:
    with pytest.raises(ValueError, match="synth."):
        SynthConfig(out="unused", **bad)


def test_split_of_sends_every_nth_video_to_test() -> None:
    assert [split_of(i, 4) for i in range(8)].count("test") == 2
    assert split_of(3, 4) == "test" and split_of(0, 4) == "train"
    assert {split_of(i, 0) for i in range(8)} == {"train"}


def test_cli_synth_then_validate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from ufvideo.cli import main

    out = tmp_path / "cli"
    assert main(["data", "synth", "--out", str(out), "--seed", "1", "--videos", "4"]) == 0
    assert main(["data", "validate", str(out)]) == 0
    # 4 videos x 11 records + the tiny profile's extra qa/mcqa (3 each per video when the video has that many forms)
    assert "68 valid records" in capsys.readouterr().out
    assert (
        main(["data", "synth", "--out", str(tmp_path / "plain"), "--seed", "1", "--videos", "4", "extra_questions=0"])
        == 0
    )
    assert main(["data", "validate", str(tmp_path / "plain")]) == 0
    assert "44 valid records" in capsys.readouterr().out


def test_visible_masks_are_disjoint_and_respect_z_order(scenes: dict) -> None:
    for scene in scenes.values():
        assert scene.masks.sum(axis=0).max() <= 1, "a pixel belongs to at most one object"
        top = scene.objects[-1]
        assert np.array_equal(scene.masks[top.index], full_masks(top, scene.width, scene.height, scene.num_frames))
        for obj in scene.objects:
            whole = full_masks(obj, scene.width, scene.height, scene.num_frames)
            assert not (scene.masks[obj.index] & ~whole).any()
            assert len({o.name for o in scene.objects}) == len(scene.objects), "colour + shape names one object"
    sizes = {(o.shape, o.size): shape_template(o.shape, o.radius).sum() for s in scenes.values() for o in s.objects}
    for (shape, size), area in sizes.items():
        if (shape, "small") in sizes and size == "large":
            assert area > 2 * sizes[(shape, "small")]


def test_extra_questions_add_distinct_answerable_records(tmp_path: Path, dataset: tuple[SynthConfig, list]) -> None:
    """`extra_questions` appends qa-k / mcqa-k records asking new things, leaving every other record unchanged."""
    base_cfg, base_records = dataset
    cfg = SynthConfig(out=str(tmp_path / "extra"), seed=SEED, videos=VIDEOS, extra_questions=3)
    manifest = run(cfg)
    assert validate_dir(cfg.out).ok and manifest["recipe"]["extra_questions"] == 3
    assert "extra_questions" not in synthetic.read_manifest(base_cfg.out)["recipe"]
    records = [(split, r) for split in ("train", "test") for r in iter_records(cfg.out, split=split)]
    by_id = {r["id"]: r for _, r in records}
    assert all(by_id[r["id"]] == r for _, r in base_records)  # the base records are byte-for-byte the same
    extra = [r for _, r in records if r["id"] not in {b["id"] for _, b in base_records}]
    assert {r["task"] for r in extra} == {"qa", "mcqa"} and len(extra) > 4 * VIDEOS
    scenes = {i: scene_for(cfg, i) for i in range(cfg.videos)}
    for task in ("qa", "mcqa"):
        for index in range(cfg.videos):
            mine = [r for _, r in records if r["task"] == task and r["meta"]["video_index"] == index]
            asked = [(r["meta"]["kind"], tuple(sorted(r["meta"]["objects"]))) for r in mine]
            assert len(set(asked)) == len(asked) and 2 <= len(mine) <= 4, (task, index, asked)
    for record in extra:
        scene = scenes[record["meta"]["video_index"]]
        objs = [scene.objects[i] for i in record["meta"]["objects"]]
        if record["task"] == "mcqa":
            texts = [text for _, text in _options(record["conversations"][0]["value"])]
            assert _answer(record) == "ABCD"[texts.index(_mc_truth(record["meta"]["kind"], objs[0], scene))]
        elif record["meta"]["kind"] in ("colour", "shape", "size"):
            assert getattr(objs[0], record["meta"]["kind"]) in _answer(record)
