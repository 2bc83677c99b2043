"""RLE round trips in every COCO form, size checks, and unions."""

from __future__ import annotations

import numpy as np
import pytest

from ufvideo.data.masks import decode_rle, encode_rle, rle_area, union_masks, union_rles


@pytest.mark.parametrize("shape", [(1, 1), (5, 7), (48, 64), (480, 854)])
def test_round_trip_random_masks(shape: tuple[int, int]) -> None:
    rng = np.random.default_rng(sum(shape))
    for density in (0.0, 0.3, 1.0):
        mask = rng.random(shape) < density
        rle = encode_rle(mask)
        assert rle["size"] == list(shape) and isinstance(rle["counts"], str)
        np.testing.assert_array_equal(decode_rle(rle), mask)
        assert rle_area(rle) == int(mask.sum())


def test_uncompressed_and_polygon_forms() -> None:
    # column-major runs: 7 zeros, 2 ones, 3 zeros, 23 ones on a 5x7 frame
    mask = decode_rle({"size": [5, 7], "counts": [7, 2, 3, 23]})
    expected = np.zeros(35, bool)
    expected[7:9] = True
    expected[12:] = True
    np.testing.assert_array_equal(mask, expected.reshape(7, 5).T)
    square = decode_rle([[2, 2, 6, 2, 6, 6, 2, 6]], height=10, width=10)
    assert square[3:6, 3:6].all() and not square[0].any() and not square[:, 8:].any()


def test_size_disagreements_are_errors() -> None:
    rle = encode_rle(np.ones((4, 6), bool))
    with pytest.raises(ValueError, match=r"\[4, 6\] disagrees with the frame size \[6, 4\]"):
        decode_rle(rle, height=6, width=4)
    with pytest.raises(ValueError, match="sum to 10, expected 24"):
        decode_rle({"size": [4, 6], "counts": [5, 5]})
    with pytest.raises(ValueError, match="polygon masks need"):
        decode_rle([[0, 0, 1, 0, 1, 1]])
    with pytest.raises(ValueError, match="2-D"):
        encode_rle(np.ones((2, 2, 2), bool))


def test_unions() -> None:
    a = np.zeros((6, 6), bool)
    b = np.zeros((6, 6), bool)
    a[:3] = True
    b[:, :2] = True
    np.testing.assert_array_equal(union_masks([a, b]), a | b)
    np.testing.assert_array_equal(decode_rle(union_rles([encode_rle(a), encode_rle(b)])), a | b)
    with pytest.raises(ValueError, match="different sizes"):
        union_rles([encode_rle(a), encode_rle(np.zeros((2, 2), bool))])
    with pytest.raises(ValueError, match="zero masks"):
        union_masks([])
