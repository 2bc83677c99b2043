"""The UFVideo pyfunc: schema and pins, and a tiny checkpoint on S3 served through `models:/NAME@champion`."""

from __future__ import annotations

import json

import mlflow
import numpy as np
import pytest
import torch

from ufvideo import storage
from ufvideo.checkpoint import write_info
from ufvideo.data.masks import decode_rle, encode_rle
from ufvideo.data.video import load_clip
from ufvideo.model import load_pretrained
from ufvideo.model.generation import Generation
from ufvideo.registry import pyfunc, versions
from ufvideo.registry.versions import CANDIDATE, CHAMPION


def test_requirements_are_pinned_and_exclude_torchvision():
    pins = pyfunc.pip_requirements()
    names = [pin.split("==")[0] for pin in pins]
    assert all("==" in pin and "+" not in pin for pin in pins), pins
    assert {"torch", "transformers", "peft", "pycocotools", "boto3"} <= set(names) and "torchvision" not in names


def test_signature_describes_rows_and_example_fits_it():
    sig = pyfunc.signature()
    assert sig.inputs.input_names() == ["video", "prompt", "regions"]
    assert [spec.required for spec in sig.inputs.inputs] == [True, True, False]
    assert sig.outputs.input_names() == ["text", "spans", "masks", "frames", "error"]
    assert {p.name: p.default for p in sig.params} == {"max_new_tokens": 64, "mask_mode": "per_frame"}
    rows = pyfunc.input_example()
    assert set(rows[0]) == {"video", "prompt"}
    region = json.loads(rows[1]["regions"])[0]["0"]
    assert decode_rle(region).sum() == 4 and rows[1]["prompt"].count("<region>") == 1


def test_answer_serialises_masks_as_rle():
    track = torch.zeros(2, 6, 8, dtype=torch.bool)
    track[1, 2:4, 3:5] = True
    out = pyfunc._answer(Generation("It is [SEG].", [1, 2], [(0.5, 1.25)], [track]), [0, 7])
    assert out["text"] == "It is [SEG]." and out["spans"] == [[0.5, 1.25]] and out["frames"] == [0, 7]
    assert out["error"] is None
    assert [decode_rle(rle).sum() for rle in out["masks"][0]] == [0, 4]
    json.dumps(out)  # serialisable as the scoring server returns it


def test_rows_accept_frames_lists_and_single_dicts():
    import pandas as pd

    frame = pd.DataFrame([{"video": "a.mp4", "prompt": "hi", "regions": None}])
    assert pyfunc._rows(frame) == [{"video": "a.mp4", "prompt": "hi", "regions": None}]
    assert pyfunc._rows({"video": "a.mp4", "prompt": "hi"}) == [{"video": "a.mp4", "prompt": "hi"}]
    with pytest.raises(TypeError, match="expected rows"):
        pyfunc._rows("a.mp4")


@pytest.fixture
def tiny_checkpoint_on_s3(tmp_path, s3_bucket):
    from ufvideo.model import ufvideo_tiny

    model, processor = ufvideo_tiny(seed=0)
    local = tmp_path / "ckpt"
    model.save_pretrained(local, processor=processor)
    write_info(local, profile="tiny", stage=2, data_digest="synthetic-digest")
    uri = f"{s3_bucket}/checkpoints/run-1"
    storage.copy_tree(local, uri)
    return uri, local


@pytest.fixture
def video(tmp_path):
    from ufvideo.data.video import write_video

    frames = np.zeros((12, 48, 64, 3), dtype=np.uint8)
    for t in range(12):
        frames[t, 10:26, 4 * t : 4 * t + 16] = (220, 30, 30)  # a red square moving right
    path = tmp_path / "clip.mp4"
    write_video(path, frames, fps=4)
    return str(path)


def test_rows_are_checked_before_the_model_runs(tmp_path, video):
    with pytest.raises(ValueError, match="row 0: field 'prompt' is required"):
        pyfunc._prepare({"video": video}, 0, 8, tmp_path)
    beyond = json.dumps([{"40": encode_rle(np.ones((48, 64), bool))}])
    with pytest.raises(ValueError, match="row 1: region frame 40 beyond the video's 12 frames"):
        pyfunc._prepare({"video": video, "prompt": "[<region>]?", "regions": beyond}, 1, 8, tmp_path)
    wrong_size = json.dumps([{"2": encode_rle(np.ones((8, 8), bool))}])
    with pytest.raises(ValueError, match=r"RLE size \[8, 8\] disagrees with the frame size \[48, 64\]"):
        pyfunc._prepare({"video": video, "prompt": "[<region>]?", "regions": wrong_size}, 2, 8, tmp_path)
    ready = pyfunc._prepare({"video": video, "prompt": "Describe it.", "regions": float("nan")}, 3, 8, tmp_path)
    assert ready["prompt"] == "<video>\nDescribe it." and ready["regions"] is None and ready["clip"].num_valid == 8


