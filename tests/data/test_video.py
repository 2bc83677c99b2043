"""Frame sampling against hand-computed indices, and decoding of mp4 / frame-folder / frame-list sources."""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from ufvideo.data import video
from ufvideo.data.video import (
    VideoError,
    VideoInfo,
    clip_frame_range,
    list_frame_files,
    load_clip,
    probe,
    read_frames,
    sample_indices,
    segment_middle_indices,
    write_video,
)

NUM_FRAMES, FPS, HEIGHT, STEP, BOX = 40, 10, 32, 4, 8
WIDTH = STEP * NUM_FRAMES + BOX  # 168: frame k has a white box at x = STEP * k


def coded_frames(count: int = NUM_FRAMES) -> np.ndarray:
    frames = np.full((count, HEIGHT, WIDTH, 3), 30, dtype=np.uint8)
    for k in range(count):
        frames[k, 8 : 8 + BOX, STEP * k : STEP * k + BOX] = 255
    return frames


def frame_id(frame: np.ndarray) -> int:
    """Recover k from the box position, robust to H.264 ringing."""
    columns = np.flatnonzero(frame.mean(axis=(0, 2)) > 60)
    return int(round((columns.mean() - (BOX - 1) / 2) / STEP))


@pytest.fixture(scope="module")
def mp4(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("video") / "coded.mp4"
    write_video(path, coded_frames(), FPS)
    return path


@pytest.fixture(scope="module")
def frame_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """12 PNG frames with unpadded names (natural order matters) and a stray hidden file."""
    folder = tmp_path_factory.mktemp("frames")
    for k, frame in enumerate(coded_frames(12)):
        Image.fromarray(frame).save(folder / f"frame_{k}.png")
    (folder / ".DS_Store").write_bytes(b"junk")
    return folder


# --- sampling -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("total", "samples", "expected"),
    [
        # seg = 63/32; middle k = 0.984375 + 1.96875 k rounds up to 2k+1 while its fraction is >= .5 (k <= 15).
        (64, 32, [2 * k + 1 for k in range(16)] + [2 * k for k in range(16, 32)]),
        (10, 4, [1, 3, 6, 8]),  # seg 2.25: 1.125, 3.375, 5.625, 7.875
        (33, 32, list(range(1, 33))),  # seg 1: middles 0.5 .. 31.5, exact halves round up (not to even)
        (100, 4, [12, 37, 62, 87]),  # seg 24.75: 12.375, 37.125, 61.875, 86.625
        (4, 8, [0, 1, 1, 1, 2, 2, 2, 3]),  # D < N repeats: seg .375, middles .1875, .5625, ... 2.8125
        (3, 4, [0, 1, 1, 2]),  # seg .5: .25, .75, 1.25, 1.75
        (1, 4, [0, 0, 0, 0]),
        (10, 1, [5]),  # 4.5 rounds up
        (2, 1, [1]),
    ],
)
def test_segment_middle_indices_hand_computed(total: int, samples: int, expected: list[int]) -> None:
    assert segment_middle_indices(total, samples) == expected


def test_segment_middle_indices_invariants() -> None:
    for total in range(1, 130):
        for samples in (1, 2, 7, 16, 32):
            got = segment_middle_indices(total, samples)
            assert len(got) == samples and got[0] >= 0 and got[-1] <= total - 1
            assert all(b >= a for a, b in zip(got, got[1:], strict=False))
            if total - 1 >= samples:  # segments of >= 1 frame never share a frame
                assert len(set(got)) == samples


@pytest.mark.parametrize(("total", "samples"), [(0, 4), (5, 0)])
def test_segment_middle_indices_rejects_empty(total: int, samples: int) -> None:
    with pytest.raises(ValueError, match="num_total"):
        segment_middle_indices(total, samples)


