"""Registration, the promotion gate and rollback against a live `mlflow server` whose artifacts live on moto S3."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from tests.registry.helpers import fake_checkpoint, write_metrics, write_policy
from ufvideo import storage
from ufvideo.registry import versions
from ufvideo.registry.versions import CANDIDATE, CHAMPION, PREVIOUS, RegistryError

STRICT = """
tolerance: 1.0
min_metrics: 1
benchmarks:
  mvbench:
    accuracy: {min: 40.0}
"""


def _client():
    return versions.client()


def _register(tmp_path: Path, name: str, seed: int, accuracy: float | None, **kw):
    ckpt = fake_checkpoint(tmp_path / f"ckpt{seed}", seed=seed)
    metrics = write_metrics(tmp_path / f"eval{seed}", "mvbench", {"accuracy": accuracy, "accuracy_as": 50.0}, ckpt)
    return versions.register(str(ckpt), [str(metrics)], name=name, **kw)


def test_register_tags_lineage_and_is_idempotent(
    tmp_path, mlflow_s3_tracking, registry_name, monkeypatch, s3_bucket, caplog
):
    pipeline_run = versions.client().create_run(versions.client().create_experiment(registry_name)).info.run_id
    monkeypatch.setenv("MLFLOW_RUN_ID", pipeline_run)
    reg = _register(tmp_path, registry_name, seed=1, accuracy=55.5)
    assert reg.created and reg.version == "1"
    mv = _client().get_model_version(registry_name, "1")
    tags = mv.tags
    assert tags["checkpoint_digest"] == reg.checkpoint_digest and len(reg.checkpoint_digest) == 64
    assert tags["checkpoint_uri"] == str(tmp_path / "ckpt1")
    assert tags["data_digest"] == "data-1" and tags["stage"] == "2" and tags["profile"] == "tiny"
    assert tags["git_commit"] == "0123456789abcdef0123456789abcdef01234567"
    assert tags["pipeline_run_id"] == pipeline_run
    assert float(tags["metric.mvbench.accuracy"]) == 55.5 and float(tags["metric.mvbench.accuracy_as"]) == 50.0
    assert _client().get_model_version_by_alias(registry_name, CANDIDATE).version == "1"
    assert mv.current_stage in (None, "", "None")  # the deprecated stages stay unused
    # The version's model files are on S3 and hold a pointer, not the weights.
    source = _client().get_model_version_download_uri(registry_name, "1")
    assert source.startswith(mlflow_s3_tracking + "/"), source
    files = [f[len(source) :] for f in storage.listdir(source, recursive=True)]
    assert "/MLmodel" in files and "/serving.py" in files, files  # models from code: no pickled object
    assert not any(f.endswith(".safetensors") for f in files), files
    pointer = next(f for f in storage.listdir(source, recursive=True) if f.endswith("checkpoint.json"))
    assert json.loads(storage.read_text(pointer))["digest"] == reg.checkpoint_digest

    # Same weights again, even from another location (a copy on S3): the existing version comes back.
    again = versions.register(str(tmp_path / "ckpt1"), [], name=registry_name)
    copy = f"{s3_bucket}/copies/ckpt1"
    storage.copy_tree(tmp_path / "ckpt1", copy)
    moved = versions.register(copy, [], name=registry_name)
    assert (again.created, again.version, moved.created, moved.version) == (False, "1", False, "1")
    rerun = write_metrics(tmp_path / "rerun", "mvbench", {"accuracy": 56.0, "accuracy_as": 50.0}, tmp_path / "ckpt1")
    with caplog.at_level(logging.WARNING, logger="ufvideo.registry.versions"):
        assert versions.register(str(tmp_path / "ckpt1"), [str(rerun)], name=registry_name).version == "1"
    assert "metrics left as they were: ['mvbench.accuracy']" in caplog.text
    assert _client().get_model_version(registry_name, "1").tags["metric.mvbench.accuracy"] == "55.5"
    assert len(versions.versions(registry_name)) == 1


def test_register_refuses_metrics_of_other_weights(tmp_path, mlflow_s3_tracking, registry_name):
    ckpt = fake_checkpoint(tmp_path / "a", seed=1)
    other = fake_checkpoint(tmp_path / "b", seed=2)
    metrics = write_metrics(tmp_path / "eval", "mvbench", {"accuracy": 50.0}, other)
    with pytest.raises(RegistryError, match="differs from the registered checkpoint"):
        versions.register(str(ckpt), [str(metrics)], name=registry_name)
    assert versions.versions(registry_name) == []


def test_gate_pass_fail_and_rollback(tmp_path, mlflow_s3_tracking, registry_name):
    policy = write_policy(tmp_path / "policy.yaml", STRICT)
    first = _register(tmp_path, registry_name, seed=1, accuracy=50.0)
    assert versions.promote(registry_name, policy=str(policy)).decision.passed
    assert _client().get_model_version_by_alias(registry_name, CHAMPION).version == first.version

    # Below the absolute threshold and a regression beyond tolerance: rejected, champion untouched, reasons tagged.
    bad = _register(tmp_path, registry_name, seed=2, accuracy=35.0)
    result = versions.promote(registry_name, policy=str(policy))
    assert not result.decision.passed and result.version == bad.version
    reasons = " | ".join(result.decision.reasons)
    assert "mvbench.accuracy: 35 < minimum 40" in reasons and "regression" in reasons, reasons
    assert _client().get_model_version_by_alias(registry_name, CHAMPION).version == first.version
    tags = _client().get_model_version(registry_name, bad.version).tags
    assert tags["gate.decision"] == "fail" and json.loads(tags["gate.reasons"]) == result.decision.reasons
    assert tags["gate.champion"] == first.version and tags["gate.policy"] == str(policy)

    # A small dip within tolerance passes; the replaced champion is remembered.
    good = _register(tmp_path, registry_name, seed=3, accuracy=49.5)
    passed = versions.promote(registry_name, version=good.version, policy=str(policy))
    assert passed.decision.passed and (passed.champion_before, passed.champion_after) == (first.version, good.version)
    assert _client().get_model_version_by_alias(registry_name, PREVIOUS).version == first.version
    assert _client().get_model_version(registry_name, good.version).tags["gate.decision"] == "pass"
    assert versions.promote(registry_name, version=good.version, policy=str(policy)).decision.passed  # no-op

    assert versions.rollback(registry_name) == (good.version, first.version)
    assert _client().get_model_version_by_alias(registry_name, CHAMPION).version == first.version
    assert versions.alias_version(registry_name, PREVIOUS) is None
    with pytest.raises(RegistryError, match="no previous champion"):
        versions.rollback(registry_name)


def test_promote_and_rollback_errors(tmp_path, mlflow_s3_tracking, registry_name):
    with pytest.raises(RegistryError, match="no alias 'candidate'"):
        versions.promote(registry_name)
    with pytest.raises(RegistryError, match="no champion"):
        versions.rollback(registry_name)
    _register(tmp_path, registry_name, seed=1, accuracy=None)
    with pytest.raises(RegistryError, match="no version 7"):
        versions.promote(registry_name, version="7")
    # A null metric is recorded as such and counts as missing for the gate.
    assert _client().get_model_version(registry_name, "1").tags["metric.mvbench.accuracy"] == "null"
    result = versions.promote(registry_name, policy=str(write_policy(tmp_path / "p.yaml", STRICT)))
    assert result.decision.reasons == ["mvbench.accuracy: missing (required by the policy)"]
    assert versions.alias_version(registry_name, CHAMPION) is None


def test_load_metrics_validates_files(tmp_path):
    good = tmp_path / "a" / "metrics.json"
    good.parent.mkdir()
    good.write_text(json.dumps({"benchmark": "charades_sta", "metrics": {"miou": 40, "r_at_0_5": None}}))
    assert versions.load_metrics([str(good.parent)]) == {"charades_sta.miou": 40.0, "charades_sta.r_at_0_5": None}
    with pytest.raises(RegistryError, match="also given"):
        versions.load_metrics([str(good), str(good)])
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"benchmark": "mvbench", "metrics": {"accuracy": "high"}}))
    with pytest.raises(RegistryError, match=r"bad.json: metrics.accuracy: 'high' is not a number"):
        versions.load_metrics([str(bad)])
    bad.write_text(json.dumps({"metrics": {}}))
    with pytest.raises(RegistryError, match="'benchmark' name"):
        versions.load_metrics([str(bad)])


def test_video_dependence_is_registered_beside_the_metrics(tmp_path):
    doc = {
        "benchmark": "synthetic",
        "metrics": {"qa_accuracy": 40.0},
        "controls": {"shuffled_video": {"qa_accuracy": 15.0}},
        "video_dependence": {"qa_accuracy": 25.0},
    }
    (tmp_path / "metrics.json").write_text(json.dumps(doc))
    assert versions.load_metrics([str(tmp_path)]) == {
        "synthetic.qa_accuracy": 40.0,
        "synthetic.video_dependence.qa_accuracy": 25.0,
    }
