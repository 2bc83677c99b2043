"""Clips per second per CPU core for the 7B recipe's frames (32 LLM frames + 4 SAM frames per sample) on 720p
H.264 videos of 30 s, 3 min and 10 min, for each decoder: today's PyAV path, PyAV with keyframe seeks,
torchcodec (exact and approximate seek modes) and decord, where they import.

Run: `python bench/bench_decode.py [--workdir /tmp/ufvideo_decode_bench] [--clips 2]`. Videos are generated once
(x264 defaults: keyframe at most every 250 frames, B-frames on, like typical web video). Each method decodes the
same frame indices on one thread; frames are compared with today's path (exact = identical pixels).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

import av
import numpy as np

from ufvideo.data.video import _decode_pyav, _decode_pyav_seek, segment_middle_indices

FPS, WIDTH, HEIGHT = 30, 1280, 720
LENGTHS = {"30s": 30, "3min": 180, "10min": 600}


def generate(path: Path, seconds: int) -> None:
    """Encode 30 s once; longer videos repeat its packets with shifted timestamps (a stream copy: the same
    bitstream a 10 min encode of that content gives, in seconds instead of half an hour on two cores)."""
    if path.is_file():
        return
    unit = path.with_name("unit30s.mp4")
    encode(unit, 30)
    tmp = path.with_suffix(".tmp.mp4")
    with av.open(str(unit)) as source, av.open(str(tmp), mode="w") as target:
        stream_in = source.streams.video[0]
        stream_out = target.add_stream_from_template(stream_in)
        span = None
        for repeat in range(seconds // 30):
            source.seek(0)
            last = 0
            for packet in source.demux(stream_in):
                if packet.dts is None:
                    continue
                shift = 0 if span is None else repeat * span
                packet.pts, packet.dts = packet.pts + shift, packet.dts + shift
                last = max(last, packet.pts - shift + packet.duration)
                packet.stream = stream_out
                target.mux(packet)
            span = span or last
    tmp.rename(path)


def encode(path: Path, seconds: int) -> None:
    """A 3 s loop of moving gradients with noise blocks (so motion search has work), x264 `veryfast` CRF 23
    (default GOP of up to 250 frames, B-frames on, like typical web video)."""
    if path.is_file():
        return
    tmp = path.with_suffix(".tmp.mp4")
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:HEIGHT, 0:WIDTH]
    noise = rng.integers(0, 64, (HEIGHT // 16, WIDTH // 16, 3), dtype=np.uint8).repeat(16, 0).repeat(16, 1)
    loop = []
    for t in range(3 * FPS):
        base = ((x + 4 * t) % 256).astype(np.uint8)
        rgb = np.stack([base, ((y + 2 * t) % 256).astype(np.uint8), base // 2 + 64], -1) + np.roll(noise, 8 * t, 1)
        loop.append(av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p"))
    with av.open(str(tmp), mode="w") as container:
        stream = container.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        stream.options = {"preset": "veryfast", "crf": "23"}
        for t in range(seconds * FPS):
            frame = loop[t % len(loop)]
            frame.pts = t
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    tmp.rename(path)


def sample_indices(total: int, rng: np.random.Generator) -> list[int]:
    """32 segment-middle LLM frames + 4 SAM frames (random annotated frames, as a mask task has)."""
    return sorted(set(segment_middle_indices(total, 32)) | set(rng.choice(total, 4, replace=False).tolist()))


def torchcodec_method(mode: str) -> Callable[[Path, set[int]], dict[int, np.ndarray]] | None:
    try:
        from torchcodec.decoders import VideoDecoder
    except Exception:  # no FFmpeg shared libraries on this machine
        return None

    def decode(path: Path, wanted: set[int]) -> dict[int, np.ndarray]:
        order = sorted(wanted)
        decoder = VideoDecoder(str(path), dimension_order="NHWC", seek_mode=mode, num_ffmpeg_threads=1)
        return dict(zip(order, decoder.get_frames_at(indices=order).data.numpy(), strict=True))

    return decode


def decord_method() -> Callable[[Path, set[int]], dict[int, np.ndarray]] | None:
    try:
        import decord
    except Exception:
        return None

    def decode(path: Path, wanted: set[int]) -> dict[int, np.ndarray]:
        order = sorted(wanted)
        reader = decord.VideoReader(str(path), num_threads=1)
        return dict(zip(order, reader.get_batch(order).asnumpy(), strict=True))

    return decode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", default="/tmp/ufvideo_decode_bench")
    parser.add_argument("--clips", type=int, default=2, help="clips (index sets) per video and method")
    parser.add_argument("--lengths", default=",".join(LENGTHS))
    args = parser.parse_args()
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    methods = {
        "pyav (today: decode up to the last frame)": lambda p, w: _decode_pyav(p, w, threads=1),
        "pyav keyframe seek": lambda p, w: _decode_pyav_seek(p, w, threads=1),
        "torchcodec exact": torchcodec_method("exact"),
        "torchcodec approximate": torchcodec_method("approximate"),
        "decord": decord_method(),
    }
    print("| video | method | clips/s per core | s per clip | frames identical to PyAV |")
    print("|---|---|---:|---:|---|")
    for name in args.lengths.split(","):
        path = workdir / f"{name}.mp4"
        generate(path, LENGTHS[name])
        total = LENGTHS[name] * FPS
        rng = np.random.default_rng(1)
        clips = [sample_indices(total, rng) for _ in range(args.clips)]
        reference: list[dict[int, np.ndarray]] = []
        for label, method in methods.items():
            if method is None:
                print(f"| {name} | {label} | n/a | n/a | not importable here |")
                continue
            start = time.perf_counter()
            outputs = [method(path, set(c)) for c in clips]
            seconds = (time.perf_counter() - start) / len(clips)
            reference = reference or outputs  # the first method is today's path
            same = all(np.array_equal(out[i], ref[i]) for out, ref, c in zip(outputs, reference, clips) for i in c)
            print(f"| {name} | {label} | {1 / seconds:.3f} | {seconds:.2f} | {'yes' if same else 'no'} |", flush=True)


if __name__ == "__main__":
    main()