INFO = VideoInfo(num_frames=100, fps=10.0, duration=10.0, height=HEIGHT, width=WIDTH)


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        (2.0, 5.0, (19, 49)),  # int(20) - 1, int(50) - 1
        (5.0, 2.0, (19, 49)),  # swapped
        (3.0, 3.0, (29, 39)),  # s == e widens to one second
        (0.0, 0.0, (0, 9)),
        (-1.0, 2.0, (0, 19)),  # negative clamps to 0
        (1.05, 2.0, (9, 19)),  # int() truncates 10.5
        (8.0, 20.0, (79, 99)),  # end clamps to the last frame
        (12.0, 15.0, (99, 99)),  # window past the end: one valid frame, not an empty range
        (0.0, 0.05, (0, 0)),  # int(0.5) - 1 = -1: clamp to frame 0
        (None, 2.0, (0, 19)),
        (2.0, None, (19, 99)),
        (None, None, (0, 99)),
    ],
)
def test_clip_frame_range(start: float | None, end: float | None, expected: tuple[int, int]) -> None:
    assert clip_frame_range(INFO, start, end) == expected


def test_clip_frame_range_fractional_fps() -> None:
    info = VideoInfo(num_frames=300, fps=29.97, duration=300 / 29.97, height=2, width=2)
    assert clip_frame_range(info, 1.0, 2.0) == (28, 58)  # int(29.97) - 1, int(59.94) - 1


def test_sample_indices_with_and_without_clip() -> None:
    assert sample_indices(INFO, 4) == [12, 37, 62, 87]
    # frames 19..49 (31 frames), seg 7.5: 3.75, 11.25, 18.75, 26.25 -> 4, 11, 19, 26, offset by 19
    assert sample_indices(INFO, 4, clip=(2.0, 5.0)) == [23, 30, 38, 45]
    assert sample_indices(INFO, 4, clip=(5.0, 2.0)) == [23, 30, 38, 45]


# --- mp4 ------------------------------------------------------------------------------------------------------


def test_probe_mp4(mp4: Path) -> None:
    assert probe(mp4) == VideoInfo(NUM_FRAMES, float(FPS), NUM_FRAMES / FPS, HEIGHT, WIDTH)


def test_probe_remembers_a_file_until_it_changes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "clip.mp4"
    write_video(path, coded_frames(20), FPS)
    opened: list[str] = []
    real_open = av.open
    monkeypatch.setattr(av, "open", lambda name, *a, **k: opened.append(name) or real_open(name, *a, **k))
    first = probe(path)
    assert probe(path) == first and len(opened) == 1  # the second call reads no header
    write_video(path, coded_frames(30), FPS)  # rewritten: new size, new mtime
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 1))
    before = len(opened)  # writing opened it too
    assert probe(path).num_frames == 30 and len(opened) == before + 1
    path.unlink()
    with pytest.raises(FileNotFoundError, match="video not found"):
        probe(path)


@pytest.mark.parametrize("backend", ["pyav", "auto"])
def test_read_frames_returns_exact_frames(mp4: Path, backend: str) -> None:
    wanted = [0, 39, 5, 5, 1, 20, 38]  # unsorted, repeated, both ends
    frames = read_frames(mp4, wanted, backend=backend)
    assert frames.shape == (len(wanted), HEIGHT, WIDTH, 3) and frames.dtype == np.uint8
    originals = coded_frames()
    for k, frame in zip(wanted, frames, strict=True):
        assert frame_id(frame) == k
        assert np.abs(frame.astype(int) - originals[k]).mean() < 3.0  # lossy H.264, crf 18


def test_read_frames_resizes(mp4: Path) -> None:
    frames = read_frames(mp4, [2, 30], size=(16, 84))
    assert frames.shape == (2, 16, 84, 3)
    assert [frame_id(np.asarray(Image.fromarray(f).resize((WIDTH, HEIGHT)))) for f in frames] == [2, 30]


def test_load_clip_mp4_window(mp4: Path) -> None:
    # frames int(10)-1=9 .. int(20)-1=19 (11 frames), N=8, seg 1.25 -> 1,2,3,4,6,7,8,9, offset by 9
    clip = load_clip(mp4, num_samples=8, clip=(1.0, 2.0))
    assert clip.indices == [10, 11, 12, 13, 15, 16, 17, 18] and clip.num_valid == 8
    assert [frame_id(f) for f in clip.frames] == clip.indices
    assert clip.info.num_frames == NUM_FRAMES


