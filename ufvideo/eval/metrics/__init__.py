"""Exact benchmark metrics on numpy arrays and floats (J, F, tIoU, recalls, answer parsers, aggregations)."""

from __future__ import annotations

from ufvideo.eval.metrics.aggregate import (
    AGGREGATIONS,
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
from ufvideo.eval.metrics.masks import (
    boundary_map,
    boundary_radius,
    contour_accuracy,
    pixel_accuracy,
    region_and_contour,
    region_similarity,
    robustness,
)
from ufvideo.eval.metrics.parsing import (
    option_letters,
    parse_mvbench_answer,
    parse_span,
    parse_videorefer_q_answer,
    temp_tokens_to_text,
    videorefer_answer_letter,
)
from ufvideo.eval.metrics.temporal import grounding_scores, mean_iou, recall_at_iou, span_ious, temporal_iou

__all__ = [
    "AGGREGATIONS",
    "FRAME_POOLED",
    "PER_EXPRESSION",
    "boundary_map",
    "boundary_radius",
    "contour_accuracy",
    "davis_decay",
    "davis_recall",
    "frame_pooled_mean",
    "grounding_scores",
    "jf_report",
    "mean_iou",
    "mvbench_report",
    "option_letters",
    "parse_mvbench_answer",
    "parse_span",
    "parse_videorefer_q_answer",
    "per_expression_mean",
    "pixel_accuracy",
    "recall_at_iou",
    "region_and_contour",
    "region_similarity",
    "revos_expression",
    "revos_report",
    "robustness",
    "span_ious",
    "temp_tokens_to_text",
    "temporal_iou",
    "videorefer_answer_letter",
    "videorefer_q_report",
]
