"""The embedded synthetic dataset (DESIGN.md section 3): real mp4 files of moving shapes plus curated records of
every task kind, generated deterministically from a seed; `run(cfg)` writes it, `corpus_texts()` feeds a tokenizer.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ufvideo.config import to_dict
from ufvideo.data.shards import CuratedWriter, read_manifest
from ufvideo.data.synthetic import language as lang
from ufvideo.data.synthetic.mask_tasks import (
    build_pixhqa,
    build_pixrqa,
    build_pixtrqa,
    build_referring_multi,
    build_referring_single,
    build_rvos,
)
from ufvideo.data.synthetic.scene import (
    BACKGROUNDS,
    COLOURS,
    SHAPES,
    SIZES,
    TEXTURES,
    Scene,
    make_scene,
    render_frames,
    scene_rngs,
)
from ufvideo.data.synthetic.text_tasks import (
    build_caption,
    build_dvc,
    build_mcqa,
    build_qa,
    build_tvg,
    extra_questions,
    video_stem,
)
from ufvideo.data.video import write_video

__all__ = ["BUILDERS", "SynthConfig", "build_records", "corpus_texts", "run", "scene_for", "split_of"]

log = logging.getLogger(__name__)
GENERATOR_VERSION = 1  # bump when the same seed would give different bytes, so manifests tell versions apart

Builder = Callable[[Scene, np.random.Generator], dict[str, Any]]
# One record per builder per video, in this order (the order is part of the byte-identical output).
BUILDERS: tuple[Builder, ...] = (
    build_qa,
    build_mcqa,
    build_caption,
    build_referring_single,
    build_referring_multi,
    build_rvos,
    build_tvg,
    build_dvc,
    build_pixrqa,
    build_pixhqa,
    build_pixtrqa,
)


@dataclass
class SynthConfig:
    """Size and seed of the synthetic set; each video depends only on (seed, index), never on `videos`."""

    out: str = "data/synth"
    seed: int = 0
    videos: int = 16
    width: int = 128
    height: int = 128
    num_frames: int = 40
    fps: int = 8
    test_every: int = 4  # video i goes to test when i % test_every == test_every - 1; 0 puts every video in train
    extra_questions: int = 0  # more qa and mcqa records per video (own RNG stream: the other records do not change)
    shard_size: int = 2000

    def __post_init__(self) -> None:
        if self.videos < 1:
            raise ValueError(f"synth.videos must be >= 1, got {self.videos}")
        if self.width < 32 or self.height < 32 or self.width % 2 or self.height % 2:
            raise ValueError(f"synth.width/height must be even and >= 32 (H.264 4:2:0), got {self.width}x{self.height}")
        if self.num_frames < 16:
            raise ValueError(f"synth.num_frames must be >= 16 so objects can appear and vanish, got {self.num_frames}")
        if self.fps < 1:
            raise ValueError(f"synth.fps must be >= 1, got {self.fps}")
        if self.test_every < 0 or self.test_every == 1:
            raise ValueError(f"synth.test_every must be 0 (no test split) or >= 2, got {self.test_every}")
        if self.extra_questions < 0:
            raise ValueError(f"synth.extra_questions must be >= 0, got {self.extra_questions}")


def split_of(index: int, test_every: int) -> str:
    """Splits are by video, so no test video is ever seen in training."""
    return "test" if test_every and index % test_every == test_every - 1 else "train"


def scene_for(cfg: SynthConfig, index: int) -> Scene:
    """Scene `index` of the dataset `cfg` describes, exactly as `run` renders it (tests re-derive ground truth)."""
    return make_scene(cfg.seed, index, width=cfg.width, height=cfg.height, num_frames=cfg.num_frames, fps=cfg.fps)


def build_records(scene: Scene, extra: int = 0) -> list[dict[str, Any]]:
    """All records of one video, with wording drawn from the video's own text RNG; `extra` more qa and mcqa
    records come last, from a third stream, so the first records are the same bytes whatever `extra` is."""
    _, text_rng = scene_rngs(scene.seed, scene.index)
    records = [builder(scene, text_rng) for builder in BUILDERS]
    if extra:
        extra_rng = np.random.default_rng(np.random.SeedSequence([int(scene.seed), int(scene.index)], spawn_key=(2,)))
        records += extra_questions(scene, extra_rng, extra, records)
    return records


def _recipe(cfg: SynthConfig) -> dict[str, Any]:
    # `out` is left out: the same seed must give the same manifest bytes wherever it is written.
    fields = ("seed", "videos", "width", "height", "num_frames", "fps", "test_every", "shard_size")
    if cfg.extra_questions:  # only when used, so manifests of earlier datasets keep their bytes
        fields += ("extra_questions",)
    return {"generator": "ufvideo.data.synthetic", "version": GENERATOR_VERSION, **{k: getattr(cfg, k) for k in fields}}


def generate(cfg: SynthConfig) -> dict[str, Any]:
    """Render every video to `out/videos/` and write the records as a curated dataset; return its manifest
    (untracked: what tests and benchmarks call; `run` is the tracked step)."""
    out = Path(cfg.out)
    (out / "videos").mkdir(parents=True, exist_ok=True)
    with CuratedWriter(out, data_root=".", recipe=_recipe(cfg), shard_size=cfg.shard_size) as writer:
        for index in range(cfg.videos):
            scene = scene_for(cfg, index)
            write_video(out / "videos" / f"{video_stem(scene)}.mp4", render_frames(scene), cfg.fps)
            split = split_of(index, cfg.test_every)
            for record in build_records(scene, cfg.extra_questions):
                writer.write(record, split=split)
    manifest = read_manifest(out)
    log.info("synthetic: %d videos, %d records in %s", cfg.videos, manifest["records"], out)
    return manifest


def run(cfg: SynthConfig) -> dict[str, Any]:
    """The synth step: `generate` inside its own MLflow run (config as params, output digest, record count)."""
    from ufvideo import tracking

    with tracking.start_run("synth", params=to_dict(cfg)):
        manifest = generate(cfg)
        tracking.log_params({"output_digest": manifest["digest"]})
        tracking.log_metrics({"records": manifest["records"]})
    return manifest


def _conversation_texts(records: Iterator[dict[str, Any]]) -> Iterator[str]:
    for record in records:
        for turn in record["conversations"]:
            yield turn["value"]


def _vocabulary_texts() -> list[str]:
    """Every word the generator can say, so a tokenizer never meets an unseen word at training time."""
    words = [*COLOURS, *SHAPES, *lang.PLURALS.values(), *SIZES, *BACKGROUNDS, *TEXTURES, *lang.NUMBER_WORDS]
    texts = [" ".join(words), " ".join(f"({letter})" for letter in lang.LETTERS), " ".join(lang.LETTERS)]
    texts += [f"{verb} {rest} {ing} {rest}" for verb, ing, rest in lang.MOTION_WORDS.values()]
    texts += [f"the {size} {colour} {shape}" for size in SIZES for colour in COLOURS for shape in SHAPES]
    texts += [
        f"The video shows {n} objects on a {t} {b} background."
        for n in lang.NUMBER_WORDS
        for t in TEXTURES
        for b in BACKGROUNDS
    ]
    return texts


def corpus_texts(videos: int = 64, seed: int = 12345) -> list[str]:
    """A deterministic text corpus covering every template and word, for training a tiny BPE tokenizer offline.

    Renders no video: scenes are sampled (masks only) and their records' turns are collected, after the
    exhaustive vocabulary and template lists.
    """
    texts = _vocabulary_texts() + lang.template_texts()
    scenes = (make_scene(seed, i) for i in range(videos))
    texts.extend(_conversation_texts(r for s in scenes for r in build_records(s)))
    return texts
