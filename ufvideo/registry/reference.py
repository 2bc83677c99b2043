"""A model reference as a user types it: a checkpoint directory, an `s3://` checkpoint prefix, or a registered
version `models:/NAME@ALIAS` / `models:/NAME/VERSION`, resolved to the checkpoint it holds and that checkpoint's
digest (so the weights loaded are the ones the registry recorded, see `ufvideo.checkpoint.materialize`).
"""

from __future__ import annotations

from dataclasses import dataclass

MODELS_SCHEME = "models:/"


@dataclass(frozen=True)
class CheckpointRef:
    """Where the weights are (`uri`), the digest they must have ("" = not known up front), and what was asked."""

    uri: str
    digest: str
    reference: str
    version: str = ""


def resolve_model(reference: str) -> CheckpointRef:
    """The checkpoint behind `reference`; registry references are looked up on the MLflow tracking server."""
    if not reference.startswith(MODELS_SCHEME):
        return CheckpointRef(reference, "", reference)
    from ufvideo.registry.versions import RegistryError, resolve

    body = reference[len(MODELS_SCHEME) :].strip("/")
    if "@" in body:
        name, _, ref = body.partition("@")
    else:
        name, _, ref = body.partition("/")
    if not name or not ref:
        raise RegistryError(f"{reference}: expected models:/NAME@ALIAS or models:/NAME/VERSION")
    version = resolve(name, ref)
    uri = version.tags.get("checkpoint_uri")
    if not uri:
        raise RegistryError(f"{reference}: version {version.version} has no checkpoint_uri tag (not a UFVideo model)")
    return CheckpointRef(uri, version.tags.get("checkpoint_digest", ""), reference, str(version.version))
