"""CIDEr-D against figures the official COCO caption toolkit computed (data/make_cider_reference.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ufvideo.eval.metrics import caption_tokens, cider_d, cider_d_text

REFERENCE = json.loads((Path(__file__).parent / "data" / "cider_reference.json").read_text())


@pytest.mark.parametrize("case", sorted(REFERENCE))
def test_cider_d_matches_pycocoevalcap(case: str) -> None:
    data = REFERENCE[case]
    score, per_item = cider_d([c.split() for c in data["res"]], [[r.split() for r in refs] for refs in data["gts"]])
    assert per_item == pytest.approx(data["per_item"], rel=1e-12, abs=1e-12)
    assert score == pytest.approx(data["cider"], rel=1e-12)


def test_caption_tokens_follow_the_toolkit_preprocessing() -> None:
    text = "{<TEMP-012><TEMP-034>} The red square's path: left-to-right, then it vanishes!"
    assert caption_tokens(text) == [
        "<temp-012>", "<temp-034>", "the", "red", "square", "'s", "path", "left-to-right", "then", "it", "vanishes",
    ]  # fmt: skip


def test_distinctive_words_carry_the_score() -> None:
    """Template words every reference shares weigh nothing: a right colour scores, a wrong one does not."""
    refs = [["The red square moves right."], ["The blue circle moves left."], ["The green bar moves up."]]
    right, _ = cider_d_text(
        ["The red square moves right.", "The blue circle moves left.", "The green bar moves up."], refs
    )
    wrong, per_item = cider_d_text(["The blue bar moves up.", "The green square moves right.", "The red circle."], refs)
    assert right == pytest.approx(10.0)
    assert right > 3 * wrong


def test_a_single_item_always_scores_zero() -> None:
    """log(1 item) = 0 makes every weight 0: CIDEr needs a corpus, as in the toolkit."""
    assert cider_d_text(["the red square"], [["the red square"]]) == (0.0, [0.0])


def test_bad_input_is_named() -> None:
    with pytest.raises(ValueError, match="2 candidates but 1 reference"):
        cider_d([["a"], ["b"]], [[["a"]]])
    with pytest.raises(ValueError, match=r"item\(s\) \[1\] have no reference"):
        cider_d([["a"], ["b"]], [[["a"]], []])
    with pytest.raises(ValueError, match="nothing to score"):
        cider_d([], [])
