"""The container images' default names, and the rule a release applies to them.

Images are bound when the pipeline is compiled (`pipelines/ufvideo_pipeline.py:build_pipeline(image, gpu_image)`,
`python -m pipelines compile --image ... --gpu-image ...`), never read from the environment at import time: the
same process can compile with different images, and importing a component changes nothing. Development builds use
the tags below, built from `components/images/Dockerfile.cpu` and `Dockerfile.cuda`; a release pins both by
digest (`ghcr.io/ufvideo/ufvideo@sha256:...`; `compile --release` refuses tags).
"""

from __future__ import annotations

DEFAULT_IMAGE = "ghcr.io/ufvideo/ufvideo:0.1.0"  # curation, registration (CPU)
DEFAULT_GPU_IMAGE = "ghcr.io/ufvideo/ufvideo-cuda:0.1.0"  # training, evaluation (CUDA, DeepSpeed)


def is_pinned(image: str) -> bool:
    """A reference is reproducible only by digest: tags move."""
    name, _, digest = image.partition("@sha256:")
    return bool(name) and len(digest) == 64 and all(c in "0123456789abcdef" for c in digest)
