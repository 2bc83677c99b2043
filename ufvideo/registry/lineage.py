"""What a registered version records about where its weights came from: a full checkpoint, a LoRA adapter
checkpoint (with its base's URI and digest) or a merged one (with the adapter's and the base's), read from the
checkpoint's `ufvideo.json` without loading any weights.
"""

from __future__ import annotations

import os

from ufvideo.checkpoint import read_info


def lineage(uri: str | os.PathLike[str], digest: str) -> dict[str, str]:
    """How a checkpoint relates to others, for registration: kind (full | adapter | merged) and the base's and the
    adapter's URI and digest where they apply."""
    info = read_info(uri)
    if base := info.get("base_checkpoint"):
        return {
            "checkpoint_kind": "adapter",
            "adapter_digest": digest,
            "base_checkpoint_uri": str(base.get("uri", "")),
            "base_checkpoint_digest": str(base.get("digest", "")),
        }
    if merged := info.get("merged_from"):
        adapter, base = merged.get("adapter") or {}, merged.get("base") or {}
        return {
            "checkpoint_kind": "merged",
            "adapter_uri": str(adapter.get("uri", "")),
            "adapter_digest": str(adapter.get("digest", "")),
            "base_checkpoint_uri": str(base.get("uri", "")),
            "base_checkpoint_digest": str(base.get("digest", "")),
        }
    return {"checkpoint_kind": "full"}
