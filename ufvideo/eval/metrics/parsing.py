"""Answer parsers: temporal spans, MVBench option index and VideoRefer-Bench-Q letter.

The default mode reproduces the public parsers and their fallbacks (quirks included, see METRICS.md section
4-5); `strict=True` accepts only an unambiguous answer at the start of the output and returns None otherwise.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from ufvideo.data.schema import TEMP_TOKEN_RE

# "{", spaces, unsigned decimal, a comma right after it, spaces, unsigned decimal, spaces, "}".
_SPAN_RE = re.compile(r"\{\s*(\d+(?:\.\d+)?),\s*(\d+(?:\.\d+)?)\s*\}")
_TEMP_STEPS = 99
# Strict letter answers: "B", "(B)", "B)", "B.", "B:" or "B," opening the output, then a break.
_STRICT_LETTER_RE = re.compile(r"^\s*(?:\(([A-Z])\)|([A-Z])[.:,)]?)(?=\s|$)")
_VIDEOREFER_PAREN_RE = re.compile(r"\(([A-Z])\)")
_VIDEOREFER_CLOSE_RE = re.compile(r"([A-Z])\)")
MVBENCH_FALLBACK_INDEX = 2


def temp_tokens_to_text(text: str) -> str:
    """UFVideo's inference rewrite: each `<TEMP-k>` becomes f"{k/99:.5f},", then ",}" becomes "}"."""
    rewritten = TEMP_TOKEN_RE.sub(lambda m: f"{int(m.group(1)) / _TEMP_STEPS:.5f},", text)
    return rewritten.replace(",}", "}")


def parse_span(text: str, strict: bool = False) -> tuple[float, float] | None:
    """Relative (start, end) from `{<TEMP-a><TEMP-b>}` or `{a, b}`; None when nothing parses.

    Lenient (UFVideo): the first `{a,b}` after the token rewrite wins; negatives, ".5", a space before the
    comma, brackets or three numbers do not parse, and values are returned as written (not sorted or
    clipped). The official script turns None into [0, 0], which scores IoU 0.
    Strict: the output must hold exactly one span, with 0 <= start <= end <= 1.
    """
    rewritten = temp_tokens_to_text(text)
    if not strict:
        match = _SPAN_RE.search(rewritten)
        return None if match is None else (float(match.group(1)), float(match.group(2)))
    matches = _SPAN_RE.findall(rewritten)
    if len(matches) != 1:
        return None
    start, end = float(matches[0][0]), float(matches[0][1])
    return (start, end) if 0.0 <= start <= end <= 1.0 else None


def parse_spans(text: str) -> list[tuple[float, float]]:
    """Every `{<TEMP-a><TEMP-b>}` / `{a, b}` span in order (dense captions hold one per event), as written."""
    return [(float(a), float(b)) for a, b in _SPAN_RE.findall(temp_tokens_to_text(text))]


def option_letters(n_options: int) -> list[str]:
    """Option labels (A), (B), ... in candidate order."""
    if not 1 <= n_options <= 26:
        raise ValueError(f"expected 1..26 options, got {n_options}")
    return [chr(ord("A") + i) for i in range(n_options)]


def parse_mvbench_answer(output: str, options: Sequence[str], strict: bool = False) -> int | None:
    """Option index chosen by `output`, as the VideoLLaMA2/UFVideo `mvbench_dump`.

    Lenient: delete "answer"/"Answer"; the first match of optional "(", ",", " " + an uppercase letter in
    range + optional ")", ",", " " is stripped of spaces and parentheses and looked up; with no match, the
    first option whose lower-cased text occurs in the output; otherwise index 2 ("C"), also when the
    lookup fails ("A," or a letter out of range). So "Based on the video, (C)" gives 1 (the B of "Based").
    Strict: a letter opening the output, or the whole output equal to one option text; else None.
    """
    letters = option_letters(len(options))
    if strict:
        return _strict_mvbench(output, options, letters)
    text = output.replace("answer", "").replace("Answer", "")
    found = re.findall(rf"[\(,\ ]*[{letters[0]}-{letters[-1]}][\),\ ]*", text)
    if found:
        token = found[0].strip().strip("()")
        return letters.index(token) if token in letters else MVBENCH_FALLBACK_INDEX
    lowered = text.lower()
    for index, option in enumerate(options):
        if option.lower() in lowered:
            return index
    return MVBENCH_FALLBACK_INDEX


def _strict_mvbench(output: str, options: Sequence[str], letters: list[str]) -> int | None:
    match = _STRICT_LETTER_RE.match(output)
    if match:
        letter = match.group(1) or match.group(2)
        return letters.index(letter) if letter in letters else None
    whole = output.strip().rstrip(".").strip().lower()
    hits = [i for i, option in enumerate(options) if option.strip().rstrip(".").strip().lower() == whole]
    return hits[0] if len(hits) == 1 else None


def videorefer_answer_letter(answer: str) -> str:
    """Ground-truth letter: the X of the first "(X)" in `Answer`, else the whole Answer string."""
    match = _VIDEOREFER_PAREN_RE.search(answer)
    return match.group(1) if match else answer


def parse_videorefer_q_answer(output: str, strict: bool = False) -> str | None:
    """The answer letter of a VideoRefer-Bench-Q output, as the public `eval_videorefer_bench_q.py`.

    Lenient: the first "(X)", else the first "X)", else the first character once every "." is removed
    (so "(b)" gives "(" and "a" gives "a"; compare case-insensitively). None where the public script
    crashes with IndexError: an empty output or one made only of dots.
    Strict: an uppercase letter opening the output ("B", "(B)", "B)", "B."), else None.
    """
    if strict:
        match = _STRICT_LETTER_RE.match(output)
        return (match.group(1) or match.group(2)) if match else None
    for pattern in (_VIDEOREFER_PAREN_RE, _VIDEOREFER_CLOSE_RE):
        match = pattern.search(output)
        if match:
            return match.group(1)
    undotted = output.replace(".", "")
    return undotted[0] if undotted else None
