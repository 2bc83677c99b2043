"""Registration of LoRA checkpoints: an adapter version records its base's URI and digest, a merged one the adapter
and base it came from, and the pyfunc of an adapter version in S3 loads it over its base (also in S3)."""

from __future__ import annotations

import mlflow
import pytest
import torch

from tests.adapters import adapter_checkpoint, base_checkpoint
from ufvideo.checkpoint import checkpoint_digest, publish
from ufvideo.model.loader import load_checkpoint
from ufvideo.model.merge import MergeConfig
from ufvideo.model.merge import run as merge
from ufvideo.registry import versions
from ufvideo.registry.versions import CANDIDATE


@pytest.fixture
def lora_on_s3(tmp_path, s3_bucket):
    """Base and adapter both in S3 (each with its completion mark), the adapter recording the S3 base."""
    base = base_checkpoint(tmp_path / "base")
    base_uri = f"{s3_bucket}/checkpoints/base"
    publish(base, base_uri)
    adapter = adapter_checkpoint(base, tmp_path / "adapter", base_uri=base_uri)
    adapter_uri = f"{s3_bucket}/checkpoints/adapter"
    publish(adapter, adapter_uri)
    return {"base": base, "base_uri": base_uri, "adapter": adapter, "adapter_uri": adapter_uri}


def test_adapter_and_merged_versions_record_their_lineage(tmp_path, mlflow_s3_tracking, registry_name, lora_on_s3):
    base_digest = checkpoint_digest(lora_on_s3["base"])
    adapter = versions.register(lora_on_s3["adapter_uri"], name=registry_name)
    tags = adapter.tags
    assert tags["checkpoint_kind"] == "adapter" and tags["adapter_digest"] == adapter.checkpoint_digest
    assert tags["base_checkpoint_uri"] == lora_on_s3["base_uri"] and tags["base_checkpoint_digest"] == base_digest

    merged_dir = tmp_path / "merged"
    merge(MergeConfig(adapter=lora_on_s3["adapter_uri"], out=str(merged_dir)))
    merged = versions.register(str(merged_dir), name=registry_name)
    assert merged.version != adapter.version
    tags = merged.tags
    assert tags["checkpoint_kind"] == "merged" and tags["adapter_uri"] == lora_on_s3["adapter_uri"]
    assert tags["adapter_digest"] == adapter.checkpoint_digest and tags["base_checkpoint_digest"] == base_digest
    stored = mlflow.MlflowClient().get_model_version(registry_name, merged.version).tags
    assert stored["base_checkpoint_digest"] == base_digest

    full = versions.register(str(lora_on_s3["base"]), name=registry_name)
    assert full.tags["checkpoint_kind"] == "full" and "base_checkpoint_digest" not in full.tags


def test_the_pyfunc_of_an_adapter_version_loads_it_over_its_base(mlflow_s3_tracking, registry_name, lora_on_s3):
    registered = versions.register(lora_on_s3["adapter_uri"], name=registry_name)
    loaded = mlflow.pyfunc.load_model(f"models:/{registry_name}@{CANDIDATE}")
    served = loaded.unwrap_python_model().model
    expected, _ = load_checkpoint(lora_on_s3["adapter"])
    a, b = served.state_dict(), expected.state_dict()
    assert a.keys() == b.keys() and [k for k in a if not torch.equal(a[k], b[k])] == []
    base, _ = load_checkpoint(lora_on_s3["base"])
    assert any(not torch.equal(v, a[k]) for k, v in base.state_dict().items()), "served the bare base"
    assert registered.tags["checkpoint_kind"] == "adapter"
