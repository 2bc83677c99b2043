"""The processor's pixel rules match the code the released weights were trained with (MODEL.md 1.5 and 1.7).

Expected values are worked out by hand in the comments, not produced by the code under test.
"""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

from ufvideo.model import processing
from ufvideo.model.processing import SAM_MEAN, SAM_STD, mask_to_grid, sam_resize_normalize


def _box(height: int, width: int, y0: int, x0: int, h: int, w: int) -> np.ndarray:
    mask = np.zeros((height, width), bool)
    mask[y0 : y0 + h, x0 : x0 + w] = True
    return mask


@pytest.fixture()
def fresh_warning(monkeypatch):
    """The empty-region warning is once per process; give each test its own 'process'."""
    monkeypatch.setattr(processing, "_EMPTY_REGION_WARNED", [])


def test_box_selects_the_patches_whose_sampling_points_it_covers() -> None:
    # 480x640 frame -> 27x27 grid. Bilinear, align_corners False: patch row i samples source row
    # (i + 0.5) * 480/27 - 0.5 = 17.78 i + 8.39, i.e. it reads rows floor and floor + 1 of that point;
    # patch column j samples 23.70 j + 11.35. Box rows 100..259, columns 200..379 (160x180 px):
    #   rows: i=5 -> 97.3 (rows 97, 98: outside), i=6 -> 115.1 (inside) ... i=14 -> 257.3 (rows 257, 258:
    #   inside), i=15 -> 275.1 (outside): 9 patch rows 6..14;
    #   columns: j=7 -> 177.3 (outside), j=8 -> 201.0 (200, 201: inside) ... j=15 -> 366.9 (inside),
    #   j=16 -> 390.6 (outside): 8 patch columns 8..15.  9 x 8 = 72 patches (it touches 10 x 8 = 80).
    grid = mask_to_grid(_box(480, 640, 100, 200, 160, 180), 27).reshape(27, 27)
    expected = torch.zeros(27, 27)
    expected[6:15, 8:16] = 1
    assert int(grid.sum()) == 72
    torch.testing.assert_close(grid, expected)


def test_small_object_selects_one_patch(fresh_warning) -> None:
    # 18x22 px at rows 110..127, columns 195..216: it touches patch rows 6-7 (106.7..142.2) and columns 8-9
    # (189.6..237.0) = 4 patches, but covers one sampling point only: row 115.1 (i=6) and column 201.0 (j=8).
    grid = mask_to_grid(_box(480, 640, 110, 195, 18, 22), 27).reshape(27, 27)
    assert int(grid.sum()) == 1 and grid[6, 8] == 1


def test_tiny_object_selects_nothing_warns_once_and_pools_to_zero(fresh_warning, caplog) -> None:
    # 6x6 px at rows 118..123, columns 203..208 lies between the sampling points (rows 115/116 and 132/133,
    # columns 200/201 and 224/225): no patch. The masked mean then divides 0 by 1e-8: a zero feature.
    with caplog.at_level(logging.WARNING, logger="ufvideo.model.processing"):
        grid = mask_to_grid(_box(480, 640, 118, 203, 6, 6), 27)
        mask_to_grid(_box(480, 640, 300, 300, 3, 3), 27)
    assert int(grid.sum()) == 0
    warnings = [r for r in caplog.records if "selects no patch" in r.getMessage()]
    assert len(warnings) == 1 and "36 pixels" in warnings[0].getMessage()
    from ufvideo.model.region import pool_masks

    pooled = pool_masks(torch.ones(1, 27 * 27, 4), grid[None], torch.tensor([0]))
    torch.testing.assert_close(pooled, torch.zeros(1, 4))


def test_empty_region_runs_through_the_model(tiny, fresh_warning, caplog) -> None:
    """A region that selects no patch gives the region encoder's output for a zero feature, never a crash."""
    model, processor = tiny
    frames = np.random.default_rng(0).integers(0, 256, (4, 480, 640, 3), dtype=np.uint8)
    conversation = [{"from": "human", "value": "<video>\nWhat is <region>?"}, {"from": "gpt", "value": "A box."}]
    grid = processor.settings.patch_grid
    # one pixel at the top-left corner: patch (0, 0) samples the rows/columns around (0.5 * 480/g - 0.5) > 1
    mask = np.zeros((480, 640), bool)
    mask[0, 0] = True
    with caplog.at_level(logging.WARNING, logger="ufvideo.model.processing"):
        batch = processor([conversation], [frames], regions=[[{0: mask}]])
    assert int(batch["region_masks"].sum()) == 0 and batch["region_masks"].shape == (1, grid * grid)
    assert any("selects no patch" in r.getMessage() for r in caplog.records)
    with torch.no_grad():
        out = model(**batch)
        feats = model.vision_features(batch["region_pixel_values"])
        tokens, _ = model.region_encoder(
            feats, batch["region_masks"], batch["region_frame_ids"], batch["region_object_ids"]
        )
        zero_token = model.region_encoder.feat_linear(torch.zeros(1, feats.shape[-1]))
    assert torch.isfinite(out.loss)
    torch.testing.assert_close(tokens, zero_token)


def _sam_uint8(pixels: torch.Tensor) -> np.ndarray:
    """Undo the ImageNet normalisation of `sam_resize_normalize` back to 0..255 (first channel)."""
    x = pixels[:, 0] * SAM_STD[0] + SAM_MEAN[0]
    return (x * 255).round().to(torch.int64).numpy()


def test_sam_frames_use_pils_bicubic() -> None:
    # PIL's bicubic kernel has a = -0.5: w(t) = 1.5|t|^3 - 2.5|t|^2 + 1 (|t| <= 1),
    # -0.5|t|^3 + 2.5|t|^2 - 4|t| + 2 (1 < |t| < 2); w(0.25) = .8672, w(0.75) = .2266, w(1.25) = -.0703,
    # w(1.75) = -.0234.
    # Up 4 -> 8 of [0, 0, 255, 255]: output 3 sits at source 1.25, weights on pixels 0..3 are
    # -.0703, .8672, .2266, -.0234, so 255 * (.2266 - .0234) = 51.8 -> 52 (torch bilinear: 63.75 -> 64);
    # output 4 is its mirror, 203.
    row = np.zeros((1, 1, 4, 3), np.uint8)
    row[..., 2:, :] = 255
    square = np.repeat(row, 4, axis=1)  # 4x4
    up = _sam_uint8(sam_resize_normalize(square, 8))
    assert up[0, 0].tolist() == [0, 0, 0, 52, 203, 255, 255, 255]
    # Down 8 -> 4 of [0]*4 + [255]*4: the kernel widens 2x; output 1 (centre 3.0) weights the 7 pixels at
    # distances 1.25 .75 .25 .25 .75 1.25 1.75 (sum 2.0236); pixels 4..6 carry .2266 - .0703 - .0234 = .1329,
    # so 255 * .1329 / 2.0236 = 16.7 -> 17; output 2 mirrors it, 238.
    row = np.zeros((1, 1, 8, 3), np.uint8)
    row[..., 4:, :] = 255
    down = _sam_uint8(sam_resize_normalize(np.repeat(row, 8, axis=1), 4))
    assert down[0, 0].tolist() == [0, 17, 238, 255]


def test_sam_frames_at_the_target_size_are_only_normalised() -> None:
    frames = np.random.default_rng(1).integers(0, 256, (2, 8, 8, 3), dtype=np.uint8)
    assert (_sam_uint8(sam_resize_normalize(frames, 8)) == frames[..., 0]).all()
