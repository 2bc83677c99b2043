"""The eight public training sources and the public UFVideo training JSON, by CLI name;
each module declares one `SOURCE` (see `base.Source`).
"""

from __future__ import annotations

import importlib

from ufvideo.config import ConfigError
from ufvideo.data.sources.base import Source

NAMES = (
    "st_align",
    "llava_video_178k",
    "videorefer_700k",
    "mevis",
    "ref_youtube_vos",
    "ref_davis17",
    "revos",
    "internvid_tg",
    "ufvideo_json",
)


def get_source(name: str) -> Source:
    """The converter declared by `ufvideo.data.sources.<name>`; imported on demand so one source's deps stay local."""
    if name not in NAMES:
        raise ConfigError(f"unknown source {name!r}; allowed: {', '.join(NAMES)}")
    return importlib.import_module(f"ufvideo.data.sources.{name}").SOURCE
