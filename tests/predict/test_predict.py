"""`ufvideo predict`: a registered champion answers a question on a video file and a JSONL batch, writing
prediction.json, mask PNGs and an overlay video; bad requests fail in one line naming file, record and field."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ufvideo.cli import main
from ufvideo.config import ConfigError
from ufvideo.data.video import probe, read_frames, write_video
from ufvideo.eval.types import Prediction
from ufvideo.predict import PredictConfig
from ufvideo.predict.output import readable, write_prediction
from ufvideo.predict.request import PredictRequest, Region, RequestError, read_requests
from ufvideo.predict.run import check, to_sample

H, W = 48, 64


@pytest.fixture
def video(tmp_path: Path) -> Path:
    frames = np.zeros((12, H, W, 3), dtype=np.uint8)
    for t in range(12):
        frames[t, 10:26, 4 * t : 4 * t + 16] = (220, 30, 30)  # a red square moving right
    path = tmp_path / "clip.mp4"
    write_video(path, frames, fps=4)
    return path


@pytest.fixture
def mask_png(tmp_path: Path) -> Path:
    mask = np.zeros((H, W), dtype=np.uint8)
    mask[10:26, 12:28] = 255
    path = tmp_path / "square.png"
    Image.fromarray(mask).save(path)
    return path


@pytest.fixture
def checkpoint(tmp_path: Path) -> Path:
    from ufvideo.checkpoint import write_info
    from ufvideo.model import ufvideo_tiny

    model, processor = ufvideo_tiny(seed=0)
    local = tmp_path / "ckpt"
    model.save_pretrained(local, processor=processor)
    write_info(local, profile="tiny", stage=2, data_digest="synthetic-digest")
    return local


def _champion(tmp_path: Path, checkpoint: Path) -> str:
    from ufvideo.registry import versions
    from ufvideo.registry.versions import CANDIDATE

    metrics = tmp_path / "metrics.json"
    metrics.write_text(json.dumps({"benchmark": "synthetic", "metrics": {"qa_accuracy": 10.0}}))
    name = f"ufvideo-predict-{uuid.uuid4().hex[:8]}"
    versions.register(str(checkpoint), [str(metrics)], name=name)
    lenient = tmp_path / "lenient.yaml"  # an untrained tiny model: the gate's mechanism, not its thresholds
    lenient.write_text("tolerance: 100.0\nmin_metrics: 1\nbenchmarks: {}\n")
    assert versions.promote(name, version=CANDIDATE, policy=str(lenient)).decision.passed
    return f"models:/{name}@champion"


def _decoded_frames(path: Path) -> np.ndarray:
    info = probe(path)
    return read_frames(path, list(range(info.num_frames)))


def test_champion_answers_on_a_video_and_a_batch(
    tmp_path: Path, video: Path, mask_png: Path, checkpoint: Path, mlflow_tracking: str, capsys
) -> None:
    model = _champion(tmp_path, checkpoint)
    out = tmp_path / "out"
    argv = ["predict", "--model", model, "--video", str(video), "--out", str(out), "max_new_tokens=6"]
    assert main([*argv, "--prompt", "What is [<region>] doing?", "--region", f"{mask_png}@3"]) == 0
    printed = capsys.readouterr().out
    doc = json.loads((out / "prediction.json").read_text())
    assert doc["model"]["reference"] == model and doc["model"]["checkpoint"] == str(checkpoint.resolve())
    assert f"[request] {doc['answer']}" in printed and "spans:" in printed
    assert doc["prompt"] == "<video>\nWhat is [<region>] doing?"
    assert len(doc["frames"]) == 8 and doc["frames"] == sorted(doc["frames"])
    assert doc["duration"] == pytest.approx(3.0) and doc["frame_times"][1] == pytest.approx(doc["frames"][1] / 4)
    assert all(0.0 <= s <= e <= 3.0 for s, e in doc["spans"])
    assert len(doc["masks"]) == doc["text"].count("[SEG]")
    for track in doc["masks"]:
        assert [np.asarray(Image.open(out / f)).shape for f in track["files"]] == [(H, W)] * 8
    overlay = _decoded_frames(out / doc["overlay"])
    assert len(overlay) == 8 and overlay.shape[2] >= 320  # scaled up to be seen

    requests = tmp_path / "batch" / "requests.jsonl"
    requests.parent.mkdir()
    (requests.parent / "m.png").write_bytes(mask_png.read_bytes())
    lines = [
        {"id": "when", "video": str(video), "prompt": "When does the red square move?"},
        {"id": "what/1", "video": str(video), "prompt": "Describe [<region>].", "regions": ["m.png@0"]},
    ]
    requests.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    batch = tmp_path / "batch_out"
    assert (
        main(["predict", "--model", model, "--requests", str(requests), "--out", str(batch), "max_new_tokens=4"]) == 0
    )
    rows = [json.loads(line) for line in (batch / "predictions.jsonl").read_text().splitlines()]
    assert [r["id"] for r in rows] == ["when", "what/1"]
    assert json.loads((batch / "what_1" / "prediction.json").read_text())["id"] == "what/1"
    assert (batch / "when" / "overlay.mp4").is_file()


def test_prediction_files_hold_one_png_per_frame_per_seg_and_a_coloured_overlay(
    tmp_path: Path, video: Path, mask_png: Path
) -> None:
    request = PredictRequest(str(video), "Segment [<region>] please.", [Region(str(mask_png), 3)])
    sample = to_sample(check(request), 8, "multi")
    track = np.zeros((8, H, W), dtype=bool)
    track[:, 30:40, 40:60] = True
    prediction = Prediction(id=sample.id, text="It moves {<TEMP-000><TEMP-099>}. [SEG]<|im_end|>", spans=[(0.0, 3.0)])
    other = np.zeros((8, H, W), dtype=bool)
    other[:, 0:8, 0:10] = True
    prediction.masks = [track, other]
    doc = write_prediction(tmp_path / "p", sample, prediction, {"reference": "x"})
    assert doc["answer"] == "It moves {0.0s3.0s}. [SEG]"
    assert [len(t["files"]) for t in doc["masks"]] == [8, 8] and doc["masks"][1]["area"] == [80] * 8
    png = np.asarray(Image.open(tmp_path / "p" / doc["masks"][0]["files"][2]))
    assert png.dtype == np.uint8 and set(np.unique(png)) == {0, 255} and (png == 255).sum() == 200
    frames = _decoded_frames(tmp_path / "p" / "overlay.mp4")
    factor = 5  # 64 px wide -> 320
    inside = frames[0, 35 * factor, 50 * factor].astype(int)
    assert inside[0] > 80 and inside[2] > 60 and inside[1] < 30, inside  # the first [SEG]'s magenta on black
    second = frames[0, 4 * factor, 5 * factor].astype(int)
    assert second[0] < 30 and second[1] > 60 and second[2] > 80, second  # the second [SEG]'s cyan
    assert frames.shape[1] > H * factor  # the time line below the frame


def test_bad_requests_fail_before_the_model_loads(tmp_path: Path, video: Path, mask_png: Path, capsys) -> None:
    with pytest.raises(RequestError, match=r"command line: field 'video': .*nothere.mp4: no such video"):
        check(PredictRequest(str(tmp_path / "nothere.mp4"), "hi"))
    with pytest.raises(RequestError, match=r"field 'prompt': 1 region\(s\) given but the prompt has no <region>"):
        check(PredictRequest(str(video), "What is it?", [Region(str(mask_png), 0)]))
    small = tmp_path / "small.png"
    Image.fromarray(np.full((8, 8), 255, np.uint8)).save(small)
    with pytest.raises(RequestError, match=r"field 'regions\[0\]': .*small.png: mask is 8x8 \(WxH\) but the video's"):
        check(PredictRequest(str(video), "[<region>]?", [Region(str(small), 0)]))
    with pytest.raises(RequestError, match=r"field 'regions\[0\]': frame 40 is outside the video's 12 frames"):
        check(PredictRequest(str(video), "[<region>]?", [Region(str(mask_png), 40)]))

    batch = tmp_path / "r.jsonl"
    batch.write_text(json.dumps({"id": "a", "video": "clip.mp4", "prompt": "ok"}) + "\n" + '{"id": "b", "video": 3}\n')
    with pytest.raises(RequestError, match=rf"{batch}:2 \(id b\): field 'video': required"):
        read_requests(batch)
    # The CLI: one line, exit 2, nothing loaded (the model path does not even exist).
    argv = ["predict", "--model", str(tmp_path / "no-ckpt"), "--video", str(video), "--prompt", "What?"]
    assert main([*argv, "--region", f"{mask_png}@1", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("ufvideo: error: command line: field 'prompt':") and "\n" not in err
    assert main(["predict", "--model", "m", "--video", str(video), "--prompt", "x", "--region", "m.png"]) == 2
    assert "expected MASK.png@FRAME" in capsys.readouterr().err


def test_frame_folders_are_videos_too(tmp_path: Path, video: Path) -> None:
    folder = tmp_path / "frames"
    folder.mkdir()
    for i, frame in enumerate(read_frames(video, list(range(12)))):
        Image.fromarray(frame).save(folder / f"{i + 1:05d}.jpg")
    sample = to_sample(check(PredictRequest(str(folder), "hi", fps=4.0)), 8, "multi")
    assert sample.meta["duration"] == pytest.approx(3.0) and len(sample.sam_frames) == 8
    assert readable("{<TEMP-033><TEMP-066>}", sample.meta["duration"]) == "{1.0s2.0s}"


def test_config_needs_one_form() -> None:
    with pytest.raises(ConfigError, match="either --video and --prompt, or --requests"):
        PredictConfig(model="m", video="v.mp4", prompt="p", requests="r.jsonl")
    with pytest.raises(ConfigError, match="model is required"):
        PredictConfig(video="v.mp4", prompt="p")


def test_an_adapter_checkpoint_answers_as_its_merged_checkpoint(tmp_path: Path, video: Path, capsys) -> None:
    """`--model` may name a LoRA adapter checkpoint: it loads over its base (the one loader of every face)."""
    from tests.adapters import adapter_checkpoint, base_checkpoint
    from ufvideo.model.merge import MergeConfig
    from ufvideo.model.merge import run as merge

    adapter = adapter_checkpoint(base_checkpoint(tmp_path / "base"), tmp_path / "adapter")
    merged = tmp_path / "merged"
    merge(MergeConfig(adapter=str(adapter), out=str(merged)))
    answers = []
    for name, model in (("a", adapter), ("m", merged)):
        argv = ["predict", "--model", str(model), "--video", str(video), "--out", str(tmp_path / name)]
        assert main([*argv, "--prompt", "What happens? Please segment it.", "max_new_tokens=6"]) == 0
        doc = json.loads((tmp_path / name / "prediction.json").read_text())
        pngs = [(tmp_path / name / f).read_bytes() for track in doc["masks"] for f in track["files"]]
        answers.append((doc["text"], doc["spans"], pngs))
    capsys.readouterr()
    assert answers[0] == answers[1]
