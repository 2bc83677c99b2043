"""The judge client against a real chat-completions HTTP server on 127.0.0.1 (stdlib, in a thread): canned
judgments, a 503 then success (retry path), a slow reply (timeout path), call counting (cache path)."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from ufvideo.eval.judge import Judge, JudgeConfig, JudgeError, load_prompt, parse_judgment

GOOD = (
    "1. Subject Correspondence: 5\n2. Appearance Description: 4\n3. Temporal Description: 3\n"
    "4. Hallucination Detection: 2\nExplanation: the subject matches; colours are partly wrong."
)


class FakeEndpoint:
    """Scripted replies: each request pops the next action ("ok", "503", "400", "slow"); "ok" when none is left."""

    def __init__(self) -> None:
        self.actions: list[str] = []
        self.calls = 0
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.always_good = False

    def handler(self) -> type[BaseHTTPRequestHandler]:
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                endpoint.calls += 1
                endpoint.requests.append(body)
                endpoint.headers.append(dict(self.headers))
                action = endpoint.actions.pop(0) if endpoint.actions else "ok"
                if action == "slow":
                    time.sleep(0.6)
                if action in ("503", "400"):
                    self.send_response(int(action))
                    self.end_headers()
                    self.wfile.write(b'{"error": "scripted"}')
                    return
                user = body["messages"][-1]["content"]
                content = GOOD if endpoint.always_good or "dog" in user else "I cannot grade this."
                reply = {
                    "choices": [{"message": {"role": "assistant", "content": content}}],
                    "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120},
                }
                data = json.dumps(reply).encode()
                try:
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client timed out on purpose (the retry-on-timeout case) and closed the socket

            def log_message(self, *args: Any) -> None:
                pass

        return Handler


@contextlib.contextmanager
def serving(fake: FakeEndpoint) -> Iterator[str]:
    """Serve `fake` on a free loopback port for the block; yields the OpenAI-style base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), fake.handler())
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def endpoint() -> Iterator[tuple[FakeEndpoint, str]]:
    fake = FakeEndpoint()
    with serving(fake) as url:
        yield fake, url


def _judge(url: str, cache: Path | None, sleeps: list[float], **kw: Any) -> Judge:
    config = JudgeConfig(
        base_url=url, model="judge-1", api_key="k", cache_dir=str(cache) if cache else None, backoff_s=0.01, **kw
    )
    return Judge(config, sleep=sleeps.append)


def test_parse_judgment_is_strict() -> None:
    assert parse_judgment(GOOD) == {"sc": 5, "ad": 4, "td": 3, "hd": 2}
    assert parse_judgment(GOOD.replace("4. Hallucination Detection: 2\n", "")) is None
    assert parse_judgment(GOOD.replace(": 4\n", ": 7\n")) is None  # out of 0-5
    assert parse_judgment(GOOD + "\n1. Subject Correspondence: 1") is None  # given twice
    assert parse_judgment(GOOD.replace("2. Appearance", "3. Appearance")) is None  # misnumbered
    assert parse_judgment(GOOD.replace("Subject Correspondence: 5", "**Subject Correspondence**: 5")) is None
    assert parse_judgment("Subject correspondence is good, I'd say 5/5.") is None


def test_prompt_files_are_versioned() -> None:
    system, user = load_prompt("videorefer_d_v1")
    for name in ("Subject Correspondence", "Appearance Description", "Temporal Description", "Hallucination Detection"):
        assert name in system
    assert user.format(reference="R", prediction="P") == "##Correct answer: R\n##Predicted answer: P\n"
    with pytest.raises(ValueError, match="judge prompt version 'nope' not found"):
        load_prompt("nope")


