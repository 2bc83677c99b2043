"""Video probing, decoding and UFVideo's segment-middle frame sampling, plus mp4 writing.

Sources are an mp4/gif path, a directory of frames, or a list of frame paths (optionally relative to a data root).
"""

from __future__ import annotations

import bisect
import functools
import os
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Literal, NamedTuple

import av
import numpy as np
from PIL import Image

from ufvideo.data.frame_cache import FrameCache
from ufvideo.errors import UFVideoError
from ufvideo.files import atomic_write, file_identity

# The public code assumes 3 fps for frame folders (MVBench's TVQA frames) and 25 fps for gifs.
FRAMES_FPS = 3.0
GIF_FPS = 25.0
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp"})

PathLike = str | os.PathLike[str]
VideoSource = PathLike | Sequence[PathLike]
Backend = Literal["auto", "pyav", "torchcodec"]


class VideoError(UFVideoError):
    """A video or frame source that cannot be opened or decoded; the message names the path."""


@dataclass(frozen=True)
class VideoInfo:
    """What sampling needs to know about a source; `duration` is num_frames / fps, as cv2-based evaluators use."""

    num_frames: int
    fps: float
    duration: float
    height: int
    width: int


class Clip(NamedTuple):
    """Frames ready for the model; `indices` holds only the real frames, so padding is `len(frames) - num_valid`."""

    frames: np.ndarray
    indices: list[int]
    info: VideoInfo

    @property
    def num_valid(self) -> int:
        return len(self.indices)


def resolve_source(source: VideoSource, root: PathLike | None = None) -> Path | list[Path]:
    """Join relative paths to `root`, because records store paths relative to a data root."""

    def one(item: PathLike) -> Path:
        path = Path(item)
        return path if root is None or path.is_absolute() else Path(root) / path

    if isinstance(source, (str, os.PathLike)):
        return one(source)
    paths = [one(item) for item in source]
    if not paths:
        raise VideoError("empty list of frame paths")
    return paths


def _natural_key(name: str) -> list[int | str]:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def list_frame_files(directory: PathLike) -> list[Path]:
    """Image files of a frame folder in natural order.

    The public code sorts `os.listdir` lexicographically; for zero-padded names (all known datasets) that is the same
    order, and for `1.jpg, 2.jpg, 10.jpg` natural order is the only one that keeps time order. Hidden and non-image
    files are skipped so a stray `.DS_Store` cannot shift every index.
    """
    folder = Path(directory)
    if not folder.is_dir():
        raise FileNotFoundError(f"frame folder not found: {folder}")
    names = [n for n in os.listdir(folder) if not n.startswith(".") and Path(n).suffix.lower() in IMAGE_SUFFIXES]
    if not names:
        raise VideoError(f"{folder}: no image files in frame folder")
    return [folder / n for n in sorted(names, key=_natural_key)]


def _frame_paths(source: Path | list[Path]) -> list[Path] | None:
    """The frame files of a folder or list source, or None for a video file."""
    if isinstance(source, list):
        return source
    return list_frame_files(source) if source.is_dir() else None


def _open_container(path: Path) -> av.container.InputContainer:
    if not path.is_file():
        raise FileNotFoundError(f"video not found: {path}")
    try:
        container = av.open(str(path))
    except av.FFmpegError as exc:
        raise VideoError(f"{path}: cannot open video ({exc})") from exc
    if not container.streams.video:
        container.close()
        raise VideoError(f"{path}: no video stream")
    return container


def probe(source: VideoSource, fps_hint: float | None = None, root: PathLike | None = None) -> VideoInfo:
    """Frame count, fps, duration and size of a video file, frame folder or frame list.

    Frame sources carry no rate, so `fps_hint` (default 3, the public code's value) supplies it; for a video file the
    container's average rate wins and the hint is only a fallback. Only headers are read, except for containers that
    do not store a frame count, whose packets are counted (no decoding).
    """
    resolved = resolve_source(source, root)
    frames = _frame_paths(resolved)
    if frames is not None:
        first = frames[0]
        if not first.is_file():
            raise FileNotFoundError(f"frame not found: {first}")
        with Image.open(first) as image:
            width, height = image.size
        fps = float(fps_hint or FRAMES_FPS)
        return VideoInfo(len(frames), fps, len(frames) / fps, height, width)
    path = resolved
    assert isinstance(path, Path)
    if not path.is_file():
        raise FileNotFoundError(f"video not found: {path}")
    return _probe_file(*file_identity(path), fps_hint)