def test_load_clip_pads_short_clip_with_black(mp4: Path) -> None:
    clip = load_clip(mp4, num_samples=64)
    assert clip.frames.shape == (64, HEIGHT, WIDTH, 3)
    assert clip.indices == list(range(NUM_FRAMES)) and clip.num_valid == NUM_FRAMES
    assert [frame_id(f) for f in clip.frames[:NUM_FRAMES]] == clip.indices
    assert not clip.frames[NUM_FRAMES:].any()


def test_load_clip_repeat_mode_keeps_public_repeats(mp4: Path) -> None:
    clip = load_clip(mp4, num_samples=64, short_clip="repeat")
    assert clip.indices == segment_middle_indices(NUM_FRAMES, 64) and clip.num_valid == 64
    assert [frame_id(f) for f in clip.frames] == clip.indices


# --- frame folders and lists ----------------------------------------------------------------------------------


def test_frame_dir_probe_order_and_content(frame_dir: Path) -> None:
    assert [p.name for p in list_frame_files(frame_dir)][:3] == ["frame_0.png", "frame_1.png", "frame_2.png"]
    assert probe(frame_dir) == VideoInfo(12, 3.0, 4.0, HEIGHT, WIDTH)  # public default: 3 fps
    assert probe(frame_dir, fps_hint=6).duration == 2.0
    frames = read_frames(frame_dir, [11, 2, 10])
    np.testing.assert_array_equal(frames, coded_frames(12)[[11, 2, 10]])  # PNG is lossless


def test_frame_dir_clip_in_seconds_uses_3_fps(frame_dir: Path) -> None:
    # at 3 fps [1 s, 3 s] -> frames 2..8 (7 frames); N=4, seg 1.5: .75, 2.25, 3.75, 5.25 -> 1, 2, 4, 5, offset 2
    clip = load_clip(frame_dir, num_samples=4, clip=(1.0, 3.0))
    assert clip.indices == [3, 4, 6, 7]
    assert [frame_id(f) for f in clip.frames] == [3, 4, 6, 7]


def test_frame_list_relative_to_root(frame_dir: Path) -> None:
    names = [f"frame_{k}.png" for k in (0, 3, 6, 9, 11)]  # a list keeps its own order: no sorting
    info = probe(names, root=frame_dir)
    assert (info.num_frames, info.fps) == (5, 3.0)
    clip = load_clip(names, num_samples=2, root=frame_dir)  # seg 2: middles 1, 3
    assert clip.indices == [1, 3]
    assert [frame_id(f) for f in clip.frames] == [3, 9]


def test_frame_list_mixed_sizes_need_size(tmp_path: Path, frame_dir: Path) -> None:
    Image.fromarray(np.zeros((10, 12, 3), np.uint8)).save(tmp_path / "small.png")
    paths = [frame_dir / "frame_0.png", tmp_path / "small.png"]
    with pytest.raises(VideoError, match="differ in size"):
        read_frames(paths, [0, 1])
    assert read_frames(paths, [0, 1], size=(HEIGHT, WIDTH)).shape == (2, HEIGHT, WIDTH, 3)


# --- errors and resources -------------------------------------------------------------------------------------


