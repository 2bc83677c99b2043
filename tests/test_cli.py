"""The `ufvideo` command as a user runs it: synth -> validate -> curate, error exits, and the demo job."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ufvideo.cli import main
from ufvideo.data.schema import TASKS
from ufvideo.data.shards import read_manifest
from ufvideo.files import sha256_file


def test_synth_validate_curate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    synth = tmp_path / "synth"
    assert main(["data", "synth", "--out", str(synth), "--seed", "1", "--videos", "8", "test_every=4"]) == 0
    assert main(["data", "validate", str(synth)]) == 0
    out = capsys.readouterr().out
    for task in TASKS:
        assert f"    {task:<10} " in out, f"no {task} records reported"
    manifest = read_manifest(synth)
    assert set(manifest["counts"]["by_task"]) == set(TASKS)
    assert set(manifest["counts"]["by_split"]) == {"train", "test"}

    mixture = tmp_path / "mix.yaml"
    mixture.write_text(f"sources:\n  - {{name: synthetic, path: {synth}, split: train, repeat: 2}}\n")
    curated = tmp_path / "curated"
    assert main(["data", "curate", "--config", str(mixture), "--out", str(curated), "seed=7"]) == 0
    result = read_manifest(curated)
    assert result["records"] == 2 * manifest["counts"]["by_split"]["train"]
    assert result["recipe"]["seed"] == 7
    assert main(["data", "validate", str(curated)]) == 0


def test_validate_fails_on_an_invalid_record(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    synth = tmp_path / "synth"
    assert main(["data", "synth", "--out", str(synth), "--videos", "2"]) == 0
    shard = synth / read_manifest(synth)["shards"][0]["path"]
    lines = shard.read_text().splitlines()
    record = json.loads(lines[0])
    record["task"] = "bogus"
    lines[0] = json.dumps(record)
    shard.write_text("\n".join(lines) + "\n")
    capsys.readouterr()
    assert main(["data", "validate", str(synth)]) == 1
    err = capsys.readouterr().err
    assert f"{shard}:1 (id {record['id']}): field 'task': unknown task 'bogus'" in err
    assert "INVALID" in err


def test_config_errors_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["data", "synth", "--out", str(tmp_path / "s"), "colour=red"]) == 2
    assert "colour: unknown key" in capsys.readouterr().err
    assert main(["config", "show", "--section", "curate", "curate.seed=11"]) == 0
    assert json.loads(capsys.readouterr().out)["seed"] == 11


def test_data_steps_are_tracked_under_the_pipeline_run(tmp_path: Path, mlflow_tracking: str) -> None:
    """DVC stages and `ufvideo demo` nest each CLI step under the pipeline run given as MLFLOW_RUN_ID."""
    import mlflow

    from ufvideo import tracking

    synth, curated = tmp_path / "synth", tmp_path / "curated"
    with tracking.pipeline_run("unit-pipeline") as parent:
        assert main(["data", "synth", "--out", str(synth), "--videos", "2"]) == 0
        mixture = tmp_path / "mix.yaml"
        mixture.write_text(f"sources:\n  - {{name: synthetic, path: {synth}}}\n")
        assert main(["data", "curate", "--config", str(mixture), "--out", str(curated)]) == 0
    client = mlflow.MlflowClient(mlflow_tracking)
    runs = client.search_runs(
        client.get_experiment_by_name("ufvideo").experiment_id, f"tags.mlflow.parentRunId = '{parent}'"
    )
    by_name = {run.info.run_name: run for run in runs}
    assert set(by_name) == {"synth", "curate"}
    assert by_name["synth"].data.params["videos"] == "2"
    assert by_name["synth"].data.params["output_digest"] == read_manifest(synth)["digest"]
    assert by_name["curate"].data.metrics["records"] == read_manifest(curated)["records"]
    assert all(run.info.status == "FINISHED" for run in runs)


def test_model_convert_passes_its_arguments_through(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["model", "convert", "--help"])
    assert info.value.code == 0
    assert "--src" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["data", "validate", str(tmp_path), "--bogus"])
    assert "unrecognized arguments: --bogus" in capsys.readouterr().err


def test_eval_command_on_the_synthetic_test_split(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], mlflow_isolated: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ufvideo.checkpoint import write_info
    from ufvideo.data.synthetic import corpus_texts
    from ufvideo.model import ufvideo_tiny

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    synth = tmp_path / "synth"
    assert main(["data", "synth", "--out", str(synth), "--videos", "4", "test_every=2"]) == 0
    model, processor = ufvideo_tiny(corpus=corpus_texts())
    ckpt = tmp_path / "ckpt"
    model.save_pretrained(ckpt, processor=processor)
    write_info(ckpt, profile="tiny", stage=2, data_digest="x")
    out = tmp_path / "eval"
    argv = ["eval", "--checkpoint", str(ckpt), "--data-root", str(synth), "--out", str(out), "max_samples=6"]
    assert main([*argv, "max_new_tokens=8", "report=false"]) == 0
    printed = capsys.readouterr().out
    doc = json.loads((out / "metrics.json").read_text())
    assert doc["benchmark"] == "synthetic" and doc["num_samples"] == 6
    assert f"synthetic: 6 samples -> {out}/metrics.json" in printed
    contract = {"benchmark", "checkpoint", "metrics", "aggregation", "compat", "num_samples", "published", "notes"}
    assert set(doc) - {"controls", "video_dependence"} == contract | {"control", "headline"}


def test_user_errors_exit_2_in_one_line_naming_file_and_line(tmp_path: Path, capsys, monkeypatch) -> None:
    """A truncated shard line in training used to say `Expecting property name ... line 2 column 1`: no file, the
    wrong line, and a traceback."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    synth = tmp_path / "synth"
    assert main(["data", "synth", "--out", str(synth), "--videos", "2", "test_every=0"]) == 0
    manifest = read_manifest(synth)
    entry = next(s for s in manifest["shards"] if s["split"] == "train")
    shard = synth / entry["path"]
    lines = shard.read_text().splitlines()
    shard.write_text("\n".join(lines[:-1]) + "\n" + lines[-1][:20])  # the last line cut short, manifest resealed
    entry["sha256"] = sha256_file(shard)
    (synth / "manifest.json").write_text(json.dumps(manifest))
    capsys.readouterr()
    args = ["train", "--stage", "1", "--data", str(synth), "--out", str(tmp_path / "out"), "max_steps=1"]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err
    assert err.startswith(f"ufvideo: error: {shard}:{len(lines)}: field '<line>': invalid JSON"), err


def test_unreadable_weights_are_a_one_line_error(tmp_path: Path) -> None:
    from ufvideo.checkpoint import CheckpointError
    from ufvideo.model import UFVideoForConditionalGeneration, ufvideo_tiny

    model, processor = ufvideo_tiny(seed=0)
    model.save_pretrained(tmp_path, processor=processor)
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])  # a copy cut short
    with pytest.raises(CheckpointError, match=rf"{weights}: cannot read the weights"):
        UFVideoForConditionalGeneration.from_pretrained(tmp_path)
