"""Tokenizers for UFVideo: the tiny offline BPE, Qwen2's from a local directory, and the added tokens.

Both profiles get the same additions in the same order as the public model (`<region>`, `<TEMP-000..099>`,
`[SEG]`), so with Qwen2 they land on ids 151646..151747. The conversation template is ChatML.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import AutoTokenizer, PreTrainedTokenizerBase, PreTrainedTokenizerFast

from ufvideo.data.schema import NUM_TEMP_TOKENS, REGION_TOKEN, SEG_TOKEN, temp_token

ENDOFTEXT, IM_START, IM_END = "<|endoftext|>", "<|im_start|>", "<|im_end|>"
BASE_SPECIAL_TOKENS = (ENDOFTEXT, IM_START, IM_END)
ADDED_TOKENS = (REGION_TOKEN, *(temp_token(i) for i in range(NUM_TEMP_TOKENS)), SEG_TOKEN)
DEFAULT_SYSTEM_PROMPT = "You are a helpful assistant."

# Qwen2-Instruct's ChatML template, default system prompt included; `tokens.render_chatml` is its Python twin.
CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}"
    "{{ '<|im_start|>system\\n" + DEFAULT_SYSTEM_PROMPT + "<|im_end|>\\n' }}"
    "{% endif %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


def train_tiny_tokenizer(corpus: Iterable[str], vocab_size: int = 384) -> PreTrainedTokenizerFast:
    """Byte-level BPE trained on `corpus` (deterministic for a given corpus), plus the UFVideo tokens.

    Byte-level means any text round-trips, whatever the corpus covered. `vocab_size` bounds the learned
    part; the added tokens come on top.
    """
    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(BASE_SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    backend.train_from_iterator(corpus, trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, eos_token=IM_END, pad_token=ENDOFTEXT)
    return add_ufvideo_tokens(tokenizer)


def load_qwen2_tokenizer(path: str | Path) -> PreTrainedTokenizerBase:
    """Qwen2's tokenizer from a local directory (never the hub), with the UFVideo tokens added."""
    tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = ENDOFTEXT
    return add_ufvideo_tokens(tokenizer)


def add_ufvideo_tokens(tokenizer: PreTrainedTokenizerBase) -> PreTrainedTokenizerBase:
    """Append `<region>`, the temporal tokens and `[SEG]` (skipping any already present) and set ChatML."""
    missing = [t for t in BASE_SPECIAL_TOKENS if t not in tokenizer.get_vocab()]
    if missing:
        raise ValueError(f"tokenizer lacks the ChatML tokens {missing}; it must be a Qwen2-style tokenizer")
    vocab = tokenizer.get_vocab()
    tokenizer.add_tokens([t for t in ADDED_TOKENS if t not in vocab], special_tokens=True)
    tokenizer.chat_template = CHATML_TEMPLATE
    return tokenizer


def special_token_ids(tokenizer: PreTrainedTokenizerBase) -> dict[str, int]:
    """The ids `UFVideoConfig` needs, read from a tokenizer that went through `add_ufvideo_tokens`."""
    ids = {
        "region_token_id": tokenizer.convert_tokens_to_ids(REGION_TOKEN),
        "temp_token_start_id": tokenizer.convert_tokens_to_ids(temp_token(0)),
        "seg_token_id": tokenizer.convert_tokens_to_ids(SEG_TOKEN),
        "im_end_token_id": tokenizer.convert_tokens_to_ids(IM_END),
        "pad_token_id": tokenizer.convert_tokens_to_ids(ENDOFTEXT),
    }
    temps = tokenizer.convert_tokens_to_ids([temp_token(i) for i in range(NUM_TEMP_TOKENS)])
    if temps != list(range(ids["temp_token_start_id"], ids["temp_token_start_id"] + NUM_TEMP_TOKENS)):
        raise ValueError("temporal tokens must have consecutive ids; rebuild the tokenizer with add_ufvideo_tokens")
    return ids


def chatml_segments(
    turns: list[dict[str, str]], system_prompt: str = DEFAULT_SYSTEM_PROMPT, add_generation_prompt: bool = False
) -> list[tuple[str, bool]]:
    """The ChatML text of a conversation as (text, supervised) pieces.

    Supervised pieces are exactly the assistant answers followed by `<|im_end|>\\n` (MODEL.md section 2).
    """
    pieces = [(f"{IM_START}system\n{system_prompt}{IM_END}\n", False)]
    for turn in turns:
        if turn["from"] == "human":
            pieces.append((f"{IM_START}user\n{turn['value']}{IM_END}\n", False))
        elif turn["from"] == "gpt":
            pieces.append((f"{IM_START}assistant\n", False))
            pieces.append((f"{turn['value']}{IM_END}\n", True))
        else:
            raise ValueError(f"conversation role must be 'human' or 'gpt', got {turn['from']!r}")
    if add_generation_prompt:
        pieces.append((f"{IM_START}assistant\n", False))
    return pieces


def render_chatml(turns: list[dict[str, str]], add_generation_prompt: bool = False) -> str:
    """Plain ChatML text of a conversation (what `apply_chat_template` renders)."""
    return "".join(text for text, _ in chatml_segments(turns, add_generation_prompt=add_generation_prompt))


def clean_generation(text: str) -> str:
    """Cut a decoded answer at its end marker and drop padding; keep every other token (TEMP, [SEG])."""
    text = text.split(IM_END, 1)[0]
    return text.replace(ENDOFTEXT, "").strip()
