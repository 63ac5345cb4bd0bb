"""A step started by ``naslid run`` (a grandchild, under kfp's ``sh``) dies with the run,
even when the run is killed with SIGKILL (issue 22, point 1)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from naslid.lifeline import RUN_PID_ENV, follow_run

REPO = Path(__file__).resolve().parents[1]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _run_and_step(tmp_path: Path, follow: bool) -> tuple[subprocess.Popen, int]:
    """A stand-in for ``naslid run``: it starts ``sh -ec 'python3 STEP; true'`` the way
    kfp_local does (PR_SET_PDEATHSIG on the shell, $NASLID_RUN_PID set), the step writes its
    pid and sleeps. Returns the run and the step's pid."""
    pidfile = tmp_path / "step.pid"
    step = textwrap.dedent(
        f"""
        import os, time
        from naslid.lifeline import follow_run
        if {follow}:
            follow_run()
        open({str(pidfile)!r}, "w").write(str(os.getpid()))
        time.sleep(60)
        """
    )
    run = textwrap.dedent(
        f"""
        import os, subprocess, sys, time
        from naslid.kfp_local import _DIE_WITH_PARENT
        cmd = ["sh", "-ec", {sys.executable!r} + ' -c "$0"; true', {step!r}]
        env = {{**os.environ, {RUN_PID_ENV!r}: str(os.getpid())}}
        subprocess.Popen([sys.executable, "-c", _DIE_WITH_PARENT, str(os.getpid()), *cmd], env=env)
        time.sleep(60)
        """
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", run], cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}
    )
    deadline = time.monotonic() + 30
    while not pidfile.exists() or not pidfile.read_text():
        assert time.monotonic() < deadline, "the step did not start"
        time.sleep(0.05)
    return proc, int(pidfile.read_text())


@pytest.mark.parametrize("follow", [True, False])
def test_a_step_dies_with_its_sigkilled_run(tmp_path, follow):
    proc, step = _run_and_step(tmp_path, follow)
    try:
        time.sleep(1.5)  # past one watchdog poll: a live run is followed, not left
        assert _alive(step)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        deadline = time.monotonic() + 5
        while _alive(step) and time.monotonic() < deadline:
            time.sleep(0.05)
        # the control (no follow_run) shows the orphan the issue found
        assert _alive(step) is not follow
    finally:
        if _alive(step):
            os.kill(step, signal.SIGKILL)


def test_follow_run_needs_a_pid_and_does_nothing_without_one():
    assert follow_run({}) is None
    with pytest.raises(ValueError, match=rf"^\${RUN_PID_ENV}: expected a process id"):
        follow_run({RUN_PID_ENV: "abc"})
