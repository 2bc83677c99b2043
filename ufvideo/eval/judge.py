"""An LLM judge over any OpenAI-compatible chat-completions endpoint (stdlib HTTP): versioned prompts, retries with
exponential backoff, an on-disk cache so re-runs cost nothing, token usage summed, strict score parsing.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ufvideo.files import read_json, sha256_text, write_json

log = logging.getLogger(__name__)

PROMPTS_DIR = Path(__file__).parent / "prompts"
DEFAULT_PROMPT = "videorefer_d_v1"
DIMENSIONS = {
    "Subject Correspondence": "sc",
    "Appearance Description": "ad",
    "Temporal Description": "td",
    "Hallucination Detection": "hd",
}
_ORDER = list(DIMENSIONS)
_SCORE_LINE = re.compile(r"^\s*([1-4])\.\s*([A-Za-z ]+?)\s*:\s*(\d+)\s*$", re.MULTILINE)
RETRY_STATUS = frozenset({408, 429, 500, 502, 503, 504})
ENV_BASE_URL, ENV_MODEL, ENV_API_KEY = "UFVIDEO_JUDGE_BASE_URL", "UFVIDEO_JUDGE_MODEL", "UFVIDEO_JUDGE_API_KEY"


class JudgeError(RuntimeError):
    """The judge endpoint failed for good (after retries, or a non-retryable error); the message says why."""


def load_prompt(version: str) -> tuple[str, str]:
    """(system prompt, user template) of a prompt version, from `prompts/<version>.{system,user}.txt`."""
    system, user = PROMPTS_DIR / f"{version}.system.txt", PROMPTS_DIR / f"{version}.user.txt"
    if not system.is_file() or not user.is_file():
        known = sorted({p.name.split(".")[0] for p in PROMPTS_DIR.glob("*.txt")})
        raise ValueError(f"judge prompt version {version!r} not found in {PROMPTS_DIR}; known: {', '.join(known)}")
    return system.read_text(encoding="utf-8"), user.read_text(encoding="utf-8")


def parse_judgment(text: str) -> dict[str, int] | None:
    """The four scores from "N. Name: score" lines; None unless each dimension appears exactly once, numbered as
    in the prompt, with an integer 0-5 (no guessing from free text)."""
    found: dict[str, int] = {}
    for number, name, score in _SCORE_LINE.findall(text):
        if name not in DIMENSIONS or _ORDER.index(name) != int(number) - 1:
            continue
        key = DIMENSIONS[name]
        if key in found or not 0 <= int(score) <= 5:
            return None
        found[key] = int(score)
    return found if len(found) == len(DIMENSIONS) else None


@dataclass
class JudgeConfig:
    """Where and how to ask. `cache_dir` None disables the cache (every call is a request)."""

    base_url: str
    model: str
    api_key: str = ""
    prompt_version: str = DEFAULT_PROMPT
    cache_dir: str | None = None
    timeout_s: float = 60.0
    max_retries: int = 5
    backoff_s: float = 1.0
    max_backoff_s: float = 60.0
    workers: int = 8  # requests in flight (the public VideoRefer-D script runs 10 processes)

    @classmethod
    def from_env(cls, **overrides: Any) -> JudgeConfig | None:
        """From `UFVIDEO_JUDGE_BASE_URL` / `_MODEL` / `_API_KEY`; None when the URL or model is not set."""
        base_url, model = os.environ.get(ENV_BASE_URL, ""), os.environ.get(ENV_MODEL, "")
        if not base_url or not model:
            return None
        return cls(base_url=base_url, model=model, api_key=os.environ.get(ENV_API_KEY, ""), **overrides)


class Judge:
    """Scores (reference, prediction) pairs. `sleep` is injectable so tests do not wait through backoffs."""

    def __init__(self, config: JudgeConfig, sleep: Callable[[float], None] = time.sleep) -> None:
        self.config = config
        self.system, self.user_template = load_prompt(config.prompt_version)
        self._sleep = sleep
        self._usage = {"requests": 0, "cached": 0, "retries": 0, "unparsed": 0}
        self._tokens = {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
        self._lock = threading.Lock()

    def _count(self, name: str) -> None:
        with self._lock:
            self._usage[name] += 1

    def describe(self) -> str:
        return f"{self.config.model} (prompt {self.config.prompt_version})"

    def usage(self) -> dict[str, int]:
        """Requests made, answers served from the cache, retries, unparsable judgments and tokens spent."""
        return {**self._usage, **self._tokens}

    def score(self, reference: str, prediction: str) -> dict[str, int] | None:
        """The four 0-5 scores (keys sc, ad, td, hd), or None when the judgment does not parse."""
        content = self.complete(self.user_template.format(reference=reference, prediction=prediction))
        scores = parse_judgment(content)
        if scores is None:
            self._count("unparsed")
            log.warning("judge: unparsable judgment (first 200 chars): %r", content[:200])
        return scores

    def score_many(self, pairs: Sequence[tuple[str, str]]) -> list[dict[str, int] | None]:
        """`score` over (reference, prediction) pairs with `config.workers` requests in flight, results in order."""
        unique = list(dict.fromkeys(pairs))  # a repeated pair is asked once, then shared
        if self.config.workers <= 1 or len(unique) <= 1:
            results = [self.score(r, p) for r, p in unique]
        else:
            with ThreadPoolExecutor(max_workers=self.config.workers) as pool:
                results = list(pool.map(lambda pair: self.score(*pair), unique))
        by_pair = dict(zip(unique, results))
        return [by_pair[pair] for pair in pairs]

    def complete(self, user: str) -> str:
        """The judge's reply to one user message, from the cache when this (version, model, input) was asked."""
        key = sha256_text(json.dumps([self.config.prompt_version, self.config.model, self.system, user]))
        path = Path(self.config.cache_dir) / key[:2] / f"{key}.json" if self.config.cache_dir else None
        if path is not None and path.is_file():
            self._count("cached")
            return str(read_json(path)["content"])
        messages = [{"role": "system", "content": self.system}, {"role": "user", "content": user}]
        reply = self._post({"model": self.config.model, "messages": messages, "temperature": 0})
        try:
            content = str(reply["choices"][0]["message"]["content"])
        except (KeyError, IndexError, TypeError):
            raise JudgeError(f"judge reply has no choices[0].message.content: {str(reply)[:200]}") from None
        usage = reply.get("usage") or {}
        with self._lock:
            for name in self._tokens:
                self._tokens[name] += int(usage.get(name) or 0)
        log.info(
            "judge: %s tokens (prompt %s, completion %s)",
            usage.get("total_tokens"),
            usage.get("prompt_tokens"),
            usage.get("completion_tokens"),
        )
        if path is not None:
            write_json(
                path,
                {
                    "content": content,
                    "usage": usage,
                    "model": self.config.model,
                    "prompt_version": self.config.prompt_version,
                },
            )
        return content

    def _post(self, body: dict[str, Any]) -> dict[str, Any]:
        url = self.config.base_url.rstrip("/") + "/chat/completions"
        headers = {"Content-Type": "application/json"}
        if self.config.api_key:
            headers["Authorization"] = f"Bearer {self.config.api_key}"
        data = json.dumps(body).encode("utf-8")
        for attempt in range(self.config.max_retries + 1):
            self._count("requests")
            request = urllib.request.Request(url, data=data, headers=headers, method="POST")
            try:
                with urllib.request.urlopen(request, timeout=self.config.timeout_s) as response:
                    return json.loads(response.read().decode("utf-8"))
            except urllib.error.HTTPError as err:
                if err.code not in RETRY_STATUS:
                    detail = err.read()[:300].decode("utf-8", "replace")
                    raise JudgeError(f"judge {url}: HTTP {err.code}: {detail}") from None
                reason, retry_after = f"HTTP {err.code}", err.headers.get("Retry-After")
            except (urllib.error.URLError, TimeoutError, ConnectionError) as err:
                reason, retry_after = f"{type(err).__name__}: {err}", None
            if attempt == self.config.max_retries:
                raise JudgeError(f"judge {url}: gave up after {attempt + 1} attempts (last: {reason})")
            delay = min(self.config.backoff_s * 2**attempt, self.config.max_backoff_s)
            if retry_after and retry_after.replace(".", "", 1).isdigit():
                delay = min(max(delay, float(retry_after)), self.config.max_backoff_s)
            self._count("retries")
            log.warning("judge: %s, retry %d/%d in %.1fs", reason, attempt + 1, self.config.max_retries, delay)
            self._sleep(delay)
        raise AssertionError("unreachable")