@functools.lru_cache(maxsize=8192)
def _probe_file(name: str, size: int, mtime_ns: int, fps_hint: float | None) -> VideoInfo:
    """Header facts of one video file, remembered per (path, size, mtime): a training epoch probes each synthetic
    video once per record (17 records per video in the tiny profile), and opening the container was ~15 % of the
    loader's time. A rewritten file has a new size or mtime, so it is probed again. Errors are not cached."""
    del size, mtime_ns  # part of the cache key only
    path = Path(name)
    with _open_container(path) as container:
        stream = container.streams.video[0]
        count = stream.frames or sum(1 for packet in container.demux(stream) if packet.size)
        rate = stream.average_rate or stream.guessed_rate
        if path.suffix.lower() == ".gif":
            fps = float(fps_hint or GIF_FPS)
        else:
            fps = float(rate) if rate else float(fps_hint or 0.0)
        height, width = stream.codec_context.height, stream.codec_context.width
    if count <= 0 or fps <= 0:
        raise VideoError(f"{path}: cannot determine frame count/fps (frames={count}, fps={fps})")
    return VideoInfo(int(count), fps, count / fps, int(height), int(width))


def segment_middle_indices(num_total: int, num_samples: int) -> list[int]:
    """UFVideo's uniform sampling: the middle of each of `num_samples` equal segments of [0, num_total - 1].

    As in VideoLLaMA2/UFVideo `frame_sample` (uniform mode): segment size (D - 1) / N, middle of segment i is the
    mean of its two ends, rounded to nearest with exact halves going up (their `round(x + 1e-6)`). When D < N the
    result repeats indices; callers decide whether to keep the repeats or pad (see `load_clip`).
    """
    if num_total < 1 or num_samples < 1:
        raise ValueError(f"need num_total >= 1 and num_samples >= 1, got {num_total}, {num_samples}")
    seg = (num_total - 1) / num_samples
    return [int(np.floor((seg * i + seg * (i + 1)) / 2 + 1e-6 + 0.5)) for i in range(num_samples)]


def clip_frame_range(info: VideoInfo, start: float | None, end: float | None) -> tuple[int, int]:
    """Inclusive (first, last) frame indices of a [start, end] seconds window, MVBench-style.

    Follows the public `process_video`: negative bounds become 0, start > end are swapped, start == end widens to
    one second, first = int(start * fps) - 1 and last = int(end * fps) - 1 (truncation, then minus one), clamped
    to the video. A missing bound means the video's own start or end. Where the public code would produce an empty
    range (a window past the end, or ending before frame 0) we clamp to one valid frame instead of crashing.
    """
    if start is not None and end is not None:
        start, end = max(float(start), 0.0), max(float(end), 0.0)
        if start > end:
            start, end = end, start
        elif start == end:
            end = start + 1.0
    last_frame = info.num_frames - 1
    first = 0 if start is None else max(int(start * info.fps) - 1, 0)
    last = last_frame if end is None else min(int(end * info.fps) - 1, last_frame)
    first = min(first, last_frame)
    return first, max(last, first)


def sample_indices(info: VideoInfo, num_samples: int, clip: Sequence[float | None] | None = None) -> list[int]:
    """Absolute indices of `num_samples` segment-middle frames inside the optional [start, end] seconds window."""
    first, last = (0, info.num_frames - 1) if clip is None else clip_frame_range(info, clip[0], clip[1])
    return [first + k for k in segment_middle_indices(last - first + 1, num_samples)]


@functools.cache
def torchcodec_available() -> bool:
    """torchcodec imports only where FFmpeg's shared libraries exist, so a failed import means PyAV."""
    try:
        import torchcodec.decoders  # noqa: F401
    except Exception:  # ImportError, or RuntimeError/OSError when libav* cannot be loaded
        return False
    return True


