"""`naslid run` owns its step processes: SIGTERM / SIGKILL stop them, run.json says what
was interrupted, and a re-run resumes the interrupted step from its checkpoints."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _start_run(out: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "naslid",
            "run",
            "--profile",
            "smoke",
            "--out",
            str(out),
            "--param",
            "rounds=1",
        ],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for_checkpoint(out: Path, proc: subprocess.Popen, timeout: float = 300) -> Path:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        found = sorted(out.glob("checkpoints/pretrain-supernet-*/ckpt/epoch-*.pt"))
        if found:
            return found[0].parents[1]
        if proc.poll() is not None:
            raise AssertionError(f"run ended early: {proc.stderr.read()}")
        time.sleep(0.2)
    raise AssertionError("pretrain-supernet wrote no checkpoint")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is dead for our purposes
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def _step_pids(run_pid: int) -> list[int]:
    """Processes whose command line runs a kfp.local task, started by this run: its children
    and their descendants (the step's Python process runs under kfp's ``sh``)."""
    parent, commands = {}, {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            cmd = (d / "cmdline").read_bytes().split(b"\0")
            stat = (d / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parent[int(d.name)], commands[int(d.name)] = int(stat[1]), cmd
    pids = []
    for pid, cmd in commands.items():
        up = parent.get(pid)
        while up not in (None, 0, 1, run_pid):
            up = parent.get(up)
        if up == run_pid and any(b"kfp" in c or b"executor" in c for c in cmd):
            pids.append(pid)
    return pids


def test_sigterm_stops_every_step_and_records_the_state(tmp_path):
    out = tmp_path / "run"
    proc = _start_run(out)
    try:
        ckpt = _wait_for_checkpoint(out, proc)
        steps = _step_pids(proc.pid)
        assert steps, "no step process found"
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 128 + signal.SIGTERM
    line = err.strip().splitlines()[-1]
    assert line.startswith("naslid run: interrupted by SIGTERM: stopped 1 step process(es)")
    assert "pretrain-supernet" in line
    record = json.loads((out / "run.json").read_text())
    assert record["status"] == "INTERRUPTED"
    assert record["interrupted"]["signal"] == "SIGTERM"
    assert record["interrupted"]["running"] == ["pretrain-supernet"]
    assert not any(_alive(p) for p in steps + record["interrupted"]["stopped_pids"])
    assert list(ckpt.glob("ckpt/epoch-*.pt"))  # kept for the re-run


@pytest.mark.slow
def test_sigkill_of_the_run_takes_its_steps_with_it(tmp_path):
    out = tmp_path / "run"
    proc = _start_run(out)
    try:
        _wait_for_checkpoint(out, proc)
        steps = _step_pids(proc.pid)
        assert steps
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        deadline = time.monotonic() + 30
        while any(_alive(p) for p in steps) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(_alive(p) for p in steps)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert json.loads((out / "run.json").read_text())["status"] == "RUNNING"


@pytest.mark.slow
def test_rerun_resumes_the_interrupted_step_and_cleans_its_checkpoints(tmp_path):
    out = tmp_path / "run"
    proc = _start_run(out)
    try:
        ckpt = _wait_for_checkpoint(out, proc)
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    again = _start_run(tmp_path / "run")
    _, err = again.communicate(timeout=1800)
    assert again.returncode == 0, err[-2000:]
    log = (out / "run.log").read_text()
    assert "pretrain-supernet: resumed after epoch" in log
    assert not ckpt.exists()  # the completed step removed its checkpoints
    assert list((out / "checkpoints").iterdir()) == []
