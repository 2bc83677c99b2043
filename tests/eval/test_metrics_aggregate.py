"""Aggregations: per-expression vs frame-pooled, ReVOS groups, DAVIS R/D, MVBench and VideoRefer-Bench-Q."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ufvideo.eval.metrics import (
    FRAME_POOLED,
    PER_EXPRESSION,
    davis_decay,
    davis_recall,
    frame_pooled_mean,
    jf_report,
    mvbench_report,
    per_expression_mean,
    revos_expression,
    revos_report,
    videorefer_q_report,
)

# Expression A is long and perfect, B is one bad frame: the two averages disagree.
J_FRAMES = [[1.0, 1.0, 1.0, 1.0], [0.0]]
F_FRAMES = [[1.0, 0.5, 1.0, 0.5], [0.5]]


def test_per_expression_and_pooled_differ() -> None:
    assert per_expression_mean(J_FRAMES) == 0.5
    assert frame_pooled_mean(J_FRAMES) == pytest.approx(0.8)


def test_missing_prediction_scores_zero_per_expression_and_is_skipped_pooled() -> None:
    frames = [[1.0, 1.0], None]
    assert per_expression_mean(frames) == 0.5  # MeViS: a missing video folder scores 0
    assert frame_pooled_mean(frames) == 1.0  # UFVideo scripts skip the sample
    with pytest.raises(ValueError, match="expression 0 has no frames"):
        per_expression_mean([[]])
    with pytest.raises(ValueError, match="no frames"):
        frame_pooled_mean([None])


def test_jf_report_labels_its_aggregation() -> None:
    per_expr = jf_report(J_FRAMES, F_FRAMES)
    assert per_expr["aggregation"] == PER_EXPRESSION
    assert per_expr["J"] == 0.5 and per_expr["F"] == pytest.approx(0.625)
    assert per_expr["J&F"] == pytest.approx((0.5 + 0.625) / 2)
    pooled = jf_report(J_FRAMES, F_FRAMES, aggregation=FRAME_POOLED)
    assert pooled["aggregation"] == FRAME_POOLED
    assert pooled["J"] == pytest.approx(0.8) and pooled["F"] == pytest.approx(0.7)
    assert pooled["J&F"] == pytest.approx(0.75)
    with pytest.raises(ValueError, match="aggregation"):
        jf_report(J_FRAMES, F_FRAMES, aggregation="median")


def test_revos_report_rounds_per_expression_and_macro_averages_groups() -> None:
    expressions = [
        {"type_id": 0, "J": 0.123456, "F": 0.5, "A": 0.9, "R": 1.0},
        {"type_id": 0, "J": 0.2, "F": 0.3, "A": 0.8, "R": 0.5},
        {"type_id": 1, "J": 0.9, "F": 0.7, "A": 1.0, "R": 0.0},
        {"type_id": 2, "J": 0.0, "F": 0.0, "A": 0.0, "R": 0.0},  # in no group
        {"type_id": 1, "J": None, "F": None, "A": None, "R": None},  # missing prediction
    ]
    report = revos_report(expressions)
    ref, rea, overall = report["referring"], report["reasoning"], report["overall"]
    assert ref["J"] == pytest.approx((12.35 + 20.0) / 2)  # 12.3456 rounded to 12.35 first
    assert ref["F"] == pytest.approx(40.0)
    assert ref["J&F"] == pytest.approx((ref["J"] + ref["F"]) / 2)
    assert rea["J"] == pytest.approx(45.0) and rea["A"] == pytest.approx(50.0)
    # Overall is the mean of the two groups, not of the four scored expressions.
    assert overall["J"] == pytest.approx((16.175 + 45.0) / 2)
    assert overall["R"] == pytest.approx((75.0 + 0.0) / 2)
    assert "overall = mean of the two groups" in report["aggregation"]
    assert math.isnan(revos_report([{"type_id": 0, "J": 1, "F": 1, "A": 1, "R": 1}])["reasoning"]["J"])
    with pytest.raises(ValueError, match="type_id"):
        revos_report([{"J": 1.0}])


def test_revos_expression_means_over_all_frames() -> None:
    gt = np.zeros((2, 20, 30), np.uint8)
    gt[0, 5:10, 5:10] = 1
    pred = gt.copy()  # frame 1: both empty -> J = F = 1
    scores = revos_expression(pred, gt, foreground=gt)
    assert scores["J"] == 1.0 and scores["F"] == 1.0 and scores["A"] == 1.0
    assert scores["R"] == pytest.approx(1.0)


def test_davis_recall_and_decay() -> None:
    assert davis_recall([0.5, 0.51, 0.2, float("nan")]) == pytest.approx(1 / 3)  # strict, NaN dropped
    assert davis_decay([1, 1, 1, 1, 0, 0, 0, 0]) == 1.0
    # Edges for T=8 are [0, 2, 4, 5, 7]; bins include their right edge: X[0:3] and X[5:8].
    assert davis_decay(np.arange(8) / 7) == pytest.approx(1 / 7 - 6 / 7)


def test_mvbench_report_micro_and_per_task() -> None:
    records = [("Action", 0, 0), ("Action", 1, 0), ("Action", 2, 2), ("Counting", 1, 3)]
    report = mvbench_report(records)
    assert report["per_task"] == {"Action": pytest.approx(200 / 3), "Counting": 0.0}
    assert report["overall"] == 50.0  # micro: 2 of 4
    assert report["macro"] == pytest.approx(100 / 3)
    with pytest.raises(ValueError, match="no records"):
        mvbench_report([])


def test_videorefer_q_report_micro_case_insensitive() -> None:
    records = [
        ("BQ", "a", "(A) red"),  # lowercase counts as right
        ("BQ", "(", "(B) blue"),  # "(b)" parsed as "(": wrong
        ("SQ", None, "(C) up"),  # unparsable: wrong, tallied
        ("SQ", "C", "(C) up"),
        ("SQ", "D", "(D) down"),
    ]
    report = videorefer_q_report(records)
    assert report["per_type"] == {"BQ": 0.5, "SQ": pytest.approx(2 / 3)}
    assert report["overall"] == pytest.approx(3 / 5)  # micro, not the mean of the types
    assert report["unparsed"] == 1
