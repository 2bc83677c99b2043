"""UFVideoProcessor: placeholder expansion, label masking, pixels, region and target tensors, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.model.conftest import H, W, box, video
from ufvideo.model.processing import IGNORE_INDEX


def test_batch_shapes_and_placeholder_counts(tiny, samples) -> None:
    model, processor = tiny
    cfg = model.config
    batch = processor(**samples)
    assert batch["pixel_values"].shape == (2, 8, 3, 64, 64)
    n_video = cfg.num_video_tokens()
    assert ((batch["input_ids"] == cfg.video_token_id).sum(1) == n_video).all()
    assert (batch["input_ids"] == cfg.region_token_id).sum().item() == 4 + 1 + 2
    assert batch["region_masks"].shape == (8, cfg.patch_grid**2)
    assert batch["region_object_ids"].tolist() == [0, 0, 0, 0, 0, 1, 2, 2]
    assert batch["sam_frame_counts"].tolist() == [3, 3]  # union of target frames per sample
    assert batch["sam_pixel_values"].shape == (6, 3, 128, 128)
    assert batch["sam_sizes"].tolist() == [[H, W], [H, W]]
    assert [m.shape for m in batch["target_masks"]] == [(1, 3, H, W), (2, 3, H, W)]
    assert batch["target_valid"][0].tolist() == [[True, True, False]]  # frame 5 is null
    assert batch["target_valid"][1].tolist() == [[True, True, False], [True, False, True]]
    lengths = batch["attention_mask"].sum(1)
    assert (batch["input_ids"][0, lengths[0] :] == processor.pad_token_id).all()


def test_labels_cover_exactly_the_assistant_answers(tiny, samples) -> None:
    _, processor = tiny
    batch = processor(**samples)
    tok = processor.tokenizer
    for b, conv in enumerate(samples["conversations"]):
        supervised = batch["labels"][b][batch["labels"][b] != IGNORE_INDEX].tolist()
        assert tok.decode(supervised, skip_special_tokens=False) == conv[1]["value"] + "<|im_end|>\n"
    ids = batch["input_ids"]
    placeholder = (ids == processor.settings.video_token_id) | (ids == processor.region_token_id)
    assert (batch["labels"][placeholder] == IGNORE_INDEX).all()


def test_generation_prompt_drops_the_answer_and_ends_with_the_header(tiny, samples) -> None:
    _, processor = tiny
    batch = processor(
        samples["conversations"], samples["videos"], regions=samples["regions"], add_generation_prompt=True
    )
    assert "labels" not in batch and "target_masks" not in batch
    n = int(batch["attention_mask"][1].sum())
    row = [i for i in batch["input_ids"][1, :n].tolist() if i >= 0]
    text = processor.tokenizer.decode(row, skip_special_tokens=False)
    assert text.endswith("<|im_end|>\n<|im_start|>assistant\n") and "[SEG]" not in text
    assert batch["sam_frame_counts"].tolist() == [0, 0]


def test_video_token_is_moved_to_the_head_and_images_are_tiled(tiny) -> None:
    model, processor = tiny
    image = video(3, frames=1)
    conv = [[{"from": "human", "value": "Describe <video> this."}, {"from": "gpt", "value": "A square."}]]
    batch = processor(conv, [image])
    first = batch["input_ids"][0].tolist()
    start = first.index(model.config.video_token_id)
    head = processor.tokenizer.decode(first[:start], skip_special_tokens=False)
    assert head.endswith("<|im_start|>user\n")
    pixels = batch["pixel_values"][0]
    assert torch.equal(pixels[0], pixels[7])  # one image tiled to every frame
    short = processor(conv, [video(4, frames=5)])["pixel_values"][0]
    assert torch.equal(short[5], torch.full_like(short[5], -1.0))  # padded with black frames


def test_errors_name_the_sample_and_field(tiny, samples) -> None:
    _, processor = tiny
    with pytest.raises(ValueError, match=r"sample 1: 1 '<region>' in the text but 2 regions"):
        bad = [samples["conversations"][0], [{"from": "human", "value": "<region>"}, {"from": "gpt", "value": "x"}]]
        processor(bad, samples["videos"], regions=samples["regions"])
    with pytest.raises(ValueError, match=r"sample 0: 1 '\[SEG\]' in the answers but 2 targets"):
        targets = [samples["targets"][1], samples["targets"][1]]
        processor(samples["conversations"], samples["videos"], regions=samples["regions"], targets=targets)
    with pytest.raises(ValueError, match=r"videos\[0\] has 9 frames"):
        processor(samples["conversations"][:1], [video(0, frames=9)], regions=samples["regions"][:1])
    with pytest.raises(ValueError, match=r"videos\[0\] must be a uint8 array"):
        processor(samples["conversations"][:1], [np.zeros((8, H, W, 3), np.float32)], regions=samples["regions"][:1])
    with pytest.raises(ValueError, match=r"regions\[0\]\[0\]: frame 9 outside"):
        processor(samples["conversations"][:1], samples["videos"][:1], regions=[[{9: box(0, 0, 2, 2)}]])
    with pytest.raises(ValueError, match="region_mode"):
        processor(**samples, region_mode="all")


def test_targets_stay_aligned_when_a_sample_has_none(tiny, samples) -> None:
    model, processor = tiny
    chat = [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello."}]
    conversations = [chat, samples["conversations"][1]]
    regions = [None, samples["regions"][1]]
    batch = processor(conversations, samples["videos"], regions=regions, targets=[None, samples["targets"][1]])
    assert [tuple(m.shape[:2]) for m in batch["target_masks"]] == [(0, 0), (2, 3)]
    assert batch["sam_frame_counts"].tolist() == [0, 3]
    out = model(**batch)
    assert out.pred_masks[0] is None and out.num_masks == 4 and torch.isfinite(out.loss)
