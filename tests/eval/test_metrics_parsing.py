"""Answer parsers: each public fallback and quirk, the None cases, and the strict mode."""

from __future__ import annotations

import pytest

from ufvideo.eval.metrics import parse_mvbench_answer, parse_span, parse_videorefer_q_answer, videorefer_answer_letter
from ufvideo.eval.metrics.parsing import option_letters, temp_tokens_to_text

OPTIONS = ["dog", "cat", "bird", "fish"]


@pytest.mark.parametrize(
    ("text", "span"),
    [
        ("{<TEMP-020><TEMP-050>}", (0.20202, 0.50505)),
        ("{<TEMP-20><TEMP-50>}", (0.20202, 0.50505)),  # upstream unpadded tokens
        ("It happens at {0.2, 0.5}.", (0.2, 0.5)),
        ("{ 0.25,0.75 }", (0.25, 0.75)),
        ("{3,1}", (3.0, 1.0)),  # as written: not sorted, not clipped
        ("{0.1,0.2} then {0.3,0.4}", (0.1, 0.2)),  # first match wins
        ("{0.2 ,0.5}", None),  # space before the comma
        ("{-0.2,0.5}", None),  # negative
        ("{.5,0.6}", None),  # no leading digit
        ("[0.2, 0.5]", None),  # brackets
        ("{1,2,3}", None),  # three numbers
        ("no span here", None),
    ],
)
def test_parse_span_lenient(text: str, span: tuple[float, float] | None) -> None:
    assert parse_span(text) == span


def test_temp_rewrite_matches_inference() -> None:
    assert temp_tokens_to_text("{<TEMP-020><TEMP-050>}") == "{0.20202,0.50505}"


@pytest.mark.parametrize(
    ("text", "span"),
    [
        ("{<TEMP-000><TEMP-099>}", (0.0, 1.0)),
        ("{0.1,0.2} then {0.3,0.4}", None),  # ambiguous
        ("{3,1}", None),  # outside [0, 1] and reversed
        ("{0.6,0.2}", None),
    ],
)
def test_parse_span_strict(text: str, span: tuple[float, float] | None) -> None:
    assert parse_span(text, strict=True) == span


@pytest.mark.parametrize(
    ("output", "index"),
    [
        ("(B) cat", 1),
        ("C", 2),
        ("Answer: D", 3),  # "Answer" is deleted first
        ("Based on the video, (C)", 1),  # the capital B of "Based"
        ("A, because", 2),  # "A," is not a letter: fallback index 2
        ("(a)", 2),  # lowercase never matches, no option text either
        ("E", 2),  # out of range
        ("", 2),
        ("the answer is the cat", 1),  # option-text fallback
        ("it is a fish", 3),
        ("a dog and a cat", 0),  # first option in candidate order
    ],
)
def test_parse_mvbench_answer(output: str, index: int) -> None:
    assert parse_mvbench_answer(output, OPTIONS) == index


@pytest.mark.parametrize(
    ("output", "index"),
    [("B", 1), ("(D) fish", 3), ("A.", 0), ("cat", 1), ("Cat.", 1), ("Based on the video, (C)", None), ("E", None)],
)
def test_parse_mvbench_answer_strict(output: str, index: int | None) -> None:
    assert parse_mvbench_answer(output, OPTIONS, strict=True) == index


@pytest.mark.parametrize(
    ("output", "letter"),
    [
        ("(A) or (C)", "A"),
        ("The answer is (D).", "D"),
        ("B) the red car", "B"),
        ("(b)", "("),  # no uppercase pattern: first character
        ("a", "a"),  # compared case-insensitively later
        ("...c", "c"),  # dots removed first
        ("", None),  # the public script raises IndexError
        ("...", None),
    ],
)
def test_parse_videorefer_q_answer(output: str, letter: str | None) -> None:
    assert parse_videorefer_q_answer(output) == letter


@pytest.mark.parametrize(("output", "letter"), [("B", "B"), ("(C) x", "C"), ("a", None), ("The (D)", None)])
def test_parse_videorefer_q_answer_strict(output: str, letter: str | None) -> None:
    assert parse_videorefer_q_answer(output, strict=True) == letter


def test_videorefer_ground_truth_letter() -> None:
    assert videorefer_answer_letter("(B) The man") == "B"
    assert videorefer_answer_letter("yes") == "yes"
    assert option_letters(3) == ["A", "B", "C"]
    with pytest.raises(ValueError, match="options"):
        option_letters(0)
