"""Decoded video frames kept across the records of one video, within a byte budget, least recently used out first.

Why: a curated video is read by many records (the synthetic set has 17 per video: questions, captions, regions,
masks), and each record decodes its frames again. On the tiny profile decoding is most of the loader's time, and
the loader shares two CPU cores with training (BENCHMARKS.md, "A frame cache for the CPU loop"). A frame is
keyed by the file's path, size and modification time and the frame index, so a rewritten file is decoded again.
Cached frames are read-only; callers stack or copy them. Each process (each DataLoader worker) has its own cache.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np

Key = tuple[str, int, int, int]  # ufvideo.files.file_identity + frame index


class FrameCache:
    """An LRU of decoded frames bounded by `max_bytes` of pixel data."""

    def __init__(self, max_bytes: int) -> None:
        if max_bytes < 0:
            raise ValueError(f"frame cache size must be >= 0 bytes, got {max_bytes}")
        self.max_bytes = max_bytes
        self.bytes = 0
        self.hits = 0
        self.misses = 0
        self._frames: OrderedDict[Key, np.ndarray] = OrderedDict()

    def __len__(self) -> int:
        return len(self._frames)

    def get(self, key: Key) -> np.ndarray | None:
        frame = self._frames.get(key)
        if frame is None:
            self.misses += 1
            return None
        self._frames.move_to_end(key)
        self.hits += 1
        return frame

    def put(self, key: Key, frame: np.ndarray) -> None:
        """Keep `frame` (made read-only) unless it alone exceeds the budget; evict the oldest until it fits.

        A view (torchcodec returns one batch array for all frames) is copied, so that evicting it frees its bytes.
        """
        if frame.nbytes > self.max_bytes or key in self._frames:
            return
        if frame.base is not None:
            frame = frame.copy()
        frame.flags.writeable = False
        self._frames[key] = frame
        self.bytes += frame.nbytes
        while self.bytes > self.max_bytes:
            _, old = self._frames.popitem(last=False)
            self.bytes -= old.nbytes


_shared: FrameCache | None = None


def shared_cache(max_mb: int) -> FrameCache | None:
    """This process's cache with a budget of `max_mb` MiB, or None when 0 (off).

    Created on first use in each process, so DataLoader workers (forked or spawned) build their own from the
    settings they were given; a different budget replaces the cache.
    """
    global _shared
    if max_mb <= 0:
        return None
    max_bytes = max_mb << 20
    if _shared is None or _shared.max_bytes != max_bytes:
        _shared = FrameCache(max_bytes)
    return _shared
