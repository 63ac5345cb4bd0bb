"""A step process ends with the ``naslid run`` that started it, however that run ends.

``naslid run`` starts each step through kfp.local as ``sh -ec '... python3 -m
kfp.dsl.executor_main ...'``: the step's Python process is a grandchild. The run sets
``PR_SET_PDEATHSIG`` on the child it starts (:mod:`naslid.kfp_local`), but the kernel clears
that setting in every forked child, so when the run was killed with SIGKILL the shell died
and the step went on training as an orphan (holding its checkpoint lock, so that a re-run
was refused). The run therefore also names itself in ``$NASLID_RUN_PID``, and the step,
first thing, follows it (:func:`follow_run`): ``PR_SET_PDEATHSIG`` on its own process (Linux:
SIGKILL when its parent, the shell, dies) and a watchdog thread that ends the process once
the run's pid is gone (any OS; within :data:`POLL_SECONDS`). Killing a step loses nothing
but the epoch in progress: checkpoints and outputs are written atomically. On a cluster the
variable is unset and nothing changes (the pod's lifetime is Kubernetes' business).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
import threading

RUN_PID_ENV = "NASLID_RUN_PID"
POLL_SECONDS = 1.0
_PR_SET_PDEATHSIG = 1


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    try:  # a zombie (killed, not yet reaped) is gone too
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return False


def _end() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def _watch(pid: int, stop: threading.Event) -> None:
    while not stop.wait(POLL_SECONDS):
        if _gone(pid):
            print(
                f"naslid: the run (pid {pid}) that started this step is gone; stopping",
                file=sys.stderr,
            )
            _end()


def follow_run(environ: dict | None = None) -> threading.Event | None:
    """When ``$NASLID_RUN_PID`` names the run that started this process, end this process
    when that run ends (see the module docstring); returns the watchdog's stop event, or
    ``None`` when there is no run to follow. Ends at once if the run is already gone."""
    value = (os.environ if environ is None else environ).get(RUN_PID_ENV)
    if not value:
        return None
    try:
        pid = int(value)
    except ValueError:
        raise ValueError(f"${RUN_PID_ENV}: expected a process id, got {value!r}") from None
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if _gone(pid):  # died before the watch began
        _end()
    stop = threading.Event()
    threading.Thread(target=_watch, args=(pid, stop), daemon=True, name="naslid-lifeline").start()
    return stop
