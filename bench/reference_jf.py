"""REFERENCE SEMANTICS, not for use: a deliberately literal J and F as the official DAVIS toolkit computes them.

Written from the description in METRICS.md (sections 1 and 2), not copied: per-frame loops, a per-frame
seg2bmap built from shifted copies, a skimage `disk` structuring element and `cv2.dilate`, exactly the
steps and libraries the official `metrics.py` uses. It is the yardstick for `bench/bench_jf.py` and for
the exactness tests of `ufvideo.eval.metrics`; it needs the dev packages opencv-python-headless and
scikit-image.
"""

from __future__ import annotations

import cv2
import numpy as np
from skimage.morphology import disk


def reference_j(pred: np.ndarray, gt: np.ndarray) -> np.ndarray | float:
    """J over the last two axes, the union == 0 -> 1 rule applied per frame."""
    assert pred.shape == gt.shape, f"shapes differ: {pred.shape} vs {gt.shape}"
    p = pred.astype(bool)
    g = gt.astype(bool)
    inter = np.sum(p & g, axis=(-2, -1))
    union = np.sum(p | g, axis=(-2, -1))
    with np.errstate(invalid="ignore"):
        j = inter / union
    if j.ndim == 0:
        return 1.0 if np.isclose(union, 0) else float(j)
    j[np.isclose(union, 0)] = 1
    return j


def reference_bmap(seg: np.ndarray) -> np.ndarray:
    """seg2bmap: boundary where a pixel differs from its right, lower or lower-right neighbour."""
    s = seg.astype(bool)
    east = np.zeros_like(s)
    south = np.zeros_like(s)
    south_east = np.zeros_like(s)
    east[:, :-1] = s[:, 1:]
    south[:-1, :] = s[1:, :]
    south_east[:-1, :-1] = s[1:, 1:]
    b = (s ^ east) | (s ^ south) | (s ^ south_east)
    b[-1, :] = s[-1, :] ^ east[-1, :]
    b[:, -1] = s[:, -1] ^ south[:, -1]
    b[-1, -1] = False
    return b


def reference_f_frame(pred: np.ndarray, gt: np.ndarray, bound_th: float = 0.008) -> float:
    """One frame's boundary F-measure, step by step as the official f_measure."""
    assert pred.ndim == 2 and pred.shape == gt.shape
    bound_pix = bound_th if bound_th >= 1 else np.ceil(bound_th * np.linalg.norm(pred.shape))
    pred_b = reference_bmap(pred)
    gt_b = reference_bmap(gt)
    kernel = disk(bound_pix).astype(np.uint8)
    pred_dil = cv2.dilate(pred_b.astype(np.uint8), kernel)
    gt_dil = cv2.dilate(gt_b.astype(np.uint8), kernel)
    gt_match = gt_b * pred_dil
    pred_match = pred_b * gt_dil
    n_pred = np.sum(pred_b)
    n_gt = np.sum(gt_b)
    if n_pred == 0 and n_gt > 0:
        precision, recall = 1, 0
    elif n_pred > 0 and n_gt == 0:
        precision, recall = 0, 1
    elif n_pred == 0 and n_gt == 0:
        precision, recall = 1, 1
    else:
        precision = np.sum(pred_match) / float(n_pred)
        recall = np.sum(gt_match) / float(n_gt)
    if precision + recall == 0:
        return 0.0
    return float(2 * precision * recall / (precision + recall))


def reference_f(pred: np.ndarray, gt: np.ndarray, bound_th: float = 0.008) -> np.ndarray | float:
    """F for a (H,W) pair, or a per-frame loop over a (T,H,W) stack."""
    assert pred.shape == gt.shape
    if pred.ndim == 2:
        return reference_f_frame(pred, gt, bound_th)
    return np.array([reference_f_frame(pred[t], gt[t], bound_th) for t in range(pred.shape[0])])
