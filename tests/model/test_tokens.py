"""Tokenizers: offline tiny BPE (deterministic, fast), the added-token layout, ChatML rendering."""

from __future__ import annotations

import time

import pytest

from ufvideo.data.schema import NUM_TEMP_TOKENS, REGION_TOKEN, SEG_TOKEN, temp_token
from ufvideo.model.tokens import (
    CHATML_TEMPLATE,
    add_ufvideo_tokens,
    clean_generation,
    render_chatml,
    special_token_ids,
    train_tiny_tokenizer,
)

CORPUS = [
    "the red square moves to the left",
    "a green bar appears at the top of the frame",
    "what is the highlighted object doing in the video",
    "sure it is the segmentation mask",
] * 5


def test_training_is_deterministic_and_fast() -> None:
    start = time.perf_counter()
    a = train_tiny_tokenizer(CORPUS)
    elapsed = time.perf_counter() - start
    b = train_tiny_tokenizer(CORPUS)
    assert a.get_vocab() == b.get_vocab()
    assert elapsed < 1.0
    assert train_tiny_tokenizer(["completely different words entirely"]).get_vocab() != a.get_vocab()


def test_added_tokens_are_single_consecutive_ids_after_chatml() -> None:
    tok = train_tiny_tokenizer(CORPUS)
    ids = special_token_ids(tok)
    base = ids["region_token_id"]
    assert tok.convert_tokens_to_ids(["<|endoftext|>", "<|im_start|>", "<|im_end|>"]) == [0, 1, 2]
    assert ids["temp_token_start_id"] == base + 1
    assert ids["seg_token_id"] == base + 1 + NUM_TEMP_TOKENS == len(tok) - 1
    text = f"a {REGION_TOKEN} b {temp_token(7)}{temp_token(42)} {SEG_TOKEN}."
    encoded = tok(text, add_special_tokens=False).input_ids
    assert base in encoded and ids["seg_token_id"] in encoded
    assert ids["temp_token_start_id"] + 7 in encoded and ids["temp_token_start_id"] + 42 in encoded
    assert tok.decode(encoded, skip_special_tokens=False) == text  # byte-level: exact round trip
    assert add_ufvideo_tokens(tok) is tok and len(tok) == base + 102  # idempotent


def test_tokenizer_without_chatml_tokens_is_rejected() -> None:
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel()
    with pytest.raises(ValueError, match="ChatML"):
        add_ufvideo_tokens(PreTrainedTokenizerFast(tokenizer_object=backend))


def test_render_matches_the_jinja_chat_template() -> None:
    tok = train_tiny_tokenizer(CORPUS)
    assert tok.chat_template == CHATML_TEMPLATE
    turns = [
        {"from": "human", "value": "<video>\nWhat happens?"},
        {"from": "gpt", "value": "It moves {<TEMP-001><TEMP-005>}."},
        {"from": "human", "value": "And then?"},
    ]
    messages = [{"role": "user" if t["from"] == "human" else "assistant", "content": t["value"]} for t in turns]
    expected = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert render_chatml(turns, add_generation_prompt=True) == expected
    assert expected.startswith("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n")


def test_clean_generation_keeps_time_and_seg_tokens() -> None:
    raw = "Sure, [SEG] at {<TEMP-003><TEMP-010>}.<|im_end|><|endoftext|><|endoftext|>"
    assert clean_generation(raw) == "Sure, [SEG] at {<TEMP-003><TEMP-010>}."
