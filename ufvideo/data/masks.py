"""COCO RLE encode/decode and mask unions, the only mask representation on disk.

Every source stores masks differently (palette PNGs, compressed RLE, uncompressed RLE, polygons); curation
turns them all into compressed RLE so one decoder serves training, evaluation and the registry.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
from pycocotools import mask as coco_mask

Rle = dict[str, Any]


def encode_rle(mask: np.ndarray) -> Rle:
    """Compressed COCO RLE of a 2-D mask, with `counts` as a str so it is JSON-serialisable."""
    array = np.asarray(mask)
    if array.ndim != 2:
        raise ValueError(f"encode_rle expects a 2-D mask, got shape {array.shape}")
    rle = coco_mask.encode(np.asfortranarray(array.astype(bool, copy=False).astype(np.uint8)))
    return {"size": [int(rle["size"][0]), int(rle["size"][1])], "counts": rle["counts"].decode("ascii")}


def _to_coco(rle: Mapping[str, Any] | Sequence[Any], height: int | None, width: int | None) -> dict[str, Any]:
    """Normalise the three COCO mask forms into a compressed RLE that pycocotools can decode."""
    if isinstance(rle, Mapping):
        size = rle.get("size")
        counts = rle.get("counts")
        if size is None or counts is None:
            raise ValueError("RLE must have 'size' and 'counts'")
        h, w = int(size[0]), int(size[1])
        if height is not None and width is not None and (h, w) != (height, width):
            raise ValueError(f"RLE size [{h}, {w}] disagrees with the frame size [{height}, {width}]")
        if isinstance(counts, list):
            if sum(counts) != h * w:
                raise ValueError(f"uncompressed RLE counts sum to {sum(counts)}, expected {h * w} for size [{h}, {w}]")
            return coco_mask.frPyObjects({"size": [h, w], "counts": counts}, h, w)
        return {"size": [h, w], "counts": counts.encode("ascii") if isinstance(counts, str) else counts}
    if height is None or width is None:
        raise ValueError("polygon masks need the frame height and width")
    polygons = [list(map(float, poly)) for poly in rle]
    if not polygons or any(len(p) < 6 or len(p) % 2 for p in polygons):
        raise ValueError("a polygon needs an even number (>= 6) of coordinates")
    return coco_mask.merge(coco_mask.frPyObjects(polygons, height, width))


def decode_rle(
    rle: Mapping[str, Any] | Sequence[Any], height: int | None = None, width: int | None = None
) -> np.ndarray:
    """Decode compressed RLE, uncompressed RLE or polygons into an (H, W) bool array.

    `height`/`width` are required for polygons and, when given, are checked against the RLE's own size:
    a disagreement means the annotation belongs to another frame size and must not be silently resized.
    """
    coco = _to_coco(rle, height, width)
    try:
        decoded = coco_mask.decode(coco)
    except Exception as exc:  # pycocotools raises bare Exceptions on corrupt counts
        raise ValueError(f"corrupt RLE counts: {exc}") from exc
    expected = (int(coco["size"][0]), int(coco["size"][1]))
    if decoded.shape != expected:
        raise ValueError(f"decoded mask has shape {decoded.shape}, expected {expected}")
    return decoded.astype(bool)


def rle_area(rle: Mapping[str, Any]) -> int:
    return int(coco_mask.area(_to_coco(rle, None, None)))


def union_masks(masks: Iterable[np.ndarray]) -> np.ndarray:
    """Pixel-wise OR of same-sized masks, e.g. several `anno_id`s that one expression refers to."""
    result: np.ndarray | None = None
    for mask in masks:
        array = np.asarray(mask, dtype=bool)
        if result is None:
            result = array.copy()
        elif array.shape != result.shape:
            raise ValueError(f"cannot union masks of shapes {result.shape} and {array.shape}")
        else:
            result |= array
    if result is None:
        raise ValueError("union of zero masks is undefined (the frame size is unknown)")
    return result


def union_rles(rles: Iterable[Mapping[str, Any]]) -> Rle:
    """Union in RLE space (no full-size decode), for merging object annotations at curation time."""
    coco = [_to_coco(r, None, None) for r in rles]
    if not coco:
        raise ValueError("union of zero RLEs is undefined (the frame size is unknown)")
    sizes = {tuple(c["size"]) for c in coco}
    if len(sizes) != 1:
        raise ValueError(f"cannot union RLEs of different sizes {sorted(sizes)}")
    merged = coco_mask.merge(coco, intersect=False)
    return {"size": [int(merged["size"][0]), int(merged["size"][1])], "counts": merged["counts"].decode("ascii")}
