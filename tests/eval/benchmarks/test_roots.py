"""`--data-root` is the benchmark's folder as downloaded (any name) or a parent holding it under its customary name;
a miss names the files looked for. MVBench runs on the task files present and reports its coverage."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.eval.benchmarks.helpers import dump, frames, mevis_fixture, text
from tests.eval.benchmarks.test_charades import _json_fixture as charades_fixture
from tests.eval.benchmarks.test_mvbench import CUP
from tests.eval.benchmarks.test_mvbench import _fixture as mvbench_fixture
from tests.eval.benchmarks.test_revos import _fixture as revos_fixture
from tests.eval.benchmarks.test_videorefer import _d_fixture, _q_fixture
from ufvideo.eval.benchmarks import get_benchmark
from ufvideo.eval.benchmarks.mvbench import mvbench_parse, mvbench_score
from ufvideo.eval.benchmarks.roots import DataRootError
from ufvideo.eval.registry import ScoreContext


def _ytvos(root: Path, folder: str = "ref-youtube-vos") -> Path:
    base = root / folder
    frames(base / "valid" / "JPEGImages" / "003234408d", ["00000", "00005"])
    meta = {"003234408d": {"expressions": {"0": {"exp": "a penguin"}}, "frames": ["00000", "00005"]}}
    dump(base / "meta_expressions" / "valid" / "meta_expressions.json", {"videos": meta})
    return root


def _pixhqa(root: Path) -> Path:
    frames(root / "VideoRefer-Bench" / "Panda-70M-part", ["clip"])  # stands in for the video folder
    record = {
        "id": 1,
        "video": "clip.mp4",
        "frame_idx": [0],
        "annotation": [{"0": None}],
        "conversations": [[{"from": "human", "value": "<video>\nWhat?"}, {"from": "gpt", "value": "A dog."}]],
    }
    dump(root / "UFVideo-Bench" / "PixHQA.json", [record])
    return root


# (benchmark, fixture writer, the folder the writer creates under the parent)
LAYOUTS: list[tuple[str, Callable[[Path], Path], str]] = [
    ("mvbench", mvbench_fixture, "mvbench"),
    ("charades_sta", charades_fixture, "charades"),
    ("mevis_valid_u", mevis_fixture, "mevis"),
    ("revos", revos_fixture, "ReVOS"),
    ("ref_youtube_vos", _ytvos, "ref-youtube-vos"),
    ("videorefer_q_single", _q_fixture, "VideoRefer-Bench"),
    ("videorefer_d_single", _d_fixture, "VideoRefer-Bench"),
    ("pixhqa", _pixhqa, "UFVideo-Bench"),
]


@pytest.mark.parametrize(("name", "write", "folder"), LAYOUTS, ids=[layout[0] for layout in LAYOUTS])
def test_data_root_is_the_benchmark_folder_or_its_parent(
    tmp_path: Path, name: str, write: Callable[[Path], Path], folder: str
) -> None:
    bench = get_benchmark(name)
    parent = write(tmp_path / "parent")
    from_parent = [s.id for s in bench.samples(parent)]
    assert from_parent

    itself = [s.id for s in bench.samples(parent / folder)]  # pointing at the benchmark folder
    assert itself == from_parent
    moved = tmp_path / "downloads" / "my copy (2)"  # any name, anywhere
    moved.parent.mkdir()
    shutil.copytree(parent / folder, moved)
    if name == "pixhqa":  # its videos live beside it, in VideoRefer-Bench
        shutil.copytree(parent / "VideoRefer-Bench", moved.parent / "VideoRefer-Bench")
    samples = list(bench.samples(moved))
    assert [s.id for s in samples] == from_parent
    videos = [s.video if isinstance(s.video, str) else s.video[0] for s in samples]
    assert all(str(moved.parent) in v for v in videos), videos

    if name == "mevis_valid_u":  # or at the split folder inside it
        assert [s.id for s in bench.samples(parent / folder / "valid_u")] == from_parent
    renamed = tmp_path / "cased"  # the customary name in another letter case, under a parent
    shutil.copytree(parent / folder, renamed / folder.upper())
    assert [s.id for s in bench.samples(renamed)] == from_parent


def test_a_miss_lists_the_files_looked_for(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataRootError) as info:
        list(get_benchmark("charades_sta").samples(tmp_path / "empty"))
    message = str(info.value)
    for looked in ("empty/test.json", "empty/charades_sta_test.txt", "empty/charades/test.json"):
        assert looked in message
    assert "Point --data-root at the Charades-STA folder" in message
    with pytest.raises(DataRootError, match="no such folder"):
        list(get_benchmark("revos").samples(tmp_path / "nothere"))


def test_mvbench_runs_on_the_task_files_present(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    folder = tmp_path / "MVBench-download"
    item = {"video": "a.mp4", "question": "Q?", "candidates": CUP, "answer": CUP[0], "start": 0.0, "end": 1.0}
    dump(folder / "json" / "action_sequence.json", [item, {**item, "answer": CUP[1]}])
    dump(folder / "json" / "object_shuffle.json", [{k: v for k, v in item.items() if k not in ("start", "end")}])
    with caplog.at_level(logging.WARNING):
        samples = list(get_benchmark("mvbench").samples(folder))
    assert len(samples) == 3
    warning = next(r.getMessage() for r in caplog.records if "MVBench" in r.getMessage())
    assert "18 of 20 task files missing" in warning and "action_prediction.json" in warning
    rows = [mvbench_parse(text(s.id, "(A)"), s) for s in samples]
    scores = mvbench_score(rows, ScoreContext())
    assert scores.metrics["tasks_covered"] == 2.0 and scores.metrics["accuracy"] == pytest.approx(200 / 3)
    coverage = next(n for n in scores.notes if n.startswith("coverage"))
    assert "2 of 20 tasks" in coverage and "object_existence" in coverage
