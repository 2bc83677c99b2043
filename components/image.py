"""The container images the components run in: the one place they are named.

A release pins both by digest (`ghcr.io/ufvideo/ufvideo@sha256:...`): set `UFVIDEO_IMAGE` / `UFVIDEO_GPU_IMAGE` when
compiling (`ufvideo pipeline compile --release` refuses tags). Development builds use the tags below, built from
`components/images/Dockerfile.cpu` and `Dockerfile.cuda`.
"""

from __future__ import annotations

import os

DEFAULT_IMAGE = "ghcr.io/ufvideo/ufvideo:0.1.0"
DEFAULT_GPU_IMAGE = "ghcr.io/ufvideo/ufvideo-cuda:0.1.0"

IMAGE = os.environ.get("UFVIDEO_IMAGE") or DEFAULT_IMAGE  # curation, registration (CPU)
GPU_IMAGE = os.environ.get("UFVIDEO_GPU_IMAGE") or DEFAULT_GPU_IMAGE  # training, evaluation (CUDA, DeepSpeed)


def is_pinned(image: str) -> bool:
    """A reference is reproducible only by digest: tags move."""
    name, _, digest = image.partition("@sha256:")
    return bool(name) and len(digest) == 64 and all(c in "0123456789abcdef" for c in digest)