def test_errors_name_path_and_index(tmp_path: Path, mp4: Path, frame_dir: Path) -> None:
    missing = tmp_path / "nope.mp4"
    with pytest.raises(FileNotFoundError, match="nope.mp4"):
        probe(missing)
    with pytest.raises(FileNotFoundError, match="nope.mp4"):
        read_frames(missing, [0], backend="pyav")
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(b"not a video at all" * 10)
    with pytest.raises(VideoError, match="garbage.mp4"):
        probe(garbage)
    with pytest.raises(IndexError, match=r"coded\.mp4.*index 40"):
        read_frames(mp4, [3, 40], backend="pyav")
    with pytest.raises(IndexError, match="index -1"):
        read_frames(mp4, [-1], backend="pyav")
    with pytest.raises(IndexError, match=rf"{frame_dir.name}.*index 12"):
        read_frames(frame_dir, [12])
    with pytest.raises(FileNotFoundError, match="gone.png"):
        read_frames([frame_dir / "frame_0.png", frame_dir / "gone.png"], [1])
    with pytest.raises(ValueError, match="backend"):
        read_frames(mp4, [0], backend="decord")  # type: ignore[arg-type]
    with pytest.raises(VideoError, match="no image files"):
        probe(tmp_path)  # holds only .mp4 files


@pytest.mark.skipif(video.torchcodec_available(), reason="torchcodec is installed here")
def test_torchcodec_backend_requested_but_missing(mp4: Path) -> None:
    with pytest.raises(ImportError, match="torchcodec"):
        read_frames(mp4, [0], backend="torchcodec")


@pytest.mark.skipif(not video.torchcodec_available(), reason="torchcodec not importable")
def test_torchcodec_agrees_with_pyav(mp4: Path) -> None:
    wanted = [0, 7, 7, 19, 39]
    np.testing.assert_array_equal(
        read_frames(mp4, wanted, backend="torchcodec"), read_frames(mp4, wanted, backend="pyav")
    )


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc")
def test_repeated_decoding_leaks_no_file_descriptors(tmp_path: Path, mp4: Path, frame_dir: Path) -> None:
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(b"\x00" * 4096)
    load_clip(mp4, num_samples=4)  # warm-up: lazy imports may open files once
    before = len(os.listdir("/proc/self/fd"))
    for _ in range(40):
        load_clip(mp4, num_samples=4, backend="pyav")
        load_clip(frame_dir, num_samples=4)
        with pytest.raises(IndexError):
            read_frames(mp4, [41], backend="pyav")
        with pytest.raises(VideoError):
            read_frames(garbage, [0], backend="pyav")
    assert len(os.listdir("/proc/self/fd")) == before


def _encode(path: Path, frames: np.ndarray, pts: list[int], time_base: Fraction, **options: str) -> None:
    """Frames with explicit timestamps (for variable frame rates) and x264 options (B-frames, long GOPs)."""
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        stream.time_base = time_base
        stream.options = {"crf": "18", **options}
        for frame, stamp in zip(frames, pts, strict=True):
            picture = av.VideoFrame.from_ndarray(frame, format="rgb24")
            picture.pts, picture.time_base = stamp, time_base
            for packet in stream.encode(picture):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


@pytest.mark.parametrize("kind", ["fixture", "b_frames_long_gop", "variable_rate"])
def test_keyframe_seek_gives_the_sequential_frames(tmp_path: Path, mp4: Path, kind: str) -> None:
    # keyframes every 10 (fixture) or 25 frames: 17 and 31 are reached by seeking, 18 and 39 by decoding on
    path = mp4
    if kind == "b_frames_long_gop":
        path = tmp_path / "b.mp4"
        _encode(path, coded_frames(), list(range(NUM_FRAMES)), Fraction(1, FPS), bf="3", g="25")
    elif kind == "variable_rate":  # timestamps off any constant grid: decoded sequentially instead
        path = tmp_path / "vfr.mp4"
        stamps = [k * 100 + (37 if k % 3 == 1 else 0) for k in range(NUM_FRAMES)]
        _encode(path, coded_frames(), stamps, Fraction(1, 1000), bf="0", g="10")
    wanted = {0, 5, 17, 18, 31, 39}
    sequential = video._decode_pyav(path, wanted)
    seeking = video._decode_pyav_seek(path, wanted)
    assert sorted(seeking) == sorted(wanted)
    for k in wanted:
        assert frame_id(seeking[k]) == k
        np.testing.assert_array_equal(seeking[k], sequential[k])
    with pytest.raises(IndexError, match="index 40"):
        video._decode_pyav_seek(path, {3, 40})
