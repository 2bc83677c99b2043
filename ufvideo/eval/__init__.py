"""Evaluation: benchmark metrics, inference and reports."""
