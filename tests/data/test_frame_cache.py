"""The loader's frame cache: byte-bounded LRU, identical frames, only missing frames decoded, rewritten files decoded
again, one cache per process and budget, and dataset items equal with and without it."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from ufvideo.config import ConfigError
from ufvideo.data import video
from ufvideo.data.dataset import CuratedDataset, LoadSettings
from ufvideo.data.frame_cache import FrameCache, shared_cache
from ufvideo.data.synthetic import SynthConfig
from ufvideo.data.synthetic import generate as synth
from ufvideo.data.video import read_frames, write_video
from ufvideo.train.args import TrainConfig
from ufvideo.train.resume import run_key


def frames(count: int, shade: int = 0) -> np.ndarray:
    """Frame k has a bright column at x = 4k on a background of `shade`."""
    out = np.full((count, 32, 64, 3), shade, dtype=np.uint8)
    for k in range(count):
        out[k, :, 4 * k : 4 * k + 4] = 255
    return out


def frame(value: int, nbytes: int = 100) -> np.ndarray:
    return np.full(nbytes, value, dtype=np.uint8)


def test_lru_keeps_recent_frames_within_the_byte_budget() -> None:
    cache = FrameCache(max_bytes=300)
    for i in range(3):
        cache.put(("v", 1, 1, i), frame(i))
    assert cache.get(("v", 1, 1, 0)) is not None  # 0 is now the most recent
    cache.put(("v", 1, 1, 3), frame(3))  # evicts 1, the least recently used
    assert cache.get(("v", 1, 1, 1)) is None
    assert [cache.get(("v", 1, 1, i)) is not None for i in (0, 2, 3)] == [True, True, True]
    assert cache.bytes == 300 and len(cache) == 3 and (cache.hits, cache.misses) == (4, 1)
    cache.put(("v", 1, 1, 9), frame(9, nbytes=301))  # larger than the whole budget: not kept, nothing evicted
    assert len(cache) == 3 and cache.get(("v", 1, 1, 9)) is None
    kept = cache.get(("v", 1, 1, 3))
    assert kept is not None and not kept.flags.writeable
    batch = np.zeros((2, 50), dtype=np.uint8)  # a decoder's batch: the cache keeps a copy, not a view into it
    cache.put(("w", 1, 1, 0), batch[0])
    held = cache.get(("w", 1, 1, 0))
    assert held is not None and held.base is None and batch.flags.writeable
    with pytest.raises(ValueError, match=">= 0 bytes"):
        FrameCache(-1)


def test_read_frames_decodes_only_what_the_cache_lacks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "clip.mp4"
    write_video(path, frames(12), 10)
    decoded: list[set[int]] = []
    real = video._decode_pyav_seek
    monkeypatch.setattr(video, "torchcodec_available", lambda: False)
    monkeypatch.setattr(video, "_decode_pyav_seek", lambda p, wanted: decoded.append(set(wanted)) or real(p, wanted))
    cache = FrameCache(1 << 20)
    plain = read_frames(path, [1, 5, 9])
    first = read_frames(path, [1, 5, 9], cache=cache)
    again = read_frames(path, [9, 5, 7, 1], cache=cache)
    np.testing.assert_array_equal(first, plain)
    np.testing.assert_array_equal(again, read_frames(path, [9, 5, 7, 1]))
    assert decoded[1:3] == [{1, 5, 9}, {7}]  # the second call decoded frame 7 alone
    assert again.flags.writeable  # callers get their own stacked copy

    write_video(path, frames(12, shade=90), 10)  # rewritten: other pixels, new mtime
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 1))
    fresh = read_frames(path, [5], cache=cache)
    assert fresh[0, 0, 0, 0] > 60  # the new background, decoded again
    path.unlink()
    with pytest.raises(FileNotFoundError, match="video not found"):
        read_frames(path, [5], cache=cache)


def test_each_process_has_one_cache_per_budget() -> None:
    assert shared_cache(0) is None
    first = shared_cache(2)
    assert first is not None and first.max_bytes == 2 << 20 and shared_cache(2) is first
    other = shared_cache(3)
    assert other is not first and other is not None and other.max_bytes == 3 << 20


def test_dataset_items_are_the_same_with_the_cache(tmp_path: Path) -> None:
    synth(SynthConfig(out=str(tmp_path), videos=2, seed=5))
    plain = CuratedDataset(tmp_path, "train", LoadSettings(num_frames=8, num_sam_frames=4))
    cached = CuratedDataset(tmp_path, "train", LoadSettings(num_frames=8, num_sam_frames=4, frame_cache_mb=64))
    for _ in range(2):  # the second pass reads every frame from the cache
        for index in range(len(plain)):
            a, b = plain[index], cached[index]
            np.testing.assert_array_equal(a["video"], b["video"])
            for key in ("key_frames", "sam_frames"):
                assert (a[key] is None) == (b[key] is None)
                if a[key] is not None:
                    np.testing.assert_array_equal(a[key], b[key])
    cache = shared_cache(64)
    assert cache is not None and cache.hits > cache.misses > 0


def test_the_cache_setting_is_checked_and_does_not_change_the_run_key() -> None:
    with pytest.raises(ConfigError, match="frame_cache_mb"):
        TrainConfig(frame_cache_mb=-1)
    assert run_key(TrainConfig(frame_cache_mb=0), "d") == run_key(TrainConfig(frame_cache_mb=512), "d")
