"""tIoU, recall at IoU and the Charades-STA summary, with the UFVideo and lmms-eval conventions."""

from __future__ import annotations

import pytest

from ufvideo.eval import metrics as M
from ufvideo.eval.metrics import grounding_scores, mean_iou, recall_at_iou, span_ious, temporal_iou


@pytest.mark.parametrize(
    ("pred", "gt", "iou"),
    [
        ((0.0, 1.0), (2.0, 3.0), 0.0),  # disjoint
        ((0.0, 1.0), (1.0, 2.0), 0.0),  # touching
        ((0.0, 10.0), (2.0, 4.0), 0.2),  # containing
        ((2.0, 4.0), (0.0, 10.0), 0.2),  # contained
        ((5.0, 3.0), (2.0, 6.0), 0.0),  # inverted prediction: no intersection
        ((5.0, 3.0), (4.0, 2.0), 0.0),  # inverted both: negative hull
        ((3.0, 3.0), (2.0, 6.0), 0.0),  # zero-length prediction
        ((4.0, 4.0), (4.0, 4.0), 0.0),  # empty hull: the official script divides by zero
        ((0.2, 0.5), (0.3, 0.9), 0.2 / 0.7),
        ((0.0, 1.0), (0.0, 2.0), 0.5),
    ],
)
def test_temporal_iou(pred: tuple[float, float], gt: tuple[float, float], iou: float) -> None:
    assert temporal_iou(pred, gt) == pytest.approx(iou)


def test_recall_strict_and_inclusive_differ_only_on_ties() -> None:
    ious = [temporal_iou((0, 1), (0, 2)), 0.3, 0.7, 0.6]  # the first is exactly 0.5
    assert ious[0] == 0.5
    assert recall_at_iou(ious, 0.5) == 0.5
    assert recall_at_iou(ious, 0.5, strict=False) == 0.75
    assert recall_at_iou(ious, 0.65) == recall_at_iou(ious, 0.65, strict=False) == 0.25
    with pytest.raises(ValueError, match="no IoU"):
        recall_at_iou([], 0.5)
    with pytest.raises(ValueError, match="no IoU"):
        mean_iou([])


def test_unparsed_and_zero_predictions_score_zero_but_count() -> None:
    preds = [(0.0, 0.5), None, (0.0, 0.0), (0.6, 0.2)]
    gts = [(0.0, 1.0)] * 4
    assert span_ious(preds, gts) == [0.5, 0.0, 0.0, 0.0]
    assert span_ious(preds, gts, order_spans=True)[3] == pytest.approx(0.4)
    scores = grounding_scores(preds, gts)
    assert scores["R@0.3"] == 25.0 and scores["R@0.5"] == 0.0 and scores["R@0.7"] == 0.0
    assert scores["mIoU"] == pytest.approx(0.125)  # a fraction, not a percent
    assert scores["convention"].startswith("IoU > m")
    inclusive = grounding_scores(preds, gts, strict=False, order_spans=True)
    assert inclusive["R@0.5"] == 25.0 and inclusive["R@0.3"] == 50.0
    assert inclusive["convention"].startswith("IoU >= m")


def test_duration_scaling_keeps_iou() -> None:
    preds, gts = [(0.1, 0.4)], [(0.2, 0.6)]
    assert span_ious(preds, gts, duration=[31.7])[0] == pytest.approx(span_ious(preds, gts)[0])
    with pytest.raises(ValueError, match="durations"):
        span_ious(preds, gts, duration=[1.0, 2.0])
    with pytest.raises(ValueError, match="predictions"):
        span_ious(preds, gts * 2)


def test_event_detection_follows_densevid_eval() -> None:
    """Video 1: both events found at tIoU 0.8 (hits at 0.3/0.5/0.7, not 0.9); video 2: no prediction scores 0."""
    preds = [[[0.0, 0.5], [0.6, 1.0]], []]
    gts = [[[0.0, 0.4], [0.5, 1.0]], [[0.2, 0.3]]]
    result = M.event_detection(preds, gts)
    assert result["precision"] == pytest.approx(0.375) and result["recall"] == pytest.approx(0.375)
    assert result["f1"] == pytest.approx(0.375)
    # a duplicate prediction lowers precision, not recall; one prediction covering two events recalls only those hit
    dup = M.event_detection([[[0.0, 0.4], [0.0, 0.4], [0.9, 0.95]]], [[[0.0, 0.4], [0.5, 1.0]]], tious=(0.5,))
    assert dup == pytest.approx({"precision": 2 / 3, "recall": 0.5, "f1": 2 * (2 / 3) * 0.5 / (2 / 3 + 0.5)})
    assert M.event_detection([[[0.0, 0.4]]], [[[0.0, 0.4]]], tious=(0.9,))["recall"] == 1.0  # 1 - 2.5e-8 > 0.9
    assert M.dense_iou([0.0, 0.2], [0.5, 0.6]) == 0.0


def test_event_detection_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="2 prediction lists for 1 videos"):
        M.event_detection([[], []], [[[0.0, 1.0]]])
    with pytest.raises(ValueError, match=r"video\(s\) \[0\] have no reference event"):
        M.event_detection([[]], [[]])


def test_parse_spans_reads_every_event() -> None:
    text = "{<TEMP-000><TEMP-099>} A red square. {<TEMP-010><TEMP-020>} A blue bar. {0.5, 0.75} text"
    assert M.parse_spans(text) == [(0.0, 1.0), (0.10101, 0.20202), (0.5, 0.75)]
    assert M.parse_spans("no events") == []
