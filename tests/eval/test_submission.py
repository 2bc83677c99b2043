"""Mask PNGs and submission zips in the official MeViS valid and Ref-YouTube-VOS valid layouts."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.eval.benchmarks.helpers import MEVIS_H as H
from tests.eval.benchmarks.helpers import MEVIS_W as W
from tests.eval.benchmarks.helpers import box, dump, mevis_fixture
from ufvideo.eval.benchmarks import get_benchmark
from ufvideo.eval.submission import (
    expected_mask_paths,
    mevis_submission,
    ref_youtube_vos_submission,
    write_prediction_masks,
    write_submission,
)
from ufvideo.eval.types import Prediction


def test_mevis_valid_zip_layout(tmp_path: Path) -> None:
    bench = get_benchmark("mevis_valid")
    samples = list(bench.samples(mevis_fixture(tmp_path / "data", "valid")))
    mask = box(H, W, 2, 8, 2, 8)
    masks = tmp_path / "masks"
    written = write_prediction_masks(bench, samples[0], Prediction(samples[0].id, masks=[np.stack([mask] * 3)]), masks)
    assert written == ["0ab4afe7fb46/0/00000.png", "0ab4afe7fb46/0/00001.png", "0ab4afe7fb46/0/00002.png"]
    # A missing track on a server split is written empty, so the zip stays complete.
    write_prediction_masks(bench, samples[1], Prediction(samples[1].id), masks)
    expected = expected_mask_paths(bench, samples)
    with pytest.raises(FileNotFoundError, match=r"1 mask PNG\(s\) missing .*0ab4afe7fb46/2/00000.png"):
        mevis_submission(masks, tmp_path / "submission.zip", expected[:-2] + ["0ab4afe7fb46/2/00000.png"])
    write_prediction_masks(bench, samples[2], Prediction(samples[2].id, masks=[np.zeros((3, H, W), bool)]), masks)
    assert mevis_submission(masks, tmp_path / "submission.zip", expected) == 9
    with zipfile.ZipFile(tmp_path / "submission.zip") as archive:
        names = archive.namelist()
        png = np.asarray(Image.open(io.BytesIO(archive.read("0ab4afe7fb46/0/00001.png"))))
        empty = np.asarray(Image.open(io.BytesIO(archive.read("0ab4afe7fb46/1/00001.png"))))
    assert names == sorted(f"0ab4afe7fb46/{e}/{f}.png" for e in "012" for f in ("00000", "00001", "00002"))
    assert png.dtype == np.uint8 and set(np.unique(png)) == {0, 255} and np.array_equal(png == 255, mask)
    assert not empty.any() and empty.shape == (H, W)
    first = (tmp_path / "submission.zip").read_bytes()
    mevis_submission(masks, tmp_path / "submission.zip", expected)
    assert (tmp_path / "submission.zip").read_bytes() == first  # deterministic bytes


def test_ref_youtube_vos_zip_has_annotations_root(tmp_path: Path) -> None:
    root = tmp_path / "data" / "ref-youtube-vos"
    meta = {"003234408d": {"expressions": {"0": {"exp": "a penguin"}}, "frames": ["00000", "00005"]}}
    dump(root / "meta_expressions/valid/meta_expressions.json", {"videos": meta})
    bench = get_benchmark("ref_youtube_vos")
    (sample,) = list(bench.samples(tmp_path / "data"))
    sample.height, sample.width = H, W
    masks = tmp_path / "masks"
    write_prediction_masks(bench, sample, Prediction(sample.id, masks=[np.ones((2, H, W), bool)]), masks)
    assert ref_youtube_vos_submission(masks, tmp_path / "s.zip", expected_mask_paths(bench, [sample])) == 2
    with zipfile.ZipFile(tmp_path / "s.zip") as archive:
        assert archive.namelist() == ["Annotations/003234408d/0/00000.png", "Annotations/003234408d/0/00005.png"]
    with pytest.raises(ValueError, match="paths outside the layout Annotations/"):
        write_submission("ref_youtube_vos", masks, tmp_path / "bad.zip", ["003234408d/0/00000.png"])
    assert not (tmp_path / "bad.zip").exists()


def test_track_length_must_match_the_frames(tmp_path: Path) -> None:
    bench = get_benchmark("mevis_valid")
    sample = next(iter(bench.samples(mevis_fixture(tmp_path / "data", "valid"))))
    with pytest.raises(ValueError, match="track 0 has 2 masks for 3 frames"):
        write_prediction_masks(bench, sample, Prediction(sample.id, masks=[np.zeros((2, H, W), bool)]), tmp_path)