def _resize(frame: np.ndarray, size: tuple[int, int] | None) -> np.ndarray:
    if size is None or frame.shape[:2] == tuple(size):
        return frame
    height, width = size
    return np.asarray(Image.fromarray(frame).resize((width, height), Image.Resampling.BILINEAR))


def _check_range(path: Path, indices: Sequence[int], count: int | None) -> None:
    bad = [i for i in indices if i < 0 or (count is not None and i >= count)]
    if bad:
        limit = "?" if count is None else count
        raise IndexError(f"{path}: frame index {bad[0]} out of range (video has {limit} frames)")


def _decode_pyav(path: Path, wanted: set[int], threads: int | None = None) -> dict[int, np.ndarray]:
    """Decode in presentation order, stopping after the last wanted frame; the container always closes.

    `threads` None lets FFmpeg pick; benchmarks pass 1 to measure per core.
    """
    _check_range(path, sorted(wanted), None)
    last, found, decoded = max(wanted), {}, 0
    with _open_container(path) as container:
        stream = container.streams.video[0]
        _threads(stream, threads)
        try:
            for frame in container.decode(stream):
                if decoded in wanted:
                    found[decoded] = frame.to_ndarray(format="rgb24")
                decoded += 1
                if decoded > last:
                    break
        except av.FFmpegError as exc:
            raise VideoError(f"{path}: decoding failed after {decoded} frames ({exc})") from exc
    return _all_found(path, wanted, found, f"video has {decoded} frames")


def _threads(stream: av.video.stream.VideoStream, threads: int | None) -> None:
    if threads is None:
        stream.thread_type = "AUTO"
    else:
        stream.thread_count = threads


class _NotConstantRate(Exception):
    """A frame's timestamp is off the constant-rate grid: indices cannot be derived from timestamps."""


def _decode_pyav_seek(path: Path, wanted: set[int], threads: int | None = None) -> dict[int, np.ndarray]:
    """The same frames as `_decode_pyav`, jumping to the keyframe before a wanted frame whenever that keyframe
    lies beyond what was decoded so far (keyframes come from the packet index: demuxing, no decoding).

    Frame i is the frame whose timestamp is start + i / fps; every timestamp is checked to lie on that grid, and a
    video whose timestamps do not (variable frame rate, edit lists) is decoded sequentially instead, so the result
    always equals sequential decoding.
    """
    _check_range(path, sorted(wanted), None)
    with _open_container(path) as container:
        stream = container.streams.video[0]
        _threads(stream, threads)
        rate, base = stream.average_rate, stream.time_base
        if not rate or not base:
            return _decode_pyav(path, wanted, threads)
        step = 1 / (Fraction(rate) * Fraction(base))  # timestamp units per frame
        origin = stream.start_time or 0
        found: dict[int, np.ndarray] = {}
        frames: Iterator[av.VideoFrame] | None = None
        current = -1
        try:
            keys = _keyframes(container, stream, origin, step)
            for target in sorted(wanted):
                key = keys[max(0, bisect.bisect_right(keys, target) - 1)] if keys else 0
                if frames is None or key > current:
                    container.seek(int(origin + key * step), stream=stream, backward=True, any_frame=False)
                    frames = container.decode(stream)
                for frame in frames:
                    current = _grid_index(frame.pts, origin, step)
                    if current in wanted and current not in found:
                        found[current] = frame.to_ndarray(format="rgb24")
                    if current >= target:
                        break
        except _NotConstantRate:
            return _decode_pyav(path, wanted, threads)
        except av.FFmpegError as exc:
            raise VideoError(f"{path}: decoding failed near frame {current} ({exc})") from exc
    return _all_found(path, wanted, found, f"decoding ended at frame {current}")


def _keyframes(
    container: av.container.InputContainer, stream: av.video.stream.VideoStream, origin: int, step: Fraction
) -> list[int]:
    """Frame indices of the keyframes, from the packets alone."""
    keys = sorted(
        _grid_index(p.pts, origin, step) for p in container.demux(stream) if p.is_keyframe and p.pts is not None
    )
    return keys