def test_champion_loads_from_s3_and_predicts(tmp_path, mlflow_s3_tracking, registry_name, tiny_checkpoint_on_s3, video):
    uri, local = tiny_checkpoint_on_s3
    metrics = tmp_path / "eval" / "metrics.json"
    metrics.parent.mkdir()
    metrics.write_text(json.dumps({"benchmark": "synthetic", "metrics": {"accuracy": 12.5}}))
    reg = versions.register(uri, [str(metrics)], name=registry_name)
    lenient = tmp_path / "lenient.yaml"  # an untrained tiny model: the gate's mechanism, not its thresholds
    lenient.write_text("tolerance: 100.0\nmin_metrics: 1\nbenchmarks: {}\n")
    assert versions.promote(registry_name, version=CANDIDATE, policy=str(lenient)).decision.passed

    loaded = mlflow.pyfunc.load_model(f"models:/{registry_name}@{CHAMPION}")
    region = {"3": encode_rle(np.pad(np.ones((16, 16), bool), ((10, 22), (12, 36))))}
    rows = [
        {"video": video, "prompt": "When does the red square move?"},
        {"video": video, "prompt": "object_1: [<region>]. What is object_1 doing?", "regions": json.dumps([region])},
    ]
    out = loaded.predict(rows, params={"max_new_tokens": 6})
    clip = load_clip(video, num_samples=8)  # 12 frames sampled down to the tiny model's 8
    assert len(out) == 2
    for row in out:
        assert isinstance(row["text"], str) and row["text"]
        assert row["frames"] == clip.indices and len(row["frames"]) == 8
        assert all(0.0 <= s <= e <= 3.0 for s, e in row["spans"])
        assert all(decode_rle(rle).shape == (48, 64) for track in row["masks"] for rle in track)
    json.dumps(out)

    # Same answer as the model called directly on the same frames: the pyfunc adds wiring, not behaviour.
    model, processor = load_pretrained(local)
    inputs = processor(
        [[{"from": "human", "value": "<video>\nWhen does the red square move?"}]],
        [clip.frames],
        sam_frames=[clip.frames],
        add_generation_prompt=True,
    )
    expected = model.generate(inputs, processor, max_new_tokens=6, durations=[clip.info.duration])[0]
    assert out[0]["text"] == expected.text
    # The weights came from S3 into the cache once, under the checkpoint digest.
    from ufvideo.checkpoint import cache_dir

    assert [p.name for p in cache_dir().iterdir()] == [reg.checkpoint_digest[:32]]


def test_one_bad_row_gets_an_error_and_the_others_their_answers(tmp_path, video):
    """A served batch used to fail whole on one unreadable row; now that row carries `error` and nothing else."""
    from ufvideo.model import ufvideo_tiny

    model = pyfunc.UFVideoModel()
    model.model, model.processor = ufvideo_tiny(seed=0)
    wrong_size = json.dumps([{"2": encode_rle(np.ones((8, 8), bool))}])
    rows = [
        {"video": video, "prompt": "When does the red square move?"},
        {"video": str(tmp_path / "missing.mp4"), "prompt": "Anything?"},
        {"video": video, "prompt": "What is [<region>] doing?", "regions": wrong_size},
        {"video": video, "prompt": "What is [<region>] doing?"},
        {"video": video},
        {"video": video, "prompt": "What is it?", "regions": None},
        {"video": video, "prompt": "[<region>]?", "regions": "[{"},
    ]
    out = model.predict(None, rows, params={"max_new_tokens": 3})
    assert len(out) == len(rows)
    good = [0, 5]
    for i in good:
        assert out[i]["error"] is None and out[i]["text"] and len(out[i]["frames"]) == 8
    assert "missing.mp4" in out[1]["error"]
    assert "row 2" in out[2]["error"] and "disagrees with the frame size" in out[2]["error"]
    assert out[3]["error"] == "row 3: the prompt has 1 <region> but field 'regions' is empty"
    assert out[4]["error"] == "row 4: field 'prompt' is required"
    assert out[6]["error"].startswith("row 6: field 'regions': invalid JSON")
    for i in (1, 2, 3, 4, 6):
        assert out[i]["text"] == "" and out[i]["masks"] == [] and out[i]["frames"] == []
    alone = model.predict(None, [rows[0]], params={"max_new_tokens": 3})  # the bad rows changed nothing
    assert alone[0]["text"] == out[0]["text"]
    json.dumps(out)
