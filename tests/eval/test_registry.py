"""The benchmark registry: every benchmark of the issue is declared consistently."""

from __future__ import annotations

import pytest

from ufvideo.config import ConfigError
from ufvideo.eval.benchmarks import benchmark_names, get_benchmark
from ufvideo.eval.registry import ScoreContext
from ufvideo.eval.types import Sample

EXPECTED = {
    "mvbench",
    "videorefer_d_single",
    "videorefer_d_multi",
    "videorefer_q_single",
    "videorefer_q_multi",
    "mevis_valid_u",
    "mevis_valid",
    "ref_youtube_vos",
    "ref_davis17",
    "revos",
    "charades_sta",
    "pixrqa",
    "pixhqa",
    "pixtrqa",
    "synthetic",
}


def test_every_benchmark_is_registered() -> None:
    assert set(benchmark_names()) == EXPECTED


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_declarations_are_consistent(name: str) -> None:
    bench = get_benchmark(name)
    assert bench.name == name
    assert set(bench.published) <= set(bench.metrics), set(bench.published) - set(bench.metrics)
    assert all(m == m.lower() and " " not in m for m in bench.metrics)
    assert bench.load.__name__.endswith("_load") and bench.score.__name__.endswith("_score")
    assert (bench.mask_layout is not None) == (bench.task in ("rvos", "pixrqa", "pixhqa", "pixtrqa", "mixed"))
    assert bench.submission in (None, "mevis", "ref_youtube_vos")


def test_server_splits_and_published_headlines() -> None:
    assert {n for n in EXPECTED if get_benchmark(n).submission} == {"mevis_valid", "ref_youtube_vos"}
    assert get_benchmark("mevis_valid_u").published["jf"] == 62.8
    assert get_benchmark("ref_davis17").published["jf"] == 74.6
    assert get_benchmark("charades_sta").published == {
        "r_at_0_3": 71.2,
        "r_at_0_5": 49.6,
        "r_at_0_7": 24.1,
        "miou": 44.7,
    }


def test_unknown_names_and_aggregations_are_refused() -> None:
    with pytest.raises(ConfigError, match="unknown benchmark 'mvbenhc'; known: charades_sta"):
        get_benchmark("mvbenhc")
    with pytest.raises(ConfigError, match="aggregation must be one of"):
        ScoreContext(aggregation="pooled")


def test_sample_prompt_is_the_first_human_turn() -> None:
    sample = Sample("x", "b", "rvos", "v.mp4", [{"from": "human", "value": "Q"}, {"from": "gpt", "value": "A"}])
    assert sample.prompt == "Q"
