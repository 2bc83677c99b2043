"""CIDEr-D (Vedantam et al., CVPR 2015) exactly as the COCO caption toolkit (`pycocoevalcap`) computes it.

Why it is here: judge-scored free text (captions, region descriptions, dense captions) gets no number without a
judge endpoint, yet on data with exact references (the synthetic benchmark) a deterministic consensus metric still
says whether the text carries the right content. CIDEr's TF-IDF weights give n-grams that every reference shares
("the video shows") zero weight, so the credit comes from the distinctive words: colours, shapes, motions, times.

Formula (per item i with candidate c and references R_i, n-gram orders 1..4):
  w_k(g, s) = tf(g, s) * (log |items| - log max(1, df(g))), df = number of items whose references contain g;
  sim_k(c, r) = sum_g min(w_k(g, c), w_k(g, r)) * w_k(g, r) / (|w_k(c)| |w_k(r)|) * exp(-(l_c - l_r)^2 / 2 sigma^2);
  CIDEr-D_i = 10 * mean_k(sum_r sim_k(c, r)) / |R_i|; the corpus score is the mean over items.
Toolkit conventions kept on purpose (they change the numbers): the length l in the Gaussian penalty counts the
*bigrams* of a sentence (the toolkit's `if n == 1` on a 0-based order), sigma = 6, a zero norm skips the division,
and document frequencies come from the references of the scored set only, so one item alone always scores 0.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence

import numpy as np

Ngram = tuple[str, ...]
CIDER_N = 4
CIDER_SIGMA = 6.0
# Lower-cased words (hyphenated compounds kept whole, clitics split off as "'s" like the PTB tokenizer) and
# temporal tokens as single words; punctuation is dropped, as the toolkit's PTBTokenizer does.
_TOKEN = re.compile(r"<temp-\d+>|[a-z0-9]+(?:-[a-z0-9]+)*|'[a-z]+")


def caption_tokens(text: str) -> list[str]:
    """The toolkit's preprocessing without Java: lower case, punctuation removed, `<TEMP-nnn>` kept as one word."""
    return _TOKEN.findall(text.lower())


def _ngram_counts(tokens: Sequence[str], n: int) -> Counter[Ngram]:
    counts: Counter[Ngram] = Counter()
    for k in range(1, n + 1):
        for i in range(len(tokens) - k + 1):
            counts[tuple(tokens[i : i + k])] += 1
    return counts


def _tfidf(
    counts: Counter[Ngram], doc_freq: Counter[Ngram], log_items: float, n: int
) -> tuple[list[dict[Ngram, float]], list[float], int]:
    """Per-order TF-IDF vectors, their norms, and the toolkit's length (the number of bigrams)."""
    vectors: list[dict[Ngram, float]] = [{} for _ in range(n)]
    squares = [0.0] * n
    length = 0
    for gram, tf in counts.items():
        order = len(gram) - 1
        weight = float(tf) * (log_items - math.log(max(1.0, float(doc_freq[gram]))))
        vectors[order][gram] = weight
        squares[order] += weight * weight
        if order == 1:
            length += tf
    return vectors, [math.sqrt(s) for s in squares], length


def cider_d(
    candidates: Sequence[Sequence[str]],
    references: Sequence[Sequence[Sequence[str]]],
    n: int = CIDER_N,
    sigma: float = CIDER_SIGMA,
) -> tuple[float, list[float]]:
    """Corpus CIDEr-D and the per-item scores, for tokenised candidates (one per item) and references (>= 1 each)."""
    if len(candidates) != len(references):
        raise ValueError(f"cider_d: {len(candidates)} candidates but {len(references)} reference lists")
    if not candidates:
        raise ValueError("cider_d: nothing to score")
    empty = [i for i, refs in enumerate(references) if not refs]
    if empty:
        raise ValueError(f"cider_d: item(s) {empty[:5]} have no reference")
    ref_counts = [[_ngram_counts(ref, n) for ref in refs] for refs in references]
    doc_freq: Counter[Ngram] = Counter()
    for refs in ref_counts:
        doc_freq.update(set().union(*(r.keys() for r in refs)))
    log_items = math.log(float(len(references)))
    scores: list[float] = []
    for candidate, refs in zip(candidates, ref_counts, strict=True):
        cand_vec, cand_norm, cand_len = _tfidf(_ngram_counts(candidate, n), doc_freq, log_items, n)
        total = np.zeros(n)
        for ref in refs:
            ref_vec, ref_norm, ref_len = _tfidf(ref, doc_freq, log_items, n)
            penalty = math.exp(-((cand_len - ref_len) ** 2) / (2.0 * sigma**2))
            for k in range(n):
                dot = sum(min(w, ref_vec[k].get(g, 0.0)) * ref_vec[k].get(g, 0.0) for g, w in cand_vec[k].items())
                if cand_norm[k] != 0.0 and ref_norm[k] != 0.0:
                    dot /= cand_norm[k] * ref_norm[k]
                total[k] += dot * penalty
        scores.append(10.0 * float(np.mean(total)) / len(refs))
    return float(np.mean(scores)), scores


def cider_d_text(candidates: Sequence[str], references: Sequence[Sequence[str]]) -> tuple[float, list[float]]:
    """`cider_d` on raw strings, tokenised with `caption_tokens`."""
    return cider_d([caption_tokens(c) for c in candidates], [[caption_tokens(r) for r in refs] for refs in references])
