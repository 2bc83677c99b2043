"""J and F: hand-checkable edge cases from METRICS.md, then exact agreement with the literal reference."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from ufvideo.eval.metrics import (
    boundary_map,
    boundary_radius,
    contour_accuracy,
    pixel_accuracy,
    region_and_contour,
    region_similarity,
    robustness,
)

H, W = 40, 60  # boundary radius 1 at the default bound_th


def blank() -> np.ndarray:
    return np.zeros((H, W), bool)


def with_pixels(*points: tuple[int, int], shape: tuple[int, int] = (H, W)) -> np.ndarray:
    mask = np.zeros(shape, bool)
    for y, x in points:
        mask[y, x] = True
    return mask


def box() -> np.ndarray:
    mask = blank()
    mask[10:20, 15:40] = True
    return mask


FULL = np.ones((H, W), bool)


@pytest.mark.parametrize(
    ("pred", "gt", "j", "f"),
    [
        (blank(), blank(), 1.0, 1.0),  # both empty
        (blank(), box(), 0.0, 0.0),  # prediction empty
        (box(), blank(), 0.0, 0.0),  # ground truth empty
        (FULL, FULL, 1.0, 1.0),
        (FULL, blank(), 0.0, 1.0),  # neither has boundary pixels
        (FULL, box(), 250 / (H * W), 0.0),  # full vs partial
        (~box(), box(), 0.0, 1.0),  # complement: identical boundary maps
        (box(), box(), 1.0, 1.0),
    ],
    ids=["both-empty", "pred-empty", "gt-empty", "full-full", "full-empty", "full-partial", "complement", "equal"],
)
def test_j_and_f_edge_cases(pred: np.ndarray, gt: np.ndarray, j: float, f: float) -> None:
    assert region_similarity(pred, gt) == pytest.approx(j)
    assert contour_accuracy(pred, gt) == f
    assert contour_accuracy(gt, pred) == f  # symmetric


def test_one_pixel_image_always_has_f_one() -> None:
    for p in (False, True):
        for g in (False, True):
            pred, gt = np.array([[p]]), np.array([[g]])
            assert contour_accuracy(pred, gt) == 1.0
            assert region_similarity(pred, gt) == (1.0 if p == g else 0.0)


def test_partial_matching_by_hand() -> None:
    # Pixels two columns apart, radius 1: half of each 4-pixel boundary lies within distance 1 of the other.
    assert contour_accuracy(with_pixels((10, 10)), with_pixels((10, 12))) == pytest.approx(0.5)
    # Diagonal neighbours: distance sqrt(2) > 1, so one corner of each boundary stays unmatched.
    assert contour_accuracy(with_pixels((10, 10)), with_pixels((11, 11))) == pytest.approx(0.75)
    # A pixel radius of 2 (bound_th >= 1) reaches the far corners too.
    assert contour_accuracy(with_pixels((10, 10)), with_pixels((10, 12)), bound_th=2) == 1.0
    assert contour_accuracy(with_pixels((5, 5)), with_pixels((30, 50))) == 0.0


def test_boundary_map_rules() -> None:
    assert set(zip(*np.nonzero(boundary_map(with_pixels((10, 10)))))) == {(10, 10), (10, 9), (9, 10), (9, 9)}
    corner = boundary_map(with_pixels((H - 1, W - 1)))
    assert set(zip(*np.nonzero(corner))) == {(H - 1, W - 2), (H - 2, W - 1), (H - 2, W - 2)}
    touching = np.zeros((6, 8), bool)
    touching[0:3, 0:4] = True  # touches the top and left borders: no boundary there
    expected = {(2, 0), (2, 1), (2, 2), (2, 3), (0, 3), (1, 3)}
    assert set(zip(*np.nonzero(boundary_map(touching)))) == expected
    assert not boundary_map(FULL).any()
    assert np.array_equal(boundary_map(box()), boundary_map(~box()))
    assert not boundary_map(np.ones((1, 1), bool)).any()


@pytest.mark.parametrize(
    ("shape", "radius"), [((40, 60), 1), ((120, 200), 2), ((480, 854), 8), ((720, 1280), 12), ((1, 1), 1)]
)
def test_boundary_radius(shape: tuple[int, int], radius: int) -> None:
    assert boundary_radius(shape) == radius


def test_boundary_radius_rejects_what_it_cannot_reproduce() -> None:
    assert boundary_radius((10, 10), 3) == 3
    with pytest.raises(ValueError, match="integral"):
        boundary_radius((10, 10), 2.5)
    with pytest.raises(ValueError, match=">= 0"):
        boundary_radius((10, 10), -0.1)


def test_stack_gives_per_frame_values_and_nonzero_is_foreground() -> None:
    pred = np.stack([blank(), box().astype(np.uint8) * 255, FULL])
    gt = np.stack([blank(), box().astype(np.uint8) * 2, blank()])
    j = region_similarity(pred, gt)
    f = contour_accuracy(pred, gt)
    assert j.shape == f.shape == (3,)
    assert j.tolist() == [1.0, 1.0, 0.0]
    assert f.tolist() == [1.0, 1.0, 1.0]
    j2, f2 = region_and_contour(pred, gt)
    assert np.array_equal(j, j2) and np.array_equal(f, f2)
    assert isinstance(region_similarity(box(), box()), float)


def test_shape_errors_name_the_shapes() -> None:
    with pytest.raises(ValueError, match=r"\(40, 60\).*\(40, 61\)"):
        region_similarity(blank(), np.zeros((40, 61), bool))
    with pytest.raises(ValueError, match="stack"):
        contour_accuracy(np.zeros((2, 2, 2, 2)), np.zeros((2, 2, 2, 2)))


def test_revos_accuracy_and_robustness_follow_the_raw_arrays() -> None:
    gt = np.zeros((2, 4), np.uint8)
    gt[0, :2] = 1
    pred01 = gt.copy()
    pred01[1, 0] = 1  # one false positive
    assert pixel_accuracy(pred01, gt) == pytest.approx(7 / 8)
    fg = np.zeros_like(gt)
    fg[0, :] = 1  # four foreground pixels
    assert robustness(pred01, gt, fg) == pytest.approx(1 - 1 / (4 + 1e-6))
    # Predictions read as 0/255 (the public scripts): foreground never equals 1, and each false positive
    # weighs 255, so R collapses to 0.
    assert pixel_accuracy(pred01 * 255, gt) == pytest.approx(5 / 8)
    assert robustness(pred01 * 255, gt, fg) == 0.0
    assert robustness(gt.astype(bool), gt.astype(bool), fg) == pytest.approx(1.0)


# --- exact agreement with the literal reference (needs the dev extra: opencv + scikit-image) ---


@pytest.fixture(scope="module")
def reference():
    pytest.importorskip("cv2")
    pytest.importorskip("skimage")
    path = Path(__file__).resolve().parents[2] / "bench" / "reference_jf.py"
    spec = importlib.util.spec_from_file_location("reference_jf", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def ellipses(t: int, h: int, w: int, dy: float, dx: float) -> np.ndarray:
    yy, xx = np.mgrid[:h, :w]
    return np.stack(
        [((yy - h / 2 - dy - 2 * i) / (h / 3)) ** 2 + ((xx - w / 2 - dx) / (w / 4)) ** 2 < 1 for i in range(t)]
    )


def structured(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(h * 1000 + w)
    gt = ellipses(6, h, w, 0, 0)
    pred = ellipses(6, h, w, h * 0.03, -w * 0.02)
    gt[1] = False  # target absent
    pred[2] = False  # nothing predicted
    pred[3] = True  # full frame
    gt[4, : h // 2, : w // 3] = True  # touches the borders
    pred[5] = rng.random((h, w)) < 0.01  # speckle
    return pred, gt


@pytest.mark.parametrize("shape", [(1, 1), (1, 9), (9, 1), (2, 2), (7, 9), (63, 65), (64, 64), (65, 129), (33, 200)])
@pytest.mark.parametrize("density", [0.02, 0.5])
def test_matches_reference_on_random_masks(reference, shape: tuple[int, int], density: float) -> None:
    rng = np.random.default_rng(shape[0] * 31 + shape[1])
    pred = rng.random((4, *shape)) < density
    gt = rng.random((4, *shape)) < density
    gt[0] = False
    pred[1] = False
    j, f = region_and_contour(pred, gt)
    assert np.array_equal(j, reference.reference_j(pred, gt))
    assert np.array_equal(f, reference.reference_f(pred, gt))


@pytest.mark.parametrize("shape", [(37, 71), (120, 200), (480, 854), (720, 1280)])
def test_matches_reference_on_structured_masks(reference, shape: tuple[int, int]) -> None:
    pred, gt = structured(*shape)
    j, f = region_and_contour(pred, gt)
    assert np.array_equal(j, reference.reference_j(pred, gt))
    assert np.array_equal(f, reference.reference_f(pred, gt))
    assert contour_accuracy(pred[0], gt[0]) == reference.reference_f(pred[0], gt[0])


@pytest.mark.parametrize("bound_th", [0, 1, 3, 0.05, 40])
def test_matches_reference_for_other_radii(reference, bound_th: float) -> None:
    # 40 pixels is past the 64-bit window and takes the distance-transform path.
    rng = np.random.default_rng(7)
    pred = rng.random((3, 90, 130)) < 0.01
    gt = ellipses(3, 90, 130, 0, 0)
    assert np.array_equal(contour_accuracy(pred, gt, bound_th), reference.reference_f(pred, gt, bound_th))