def _all_found(path: Path, wanted: set[int], found: dict[int, np.ndarray], detail: str) -> dict[int, np.ndarray]:
    if len(found) < len(wanted):
        raise IndexError(f"{path}: frame index {min(wanted - found.keys())} out of range ({detail})")
    return found


def _grid_index(pts: int | None, origin: int, step: Fraction) -> int:
    if pts is None:
        raise _NotConstantRate
    position = (pts - origin) / step
    index = round(position)
    if abs(position - index) > Fraction(1, 100):
        raise _NotConstantRate
    return index


def _decode_torchcodec(path: Path, wanted: set[int]) -> dict[int, np.ndarray]:
    from torchcodec.decoders import VideoDecoder

    if not path.is_file():
        raise FileNotFoundError(f"video not found: {path}")
    order = sorted(wanted)
    try:
        decoder = VideoDecoder(str(path), dimension_order="NHWC", seek_mode="exact")
        count = decoder.metadata.num_frames
    except (RuntimeError, ValueError) as exc:
        raise VideoError(f"{path}: torchcodec cannot open video ({exc})") from exc
    _check_range(path, order, count)
    try:
        batch = decoder.get_frames_at(indices=order).data.numpy()
    except (RuntimeError, ValueError) as exc:
        raise VideoError(f"{path}: torchcodec cannot decode frames {order} ({exc})") from exc
    finally:
        del decoder  # torchcodec frees its FFmpeg context with the object; nothing else holds it
    return dict(zip(order, batch, strict=True))


def _read_images(paths: list[Path], wanted: set[int], label: Path) -> dict[int, np.ndarray]:
    _check_range(label, sorted(wanted), len(paths))
    found = {}
    for k in sorted(wanted):
        if not paths[k].is_file():
            raise FileNotFoundError(f"frame {k} not found: {paths[k]}")
        try:
            with Image.open(paths[k]) as image:
                found[k] = np.asarray(image.convert("RGB"))
        except OSError as exc:
            raise VideoError(f"{paths[k]}: cannot read frame {k} ({exc})") from exc
    return found


def read_frames(
    source: VideoSource,
    indices: Sequence[int],
    *,
    backend: Backend = "auto",
    size: tuple[int, int] | None = None,
    root: PathLike | None = None,
    cache: FrameCache | None = None,
) -> np.ndarray:
    """Frames at absolute `indices` (repeats allowed, any order) as (T, H, W, 3) uint8 RGB.

    Video files decode with torchcodec (`get_frames_at`, exact seek mode) when it imports and `backend` allows,
    else with PyAV seeking to keyframes (bench/bench_decode.py; both give the frames sequential decoding gives);
    frame folders and lists are read with PIL. `size` = (height, width) resizes every frame bilinearly with PIL, the
    same for all backends so they stay interchangeable. With a `cache`, a video file's frames decoded before (by
    this process, from the file as it is now) are taken from it and only the others are decoded.
    """
    if not indices:
        raise ValueError("read_frames needs at least one index")
    resolved = resolve_source(source, root)
    wanted = {int(i) for i in indices}
    frames = _frame_paths(resolved)
    if frames is not None:
        label = resolved if isinstance(resolved, Path) else frames[0].parent
        found = _read_images(frames, wanted, label)
    else:
        assert isinstance(resolved, Path)
        if backend == "torchcodec" and not torchcodec_available():
            raise ImportError("backend='torchcodec' requested but torchcodec cannot be imported")
        if backend not in ("auto", "pyav", "torchcodec"):
            raise ValueError(f"unknown video backend {backend!r}")
        use_torchcodec = backend == "torchcodec" or (backend == "auto" and torchcodec_available())
        decode = _decode_torchcodec if use_torchcodec else _decode_pyav_seek
        found = decode(resolved, wanted) if cache is None else _decode_cached(resolved, wanted, decode, cache)
    out = [_resize(found[int(i)], size) for i in indices]
    shapes = {frame.shape for frame in out}
    if len(shapes) > 1:
        raise VideoError(f"{resolved}: frames differ in size {sorted(shapes)}; pass size=(height, width)")
    return np.stack(out)


