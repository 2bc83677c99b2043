"""Temporal tokens: encode a time, decode a token, parse spans from generated text."""

from __future__ import annotations

import pytest

from ufvideo.model.temporal import decode_token, encode_time, format_span, parse_spans, relative_text, time_token


def test_encode_decode_round_trip_within_half_a_step() -> None:
    duration = 37.3
    for k in range(100):
        t = k / 99 * duration
        assert encode_time(t, duration) == k
        assert decode_token(time_token(t, duration), duration) == pytest.approx(t)
    for t in (0.0, 1.234, 18.0, 37.3):
        assert abs(decode_token(time_token(t, duration), duration) - t) <= duration / 99 / 2 + 1e-9


def test_encoding_clamps_and_rounds() -> None:
    assert time_token(-3.0, 10.0) == "<TEMP-000>"
    assert time_token(12.0, 10.0) == "<TEMP-099>"
    assert encode_time(5.0, 10.0) == 50  # 49.5 -> round half to even
    assert encode_time(0.4, 99.0) == 0 and encode_time(0.6, 99.0) == 1
    with pytest.raises(ValueError, match="duration"):
        encode_time(1.0, 0.0)


def test_parse_spans_seconds_relative_and_noise() -> None:
    text = "It happens {<TEMP-010><TEMP-050>} and again {<TEMP-060>, <TEMP-099>}."
    assert parse_spans(text) == [(pytest.approx(10 / 99), pytest.approx(50 / 99)), (pytest.approx(60 / 99), 1.0)]
    assert parse_spans(text, 99.0) == [(pytest.approx(10.0), pytest.approx(50.0)), (pytest.approx(60.0), 99.0)]
    assert parse_spans("from <TEMP-030> to <TEMP-020>", 99.0) == [(pytest.approx(20.0), pytest.approx(30.0))]
    assert parse_spans("no time here") == []


def test_format_span_and_relative_text() -> None:
    span = format_span(2.0, 8.0, 10.0)
    assert span == "{<TEMP-020><TEMP-079>}"
    assert parse_spans(span, 10.0) == [(pytest.approx(2.0, abs=0.06), pytest.approx(8.0, abs=0.06))]
    assert relative_text("{<TEMP-000>,<TEMP-099>}") == "{0.00000,1.00000}"
    with pytest.raises(ValueError):
        format_span(5.0, 1.0, 10.0)
    with pytest.raises(ValueError, match="not a temporal token"):
        decode_token("<TEMP-7>")
