"""The one loader of trained checkpoints for inference and training init: full checkpoints, merged ones and LoRA
adapter checkpoints (whose base is resolved from a local path or `s3://` and checked against its recorded digest).

Every reader of weights (`ufvideo eval`, the registered pyfunc, prediction, stage-2 init, `model merge`) calls
`load_checkpoint`, so an adapter checkpoint works wherever a full one does.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import torch

from ufvideo import storage
from ufvideo.checkpoint import CheckpointError, checkpoint_digest, materialize
from ufvideo.model.adapters import (
    add_lora,
    load_adapter_state,
    merge_lora,
    read_adapter_config,
    settings_of,
)
from ufvideo.model.modeling import UFVideoForConditionalGeneration
from ufvideo.model.processing import UFVideoProcessor

MAX_DEPTH = 8  # adapters on adapters (a LoRA stage 2 over a LoRA stage 1) nest at most this deep


def load_checkpoint(
    uri: str | os.PathLike[str],
    device: str | torch.device = "cpu",
    dtype: torch.dtype | None = None,
    key: str = "",
    base: str | None = None,
    strict: bool = True,
) -> tuple[UFVideoForConditionalGeneration, UFVideoProcessor]:
    """(model in eval mode, processor) of any checkpoint; an adapter checkpoint comes back merged into its base.

    `key` is the digest the caller expects (a registered version's), checked for `s3://` checkpoints; `base`
    overrides where an adapter's base is read from (its digest must still match the recorded one); `strict=False`
    lets the innermost full checkpoint lack heads (a converted VideoRefer base, as stage-1 init).
    """
    local = materialize(uri, key=key)
    model = load_model(local, device, dtype, base, strict)
    return model.eval(), UFVideoProcessor.from_pretrained(local)


def load_model(
    local: Path,
    device: str | torch.device = "cpu",
    dtype: torch.dtype | None = None,
    base: str | None = None,
    strict: bool = True,
    depth: int = 0,
) -> UFVideoForConditionalGeneration:
    """The weights of a local checkpoint directory; an adapter's base is loaded first (recursively), then the
    adapters are applied and merged."""
    document = read_adapter_config(local)
    if document is None:
        return UFVideoForConditionalGeneration.from_pretrained(local, device=device, strict=strict, dtype=dtype)
    if depth >= MAX_DEPTH:
        raise CheckpointError(f"{local}: adapter bases nest deeper than {MAX_DEPTH} (a cycle?)")
    settings = settings_of(document, str(local))
    base_local = resolve_base(local, document, base)
    # The adapter's base is always read at full precision: a QLoRA adapter merges into the unquantised weights.
    model = load_model(base_local, device, dtype, strict=strict, depth=depth + 1)
    add_lora(model, dataclasses.replace(settings, quantize="none"), trainable=False)
    load_adapter_state(model, local)
    return merge_lora(model)


def resolve_base(local: Path, document: dict[str, Any], override: str | None = None) -> Path:
    """The adapter's base checkpoint as a local directory, verified to be the one it was trained on."""
    expected = str(document["base"]["digest"])
    uri = override or str(document["base"]["uri"])
    if storage.is_s3(uri):
        return materialize(uri, key=expected)  # refuses a prefix that holds other weights
    try:
        directory = materialize(uri)
    except FileNotFoundError as err:
        raise CheckpointError(
            f"{local}: its base checkpoint {uri} does not exist here; pass the base's location (--base URI)"
        ) from err
    actual = checkpoint_digest(directory)
    if actual != expected:
        raise CheckpointError(
            f"{local}: base checkpoint {uri} has digest {actual[:12]}, but the adapter was trained on {expected[:12]}"
        )
    return directory


def base_reference(uri: str) -> dict[str, str]:
    """What an adapter records of its base: the URI (absolute for local paths, so eval from another working
    directory finds it) and the digest of the files training actually loaded."""
    located = uri if storage.is_s3(uri) else os.path.abspath(uri)
    return {"uri": located, "digest": checkpoint_digest(materialize(uri))}
