"""The run's parameters and data, checked before any step works (naslid.params): by the
validate-params step, by ``naslid run`` before the first step, by ``naslid submit`` before
anything is sent (tests/test_submit.py)."""

from __future__ import annotations

import pytest

from naslid import kfp_local, params
from naslid.cli import main
from naslid.steps.prepare import validate_params


@pytest.fixture
def no_step_runs(monkeypatch):
    """``naslid run`` must stop before kfp.local runs anything."""

    def ran(*args, **kwargs):
        raise AssertionError("a step ran")

    monkeypatch.setattr(kfp_local, "run", ran)


def _one_line(err: str, command: str = "run") -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"naslid {command}: error: "), err
    return lines[0]


@pytest.fixture
def table(tmp_path):
    path = tmp_path / "labels.csv"
    path.write_text("arch_str,acc\n|none~0|+|none~0|none~1|+|none~0|none~1|none~2|,10.0\n")
    return path


@pytest.mark.parametrize(
    ("param", "line"),
    [
        ("criterion=lidd", "criterion: expected one of lid, gradient, random, got 'lidd'"),
        ("labels=tables:x.csv:acc", "labels: expected 'proxy' or a table 'table:CSV:COLUMN'"),
        ("rounds=5", "rounds: 5 asked, the compiled pipeline unrolls at most 4"),
        ("search_budget=0", "search_budget: must be >= 1, got 0"),
        ("seed=-1", "seed: must be >= 0, got -1"),
        ("checkpoint_root=ftp://host/ckpt", "checkpoint_root: 'ftp://host/ckpt': unknown scheme"),
        ("checkpoint_root=/dev/null/ckpt", "checkpoint_root: '/dev/null/ckpt': cannot create"),
        ("labels=table:/nonexistent.csv:acc", "/nonexistent.csv not found"),
        ("flops_max=1", "flops_max: no arch of space nb201 meets 1 M FLOPs; its minimum is 7.783"),
        ("params_max=0", "parameter 'params_max': 0 is no budget"),
        ("latency_max=fast", "parameter 'latency_max': expected a number, got 'fast'"),
    ],
)
def test_run_refuses_a_bad_parameter_in_one_line_before_any_step(
    param, line, tmp_path, capsys, no_step_runs
):
    assert main(["run", "--out", str(tmp_path / "run"), "--param", param]) == 1
    assert line in _one_line(capsys.readouterr().err)


def test_run_refuses_an_unknown_column_of_the_labels_table(table, tmp_path, capsys, no_step_runs):
    argv = ["run", "--out", str(tmp_path / "run"), "--param", f"labels=table:{table}:acc_200"]
    assert main(argv) == 1
    assert "acc_200" in _one_line(capsys.readouterr().err)


def test_run_refuses_missing_search_or_transfer_data(tmp_path, capsys, no_step_runs):
    out = ["run", "--out", str(tmp_path / "run")]
    missing = tmp_path / "no-cifar"
    assert main([*out, "--param", "dataset=cifar10", "--param", f"dataset_uri={missing}"]) == 1
    line = _one_line(capsys.readouterr().err)
    assert f"dataset cifar10: {missing} does not exist (dataset_uri)" in line
    (tmp_path / "imagenet" / "train" / "n01").mkdir(parents=True)
    (tmp_path / "imagenet" / "train" / "n01" / "a.jpg").write_bytes(b"x")
    assert main([*out, "--param", f"transfer_uri={tmp_path / 'imagenet'}"]) == 1
    line = _one_line(capsys.readouterr().err)
    assert f"transfer data: {tmp_path / 'imagenet' / 'val'} does not exist" in line
    # transfer off: its data is not needed
    with pytest.raises(AssertionError, match="a step ran"):
        main(
            [*out, "--param", f"transfer_uri={tmp_path / 'imagenet'}", "--param", "transfer=false"]
        )


def test_validate_params_names_the_missing_volume(monkeypatch, tmp_path):
    """The committed YAML mounts no dataset volume: cifar10 stops in validate-params, saying
    where it looked and what mounts the data, instead of three retried prepare-data pods."""
    monkeypatch.delenv("NASLID_DATA", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(ValueError) as info:
        validate_params(profile="cifar10")
    text = str(info.value)
    assert text.startswith(
        f"dataset cifar10-valid: {tmp_path}/.cache/naslid/data/cifar10 does not exist"
    )
    assert "$NASLID_DATA unset" in text and "--dataset-pvc" in text
    mounted = tmp_path / "data"
    (mounted / "cifar10").mkdir(parents=True)
    (mounted / "cifar10" / "train.npz").write_bytes(b"x")
    monkeypatch.setenv("NASLID_DATA", str(mounted))
    with pytest.raises(ValueError, match=r"transfer data: .*/data/imagenet/train does not exist"):
        validate_params(profile="cifar10")
    assert validate_params(profile="cifar10", transfer=False) == 4


def test_validate_params_is_never_retried():
    from naslid import steps

    assert steps.STEPS["validate-params"].reads_data  # it mounts the dataset volume ...
    assert not steps.STEPS["validate-params"].retried  # ... and fails at once


def test_object_store_data_is_listed(seaweedfs, monkeypatch):
    from naslid.store import open_store

    monkeypatch.setenv("MINIO_ENDPOINT", f"http://{seaweedfs.endpoint}")
    monkeypatch.setenv("MINIO_ACCESS_KEY", seaweedfs.settings().access_key)
    monkeypatch.setenv("MINIO_SECRET_KEY", seaweedfs.settings().secret_key)
    open_store("minio://naslid/datasets/cifar10").put_bytes("train.npz", b"x")
    cfg = params.check_params(
        {
            "profile": "cifar10",
            "dataset": "cifar10",
            "dataset_uri": "minio://naslid/datasets/cifar10",
        },
        max_rounds=4,
        local=True,
    )
    params.check_data(cfg, transfer=False)
    with pytest.raises(ValueError, match=r"holds no object \(transfer_uri\)"):
        params.check_data(
            params.check_params(
                {
                    "profile": "cifar10",
                    "dataset": "cifar10",
                    "dataset_uri": "minio://naslid/datasets/cifar10",
                    "transfer_uri": "minio://naslid/datasets/imagenet",
                },
                max_rounds=4,
                local=True,
            )
        )
