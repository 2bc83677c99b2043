"""Tracking never stops training: against a real `mlflow server` behind a switchable proxy on 127.0.0.1, logging
while the server is gone or hung is a bounded warning, the calls wait in the spool, and they reach the run once
the server answers; runs end FINISHED / FAILED / KILLED whatever the server does."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from types import SimpleNamespace
from urllib.parse import urlparse

import mlflow
import pytest

from tests.proxy import SwitchProxy
from ufvideo import tracking
from ufvideo.spool import MetricSpool
from ufvideo.train.callbacks import MLflowLogger


@pytest.fixture
def proxied(mlflow_server: str, mlflow_isolated: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[SwitchProxy]:
    parsed = urlparse(mlflow_server)
    proxy = SwitchProxy((parsed.hostname, parsed.port))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", proxy.url)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "60")  # generous while up: CI machines are slow
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    yield proxy
    proxy.set("up")  # the fixture teardown ends leftover runs through it
    proxy.close()


def _history(run_id: str, key: str) -> list[tuple[int, float]]:
    return [(m.step, m.value) for m in mlflow.MlflowClient().get_metric_history(run_id, key)]


def test_metrics_logged_during_an_outage_reach_the_run_when_it_ends(proxied, tmp_path, caplog):
    spool = MetricSpool(tmp_path / "spool.jsonl", retry_after=0.0)
    with tracking.start_run("train_stage1", spool=spool) as run:
        run_id = run.info.run_id
        logger = MLflowLogger(spool)
        state = SimpleNamespace(is_world_process_zero=True, global_step=1)
        logger.on_log(None, state, None, logs={"loss": 1.0})
        proxied.set("down")  # the server is killed mid-run
        with caplog.at_level(logging.WARNING, logger="ufvideo.spool"):
            for step in (2, 3):
                state.global_step = step
                logger.on_log(None, state, None, logs={"loss": float(step)})  # used to raise: training died
        assert "training continues" in caplog.text and len(spool.pending()) == 2
        proxied.set("up")
        state.global_step = 4
        logger.on_log(None, state, None, logs={"loss": 4.0})
    assert not spool.path.exists()
    assert _history(run_id, "loss") == [(1, 1.0), (2, 2.0), (3, 3.0), (4, 4.0)]
    assert mlflow.MlflowClient().get_run(run_id).info.status == "FINISHED"


def test_a_hung_server_costs_one_bounded_timeout_then_nothing(proxied, tmp_path, monkeypatch):
    spool = MetricSpool(tmp_path / "spool.jsonl", retry_after=60.0)
    with tracking.start_run("train_stage1", spool=spool) as run:
        monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "3")  # bounded as in training (mlflow's default: 120 s)
        proxied.set("hang")  # accepts connections, never answers
        started = time.monotonic()
        assert not spool.log_metrics(run.info.run_id, {"loss": 1.0}, step=1)
        first = time.monotonic() - started
        started = time.monotonic()
        for step in range(2, 12):
            assert not spool.log_metrics(run.info.run_id, {"loss": 1.0}, step=step)
        rest = time.monotonic() - started
        assert first < 10.0 and rest < 1.0, (first, rest)  # mlflow's defaults block ~4 minutes per call
        proxied.set("up")
        monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "60")
        assert spool.replay() == 11
    assert len(_history(run.info.run_id, "loss")) == 11


@pytest.mark.parametrize(("exc", "status"), [(KeyboardInterrupt, "KILLED"), (ValueError, "FAILED")])
def test_runs_end_killed_or_failed(proxied, exc, status):
    with pytest.raises(exc), tracking.start_run("train_stage1") as run:
        raise exc("stop")
    assert mlflow.MlflowClient().get_run(run.info.run_id).info.status == status


def test_a_run_ending_while_the_server_is_down_is_spooled_and_replayed(proxied, tmp_path):
    spool = MetricSpool(tmp_path / "spool.jsonl", retry_after=0.0)
    with tracking.start_run("train_stage1", spool=spool) as run:
        proxied.set("down")
    assert mlflow.active_run() is None  # closed in this process although the server did not hear of it
    assert [entry.get("end") for entry in spool.pending()] == ["FINISHED"]
    proxied.set("up")
    assert MetricSpool(spool.path).replay() == 1  # e.g. the next attempt of the step, at its start
    assert mlflow.MlflowClient().get_run(run.info.run_id).info.status == "FINISHED"


def test_preflight_names_an_unreachable_server_in_one_line(proxied):
    proxied.set("down")
    with pytest.raises(tracking.TrackingUnavailable, match=rf"{proxied.url} \(MLFLOW_TRACKING_URI\) did not answer"):
        tracking.preflight(timeout=2.0)
    proxied.set("up")
    tracking.preflight(timeout=10.0)
