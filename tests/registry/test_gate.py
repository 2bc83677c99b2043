"""The promotion gate on plain metric dicts: thresholds, missing metrics, tolerances, and policy-file errors."""

from __future__ import annotations

import pytest

from tests.registry.helpers import write_policy
from ufvideo.config import ConfigError
from ufvideo.registry.gate import MetricRule, Policy, evaluate, load_policy, policy_path

POLICY = Policy(
    benchmarks={
        "mvbench": {"accuracy": MetricRule(min=60.0)},
        "charades_sta": {"miou": MetricRule(min=40.0, tolerance=2.0), "r_at_0_7": MetricRule(required=False)},
        "latency": {"seconds": MetricRule(max=2.0, higher_is_better=False, tolerance=0.1)},
    },
    tolerance=1.0,
    min_metrics=2,
)
GOOD = {"mvbench.accuracy": 65.0, "charades_sta.miou": 45.0, "latency.seconds": 1.5}


def test_shipped_policies_load_and_are_chosen_by_profile():
    default, tiny = load_policy(profile="ufvideo-7b"), load_policy(profile="tiny")
    assert policy_path("tiny").name == "tiny.yaml" and policy_path("ufvideo-7b").name == "default.yaml"
    assert default.rules()["mvbench.accuracy"].min == 64.0 and default.source.endswith("default.yaml")
    assert len(default.digest) == 64 and default.digest != tiny.digest
    assert not evaluate({"synthetic.accuracy": None}, tiny).passed


TINY_PRIOR = {  # the blind prior on dataset seed 0 (BENCHMARKS.md): no video, each task's commonest training answer
    "synthetic.qa_accuracy": 2.34,
    "synthetic.mcqa_accuracy": 22.66,
    "synthetic.tvg_miou": 54.26,
    "synthetic.caption_cider": 0.37,
    "synthetic.referring_cider": 0.89,
    "synthetic.dvc_cider": 0.11,
    "synthetic.rvos_jf": 0.0,
    "synthetic.pixrqa_jf": 0.0,
    "synthetic.pixhqa_jf": 0.0,
    "synthetic.pixtrqa_jf": 0.0,
}
LEARNED = {
    **{key: 45.0 for key in TINY_PRIOR},
    "synthetic.qa_accuracy": 41.0,
    "synthetic.mcqa_accuracy": 55.0,
    "synthetic.tvg_miou": 67.0,
    "synthetic.caption_cider": 1.2,
    "synthetic.referring_cider": 1.6,
    "synthetic.dvc_cider": 0.9,
    "synthetic.video_dependence.caption_cider": 0.5,
    "synthetic.video_dependence.tvg_miou": 12.0,
    "synthetic.video_dependence.qa_accuracy": 20.0,
    "synthetic.video_dependence.mcqa_accuracy": 20.0,
}


def test_the_tiny_gate_needs_more_than_the_prior_and_a_model_that_looks():
    tiny = load_policy(profile="tiny")
    prior = evaluate(TINY_PRIOR, tiny)
    assert not prior.passed
    for key in TINY_PRIOR:  # every task's threshold lies above what the answer distribution alone scores
        assert any(reason.startswith(key + ":") for reason in prior.reasons), key
    assert evaluate(LEARNED, tiny).passed
    blind = {**LEARNED, "synthetic.video_dependence.mcqa_accuracy": 0.0}  # same scores, video ignored
    assert evaluate(blind, tiny).reasons == ["synthetic.video_dependence.mcqa_accuracy: 0 < minimum 15"]
    worse = {**LEARNED, "synthetic.mcqa_accuracy": 49.0}
    assert evaluate(worse, tiny).reasons == ["synthetic.mcqa_accuracy: 49 < minimum 50"]


def test_thresholds_pass_and_fail_with_readable_reasons():
    assert evaluate(GOOD, POLICY) == evaluate(GOOD, POLICY)  # deterministic
    decision = evaluate(GOOD, POLICY)
    assert decision.passed and decision.reasons == []
    assert "mvbench.accuracy: 65 >= minimum 60" in decision.checks
    assert "charades_sta.r_at_0_7: missing (optional)" in decision.checks
    low = evaluate(GOOD | {"mvbench.accuracy": 59.9, "latency.seconds": 2.5}, POLICY)
    assert not low.passed
    assert low.reasons == ["latency.seconds: 2.5 > maximum 2", "mvbench.accuracy: 59.9 < minimum 60"]
    missing = evaluate({k: v for k, v in GOOD.items() if k != "charades_sta.miou"}, POLICY)
    assert missing.reasons == ["charades_sta.miou: missing (required by the policy)"]
    assert evaluate(GOOD | {"charades_sta.miou": None}, POLICY).reasons == missing.reasons
    few = evaluate({"mvbench.accuracy": 70.0}, Policy(min_metrics=2))
    assert few.reasons == ["only 1 metric(s) with a value; the policy needs at least 2"]


def test_no_regression_uses_policy_and_per_metric_tolerances():
    champion = GOOD | {"extra.f": 50.0}
    within = GOOD | {"mvbench.accuracy": 64.0, "charades_sta.miou": 43.5, "extra.f": 49.2}
    assert evaluate(within, POLICY, champion, "4").passed
    beyond = GOOD | {"mvbench.accuracy": 63.9, "charades_sta.miou": 42.9, "latency.seconds": 1.7, "extra.f": 48.0}
    decision = evaluate(beyond, POLICY, champion, "4")
    assert decision.champion == "4"
    assert decision.reasons == [
        "regression: charades_sta.miou: 45 (champion v4) -> 42.9, drop 2.1 beyond tolerance 2",
        "regression: extra.f: 50 (champion v4) -> 48, drop 2 beyond tolerance 1",
        "regression: latency.seconds: 1.5 (champion v4) -> 1.7, drop 0.2 beyond tolerance 0.1",
        "regression: mvbench.accuracy: 65 (champion v4) -> 63.9, drop 1.1 beyond tolerance 1",
    ]
    # Only the listed metrics are compared when compare_all is off; improvements are never regressions.
    narrow = Policy(benchmarks=POLICY.benchmarks, tolerance=1.0, compare_all=False)
    assert not any("extra.f" in r for r in evaluate(beyond, narrow, champion, "4").reasons)
    better = GOOD | {"mvbench.accuracy": 80.0, "latency.seconds": 0.5}
    assert evaluate(better, POLICY, GOOD, "4").passed


def test_policy_files_are_checked(tmp_path):
    good = write_policy(tmp_path / "ok.yaml", "tolerance: 0.5\nbenchmarks:\n  mvbench:\n    accuracy: {min: 50}\n")
    policy = load_policy(good)
    assert policy.rules() == {"mvbench.accuracy": MetricRule(min=50.0)} and policy.tolerance == 0.5
    typo = write_policy(tmp_path / "typo.yaml", "benchmarks:\n  mvbench:\n    accuracy: {minimum: 50}\n")
    with pytest.raises(ConfigError, match=r"typo.yaml: .*mvbench.accuracy.minimum: unknown key"):
        load_policy(typo)
    negative = write_policy(tmp_path / "neg.yaml", "benchmarks:\n  b:\n    m: {tolerance: -1}\n")
    with pytest.raises(ConfigError, match=r"neg.yaml: benchmarks.b.m.tolerance must be >= 0"):
        load_policy(negative)
    with pytest.raises(FileNotFoundError, match="nope.yaml"):
        load_policy(tmp_path / "nope.yaml")
