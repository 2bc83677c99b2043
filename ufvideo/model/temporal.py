"""Temporal tokens `<TEMP-000>`..`<TEMP-099>`: token k means the relative time k/99 of the whole clip.

Encoding is `k = round(99 * t / duration)` (DESIGN.md section 4.2); spans are written `{<TEMP-aaa><TEMP-bbb>}`.
Parsing tolerates what a model emits around the tokens (spaces, commas, a missing brace pair).
"""

from __future__ import annotations

import re

from ufvideo.data.schema import NUM_TEMP_TOKENS, TEMP_TOKEN_RE, temp_token

_LAST = NUM_TEMP_TOKENS - 1
_SPAN_RE = re.compile(r"\{\s*<TEMP-(\d{3})>\s*,?\s*<TEMP-(\d{3})>\s*,?\s*\}")
_BARE_PAIR_RE = re.compile(r"<TEMP-(\d{3})>\s*,?\s*(?:-|to|and)?\s*<TEMP-(\d{3})>")


def encode_time(seconds: float, duration: float) -> int:
    """Index of the token nearest to `seconds` in a clip of `duration` seconds (clamped to the clip)."""
    if duration <= 0:
        raise ValueError(f"duration must be positive, got {duration}")
    return int(min(max(round(_LAST * seconds / duration), 0), _LAST))


def time_token(seconds: float, duration: float) -> str:
    """The `<TEMP-NNN>` text for a time in seconds."""
    return temp_token(encode_time(seconds, duration))


def decode_index(index: int, duration: float | None = None) -> float:
    """Time of token `index`: relative (0..1) without `duration`, else seconds."""
    if not 0 <= index <= _LAST:
        raise ValueError(f"temporal token index must be in [0, {_LAST}], got {index}")
    relative = index / _LAST
    return relative if duration is None else relative * duration


def decode_token(token: str, duration: float | None = None) -> float:
    """Time of one `<TEMP-NNN>` token text."""
    match = TEMP_TOKEN_RE.fullmatch(token.strip())
    if match is None or len(match.group(1)) != 3:
        raise ValueError(f"not a temporal token: {token!r}")
    return decode_index(int(match.group(1)), duration)


def format_span(start: float, end: float, duration: float) -> str:
    """`{<TEMP-aaa><TEMP-bbb>}` for a span in seconds."""
    if end < start:
        raise ValueError(f"span end {end} precedes start {start}")
    return "{" + time_token(start, duration) + time_token(end, duration) + "}"


def parse_spans(text: str, duration: float | None = None) -> list[tuple[float, float]]:
    """Every span in `text`, in order: braced pairs, or bare token pairs when the text has no braces.

    Times are relative (0..1) without `duration`, else seconds; a reversed pair is reordered.
    """
    matches = _SPAN_RE.findall(text) or _BARE_PAIR_RE.findall(text)
    spans = []
    for a, b in matches:
        s, e = sorted((int(a), int(b)))
        if e > _LAST:
            continue
        spans.append((decode_index(s, duration), decode_index(e, duration)))
    return spans


def relative_text(text: str) -> str:
    """Replace each temporal token by its relative time with 5 decimals (the public evaluators' normal form)."""
    return TEMP_TOKEN_RE.sub(
        lambda m: f"{int(m.group(1)) / _LAST:.5f}" if int(m.group(1)) <= _LAST else m.group(0), text
    )