def test_retry_then_cache(endpoint: tuple[FakeEndpoint, str], tmp_path: Path) -> None:
    fake, url = endpoint
    fake.actions = ["503"]
    sleeps: list[float] = []
    judge = _judge(url, tmp_path / "cache", sleeps)
    assert judge.score("A dog runs.", "A brown dog runs.") == {"sc": 5, "ad": 4, "td": 3, "hd": 2}
    assert fake.calls == 2 and sleeps == [0.01]
    assert fake.headers[-1]["Authorization"] == "Bearer k"
    assert fake.requests[-1]["model"] == "judge-1" and fake.requests[-1]["temperature"] == 0
    assert fake.requests[-1]["messages"][0]["role"] == "system"
    usage = judge.usage()
    assert usage["retries"] == 1 and usage["total_tokens"] == 120 and usage["prompt_tokens"] == 100
    # Same inputs again, and a fresh client over the same cache: no request at all.
    judge.score("A dog runs.", "A brown dog runs.")
    again = _judge(url, tmp_path / "cache", sleeps)
    assert again.score("A dog runs.", "A brown dog runs.") == {"sc": 5, "ad": 4, "td": 3, "hd": 2}
    assert fake.calls == 2 and again.usage()["cached"] == 1 and again.usage()["total_tokens"] == 0
    # Another prompt input or another model is another cache key.
    judge.score("A dog sits.", "A brown dog runs.")
    other = Judge(JudgeConfig(base_url=url, model="judge-2", cache_dir=str(tmp_path / "cache")), sleep=sleeps.append)
    other.score("A dog runs.", "A brown dog runs.")
    assert fake.calls == 4


def test_unparsable_judgment_is_none_and_counted(endpoint: tuple[FakeEndpoint, str]) -> None:
    _, url = endpoint
    judge = _judge(url, None, [])
    assert judge.score("A cat.", "A cat sleeps.") is None
    assert judge.usage()["unparsed"] == 1


def test_timeout_is_retried(endpoint: tuple[FakeEndpoint, str]) -> None:
    fake, url = endpoint
    fake.actions = ["slow"]
    sleeps: list[float] = []
    judge = _judge(url, None, sleeps, timeout_s=0.2)
    assert judge.score("A dog.", "A dog.") is not None
    assert len(sleeps) == 1 and fake.calls == 2


def test_gives_up_with_backoff_and_fails_fast_on_client_errors(endpoint: tuple[FakeEndpoint, str]) -> None:
    fake, url = endpoint
    fake.actions = ["503"] * 4
    sleeps: list[float] = []
    with pytest.raises(JudgeError, match="gave up after 4 attempts"):
        _judge(url, None, sleeps, max_retries=3).score("A dog.", "A dog.")
    assert sleeps == [0.01, 0.02, 0.04]
    fake.actions, fake.calls = ["400"], 0
    with pytest.raises(JudgeError, match="HTTP 400"):
        _judge(url, None, []).score("A dog.", "A dog.")
    assert fake.calls == 1


def test_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("UFVIDEO_JUDGE_BASE_URL", raising=False)
    monkeypatch.delenv("UFVIDEO_JUDGE_MODEL", raising=False)
    assert JudgeConfig.from_env() is None
    monkeypatch.setenv("UFVIDEO_JUDGE_BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("UFVIDEO_JUDGE_MODEL", "m")
    monkeypatch.setenv("UFVIDEO_JUDGE_API_KEY", "secret")
    config = JudgeConfig.from_env(cache_dir="/tmp/c")
    assert (config.base_url, config.model, config.api_key, config.cache_dir) == (
        "http://127.0.0.1:9/v1",
        "m",
        "secret",
        "/tmp/c",
    )


def test_score_many_runs_concurrently_in_order(endpoint: tuple[FakeEndpoint, str], tmp_path: Path) -> None:
    fake, url = endpoint
    judge = _judge(url, tmp_path / "cache", [], workers=4)
    pairs = [("A dog.", f"A dog {i}.") for i in range(6)] + [("A cat.", "A cat."), ("A dog.", "A dog 0.")]
    results = judge.score_many(pairs)
    assert results[:6] == [{"sc": 5, "ad": 4, "td": 3, "hd": 2}] * 6 and results[6] is None
    assert results[7] == results[0]
    assert fake.calls == 7  # the repeated pair was asked once
    assert judge.usage()["requests"] == 7 and judge.usage()["total_tokens"] == 7 * 120
