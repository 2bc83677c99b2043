"""`ufvideo registry ...` handlers (exit codes, printed reasons, the show table) and `run(RegisterConfig)`."""

from __future__ import annotations

import json

import pytest

from tests.registry.helpers import fake_checkpoint, write_metrics, write_policy
from ufvideo.cli import main
from ufvideo.registry import PromotionRejected, RegisterConfig, run, versions
from ufvideo.registry.commands import _key_metrics, format_table
from ufvideo.registry.versions import CHAMPION, alias_version

POLICY = "tolerance: 0.5\nbenchmarks:\n  mvbench:\n    accuracy: {min: 40}\n"


def _cli(*argv: str) -> int:
    return main(list(argv))


def _eval(tmp_path, seed: int, accuracy: float, miou: float = 30.0):
    ckpt = fake_checkpoint(tmp_path / f"ckpt{seed}", seed=seed)
    a = write_metrics(tmp_path / f"mv{seed}", "mvbench", {"accuracy": accuracy}, ckpt)
    b = write_metrics(tmp_path / f"ch{seed}", "charades_sta", {"miou": miou, "r_at_0_5": None}, ckpt)
    return ckpt, [str(a), str(b.parent)]


def test_cli_register_promote_show_rollback(tmp_path, mlflow_s3_tracking, registry_name, capsys, monkeypatch):
    policy = str(write_policy(tmp_path / "policy.yaml", POLICY))
    ckpt, metrics = _eval(tmp_path, 1, accuracy=50.0)
    monkeypatch.chdir(tmp_path)  # a relative checkpoint path is recorded absolute
    args = ["--checkpoint", ckpt.name, "--metrics", metrics[0], "--metrics", metrics[1], "--name", registry_name]
    assert _cli("registry", "register", *args) == 0
    assert versions.client().get_model_version(registry_name, "1").tags["checkpoint_uri"] == str(ckpt)
    assert _cli("registry", "register", *args) == 0
    out = capsys.readouterr().out
    assert f"{registry_name}: registered v1" in out and f"{registry_name}: already registered as v1" in out
    assert _cli("registry", "promote", "--name", registry_name, "--policy", policy) == 0
    assert "v1 is champion (was none)" in capsys.readouterr().out

    ckpt2, metrics2 = _eval(tmp_path, 2, accuracy=30.0)
    assert (
        _cli(
            "registry",
            "register",
            "--checkpoint",
            str(ckpt2),
            "--name",
            registry_name,
            *sum((["--metrics", m] for m in metrics2), []),
        )
        == 0
    )
    assert _cli("registry", "promote", "--name", registry_name, "--version", "2", "--policy", policy) == 1
    captured = capsys.readouterr()
    assert "v2 NOT promoted; champion stays 1" in captured.out
    assert "reason: mvbench.accuracy: 30 < minimum 40" in captured.err
    assert "reason: regression: mvbench.accuracy: 50 (champion v1) -> 30" in captured.err
    assert alias_version(registry_name, CHAMPION).version == "1"

    assert _cli("registry", "show", "--name", registry_name) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split() == [
        "version", "aliases", "profile", "stage", "gate", "checkpoint", "registered",
        "charades_sta.miou", "charades_sta.r_at_0_5", "mvbench.accuracy",
    ]  # fmt: skip
    assert table[2].split()[:5] == ["2", "candidate", "tiny", "2", "fail"]
    assert table[3].split()[:5] == ["1", "champion", "tiny", "2", "pass"]
    assert table[3].split()[-3:] == ["30.00", "null", "50.00"]
    assert _cli("registry", "show", "--name", registry_name, "--metric", "mvbench.accuracy", "--json") == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["version"], r["mvbench.accuracy"]) for r in rows] == [("2", "30.00"), ("1", "50.00")]

    assert _cli("registry", "rollback", "--name", registry_name) == 2  # v1 replaced nobody
    assert "has no previous champion" in capsys.readouterr().err
    assert _cli("registry", "show", "--name", f"{registry_name}-none") == 2


def test_run_registers_promotes_and_writes_result(tmp_path, mlflow_s3_tracking, registry_name):
    policy = str(write_policy(tmp_path / "policy.yaml", POLICY))
    ckpt, metrics = _eval(tmp_path, 1, accuracy=55.0)
    out = tmp_path / "result" / "registry.json"
    pipeline = versions.client().create_run(versions.client().create_experiment(registry_name)).info.run_id
    cfg = RegisterConfig(str(ckpt), metrics, registry_name, policy, True, pipeline_run_id=pipeline, out=str(out))
    result = run(cfg)
    assert result["version"] == "1" and result["created"] and result["promotion"]["passed"]
    assert versions.client().get_model_version(registry_name, "1").tags["pipeline_run_id"] == pipeline
    register_run = versions.client().search_runs([versions.client().get_run(pipeline).info.experiment_id])
    assert {r.data.tags.get("mlflow.parentRunId") for r in register_run} == {None, pipeline}
    assert json.loads(out.read_text()) == result
    assert alias_version(registry_name, CHAMPION).version == "1"

    ckpt2, metrics2 = _eval(tmp_path, 2, accuracy=20.0)
    cfg2 = RegisterConfig(str(ckpt2), metrics2, name=registry_name, policy=policy, promote=True, out=str(out))
    with pytest.raises(PromotionRejected, match="v2 not promoted: mvbench.accuracy: 20 < minimum 40") as err:
        run(cfg2)
    assert len(err.value.reasons) == 2
    assert json.loads(out.read_text())["promotion"]["passed"] is False  # the result is written before raising
    cfg2.fail_on_reject = False
    assert run(cfg2)["promotion"]["champion_after"] == "1"
    assert alias_version(registry_name, CHAMPION).version == "1"


def test_format_table_aligns_columns():
    text = format_table([{"a": "1", "bb": "long-value"}, {"a": "22", "bb": "x"}])
    assert text.splitlines() == ["a   bb", "--  ----------", "1   long-value", "22  x"]
    assert format_table([]) == ""


def test_show_defaults_to_the_metrics_the_policy_gates_on():
    per_version = {"1": {"mvbench.accuracy": 60.0, "mvbench.accuracy_as": 70.0, "charades_sta.miou": None}}
    assert _key_metrics("ufvideo-7b", per_version) == ["charades_sta.miou", "mvbench.accuracy"]
    assert _key_metrics("tiny", per_version) == ["charades_sta.miou", "mvbench.accuracy", "mvbench.accuracy_as"]