def _decode_cached(
    path: Path, wanted: set[int], decode: Callable[[Path, set[int]], dict[int, np.ndarray]], cache: FrameCache
) -> dict[int, np.ndarray]:
    """`decode(path, wanted)`, decoding only the frames `cache` does not hold for the file as it is now."""
    try:
        file = file_identity(path)
    except OSError:
        return decode(path, wanted)  # raises the decoder's own error
    found = {i: frame for i in wanted if (frame := cache.get((*file, i))) is not None}
    missing = wanted - found.keys()
    if missing:
        fresh = decode(path, missing)
        for i, frame in fresh.items():
            cache.put((*file, i), frame)
        found.update(fresh)
    return found


def load_clip(
    source: VideoSource,
    num_samples: int = 32,
    clip: Sequence[float | None] | None = None,
    fps_hint: float | None = None,
    root: PathLike | None = None,
    *,
    short_clip: Literal["pad", "repeat"] = "pad",
    backend: Backend = "auto",
    size: tuple[int, int] | None = None,
) -> Clip:
    """Probe, sample and read `num_samples` frames, the LLM input of one sample.

    For a window of at least `num_samples` frames this is exactly segment-middle sampling. For a shorter window,
    `short_clip="pad"` (MODEL.md 1.3) keeps every real frame once and appends black frames; `"repeat"` keeps the
    repeated segment-middle indices, which is what the public `process_video` does for video files and folders
    (it pads only inputs given as frame lists/arrays, and those it takes whole, truncated to the first N, unsampled;
    we sample every source kind the same way instead).
    """
    resolved = resolve_source(source, root)
    info = probe(resolved, fps_hint=fps_hint)
    indices = clip_indices(info, num_samples, clip, short_clip)
    frames = pad_frames(read_frames(resolved, indices, backend=backend, size=size), num_samples)
    return Clip(frames, indices, info)


def clip_indices(
    info: VideoInfo,
    num_samples: int,
    clip: Sequence[float | None] | None = None,
    short_clip: Literal["pad", "repeat"] = "pad",
) -> list[int]:
    """The absolute frame indices `load_clip` reads (fewer than `num_samples` only when padding a short clip)."""
    first, last = (0, info.num_frames - 1) if clip is None else clip_frame_range(info, clip[0], clip[1])
    if short_clip not in ("pad", "repeat"):
        raise ValueError(f"short_clip must be 'pad' or 'repeat', got {short_clip!r}")
    if last - first + 1 < num_samples and short_clip == "pad":
        return list(range(first, last + 1))
    return [first + k for k in segment_middle_indices(last - first + 1, num_samples)]


def pad_frames(frames: np.ndarray, num_samples: int) -> np.ndarray:
    """Append black frames up to `num_samples` (MODEL.md 1.3: short clips are padded, never stretched)."""
    if len(frames) >= num_samples:
        return frames
    pad = np.zeros((num_samples - len(frames), *frames.shape[1:]), dtype=np.uint8)
    return np.concatenate([frames, pad])


def write_video(path: str | os.PathLike[str], frames: np.ndarray, fps: int, crf: int = 18) -> None:
    """Encode (T, H, W, 3) uint8 RGB frames as H.264/yuv420p mp4, atomically.

    H and W must be even (yuv420p); the synthetic generator picks sizes accordingly. A fixed GOP and
    no B-frames keep output byte-identical across runs and make every decoder agree on frame indices.
    """
    array = np.asarray(frames)
    if array.ndim != 4 or array.shape[-1] != 3 or array.dtype != np.uint8:
        raise ValueError(f"write_video expects (T, H, W, 3) uint8 frames, got {array.shape} {array.dtype}")
    _, height, width, _ = array.shape
    if height % 2 or width % 2:
        raise ValueError(f"H.264/yuv420p needs even frame sizes, got {height}x{width}")
    target = Path(path)
    with atomic_write(target, "wb") as handle:
        container = av.open(handle, mode="w", format="mp4")
        try:
            stream = container.add_stream("libx264", rate=int(fps))
            stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
            stream.options = {"crf": str(crf), "bf": "0", "g": str(int(fps)), "threads": "1"}
            stream.thread_count = 1
            for frame in array:
                for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)
        finally:
            container.close()
