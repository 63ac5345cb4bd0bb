"""The few-shot benchmark's GPU command, run end to end on the CPU with its quick setting:
the same stages (pretraining, rounds of profiling, splitting and fine-tuning per criterion,
scoring, search, the split cost), on synthetic data in minutes (slow)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_gpu_command_runs_its_quick_setting_on_the_cpu(tmp_path):
    env = {**os.environ, "QUICK": "1", "PY": sys.executable, "RESULTS": str(tmp_path)}
    done = subprocess.run(
        ["bash", str(REPO / "bench" / "gpu_fewshot.sh")],
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    machine = json.loads((tmp_path / "machine.json").read_text())
    assert machine["torch"]
    report = json.loads((tmp_path / "nb201_fewshot-quick.json").read_text())
    assert report["criteria"] == [
        "lid", "oneshot", "lid-separability", "random-0", "random-1", "gradient"
    ]  # fmt: skip
    seed = report["per_seed"]["0"]
    for name in report["criteria"]:
        corr = seed[name]["correlations"]
        assert {"top50", "top100", "top150"} <= set(corr)
        uniform = [k for k in corr if k.startswith("uniform")]
        assert len(uniform) == 1 and "uniformly" in corr[uniform[0]]["covers"]
        expected = 1 if name == "oneshot" else 4  # R=2: four sub-supernets
        assert seed[name]["sub_supernets"] == expected
    assert seed["lid"]["decisions"]["r"]["edge_rule"] == "partition"
    assert seed["lid-separability"]["decisions"]["r"]["edge_rule"] == "separability"
    edges = {seed["lid"]["decisions"][n]["edge"] for n in ("r0", "r1")}
    assert seed["lid"]["decisions"]["r"]["edge"] not in edges  # never-partitioned edges only
    assert "minus_oneshot" in report["summary"]["lid"]["top50"]
    cpu = report["cpu_s_per_seed"]["0"]  # a fresh run times every epoch it trains
    assert cpu["epochs_timed"] == cpu["epochs"] >= 2 + 2 + 6  # pretraining, oneshot, lid
    assert cpu["train_recorded_s"] > 0 and cpu["score_and_search_s"] > 0
    again = tmp_path / "finished.json"  # a later call, training nothing, reports the same
    subprocess.run(
        [sys.executable, str(REPO / "bench" / "nb201_fewshot.py"), "--quick", "--finished-only",
         "--seeds", "0", "--work", str(tmp_path / "work"), "--out", str(again)],
        check=True, capture_output=True, timeout=600,
    )  # fmt: skip
    summary = json.loads(again.read_text())
    assert summary["per_seed"] == report["per_seed"] and summary["summary"] == report["summary"]
    assert summary["cpu_s_per_seed"] == report["cpu_s_per_seed"]
    drift = tmp_path / "drift.json"  # the same proxy rebuilt from the kept models: same taus
    subprocess.run(
        [sys.executable, str(REPO / "bench" / "nb201_fewshot_drift.py"), "--quick",
         "--seeds", "0", "--work", str(tmp_path / "work"), "--out", str(drift)],
        check=True, capture_output=True, timeout=600,
    )  # fmt: skip
    rows = json.loads(drift.read_text())["per_seed"]["0"]
    assert set(report["criteria"]) <= set(rows)
    for name in report["criteria"]:
        assert rows[name]["table"] == pytest.approx(rows[name]["recorded"], abs=1e-9)
        assert -1 <= rows[name]["pretrained"] <= 1
    assert rows["oneshot"]["oneshot"] == pytest.approx(1.0)
    cost = json.loads((tmp_path / "split_cost-quick.json").read_text())
    assert cost
