"""Running the compiled pipeline on one machine with ``kfp.local`` (what ``naslid run`` does).

:func:`run` loads ``pipelines/naslid.yaml`` with ``kfp.components.load_component_from_text``,
initialises ``kfp.local`` (SubprocessRunner in this interpreter, no venv; caching on; the
pipeline root under the run folder) and calls it. It watches every task as kfp.local runs
it: a progress bar and one line per finished step (executed or served from the cache, and
how long it took) on stderr, the steps' own logs in ``OUT/run.log``, and a record of every
task and its output artifacts in ``OUT/run.json`` (what ``naslid step --inputs OUT`` reads).

The watching wraps two functions of kfp.local 2.17.0 (``task_executor.execute_single_task``
and ``LocalCache.get``); kfp is pinned to that version (pyproject.toml). Retry policies are
dropped from the local copy of the pipeline unless asked for: a step failing on one machine
fails the same way again, and the cluster's back-off would only delay the error.

The run owns its step processes: each starts in a process group of its own (wrapping
``subprocess_task_handler.run_local_subprocess``) and with ``PR_SET_PDEATHSIG`` set; the
step's own Python process (a grandchild, under kfp's ``sh``) follows the run named in
``$NASLID_RUN_PID`` (:mod:`naslid.lifeline`), so a ``naslid run`` killed with SIGKILL takes
its steps with it. SIGINT / SIGTERM stop every step's
process group (SIGTERM, then SIGKILL after a grace period), start no further step and write
``run.json`` with ``status: INTERRUPTED`` and the steps that were running; the checkpoints of
an interrupted long step stay under the checkpoint root (keyed by the step's inputs), and a
re-run resumes it from them.
"""

from __future__ import annotations

import builtins
import contextlib
import io
import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from naslid import docker_runner
from naslid.lifeline import RUN_PID_ENV
from naslid.steps.runtime import THREADS_ENV

_SUFFIX = re.compile(r"(-\d+)+$")


@dataclass
class RunResult:
    """What a local run leaves: every task in completion order, the report and the best arch."""

    tasks: list[dict] = field(default_factory=list)
    seconds: float = 0.0
    best_arch: str | None = None
    report: str | None = None
    report_markdown: str | None = None
    record: Path | None = None


def step_name(component: str) -> str:
    """``comp-profile-lid-2`` -> ``profile-lid`` (the step a task's component runs)."""
    return _SUFFIX.sub("", component.removeprefix("comp-"))


def strip_retries(text: str) -> str:
    """The compiled pipeline without any task's ``retryPolicy``."""
    docs = [d for d in yaml.safe_load_all(text) if d is not None]
    spec = docs[0]
    dags = [spec["root"].get("dag", {})] + [
        c.get("dag", {}) for c in spec.get("components", {}).values()
    ]
    for dag in dags:
        for task in dag.get("tasks", {}).values():
            task.pop("retryPolicy", None)
    return yaml.safe_dump_all(docs, sort_keys=False)


def code_fingerprint(root: str | Path | None = None) -> str:
    """12 hex digits of SHA-256 over the Python source under ``root`` (default: naslid's),
    paths and contents."""
    import hashlib

    if root is None:
        import naslid

        root = Path(naslid.__file__).resolve().parent
    root = Path(root)
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        digest.update(
            path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes() + b"\0"
        )
    return digest.hexdigest()[:12]


def expected_tasks(rounds: int, transfer: bool) -> int:
    """Tasks one run executes: validate, data, pretrain, each round's fan-out/in, the search."""
    per_round = sum(2 ** (r - 1) + 1 + 2**r + 1 for r in range(1, rounds + 1))
    return 3 + per_round + 2 + int(transfer) + 1


def _plain(value: Any) -> Any:
    from kfp import dsl

    if isinstance(value, dsl.Artifact):
        return {"uri": value.uri, "type": type(value).schema_title, "metadata": value.metadata}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


class Interrupted(RuntimeError):
    """``naslid run`` was stopped by a signal; ``code`` is the exit status to use."""

    def __init__(self, message: str, code: int):
        super().__init__(message)
        self.code = code


# Run a step under PR_SET_PDEATHSIG=SIGKILL (survives exec): it dies when the thread of
# naslid run that started it does, even when naslid run is killed with SIGKILL.
_DIE_WITH_PARENT = (
    "import ctypes, os, signal, sys\n"
    "libc = ctypes.CDLL(None, use_errno=True)\n"
    "libc.prctl(1, signal.SIGKILL)\n"
    "if os.getppid() != int(sys.argv[1]): os._exit(137)\n"
    "os.execvp(sys.argv[2], sys.argv[2:])\n"
)


class _Watcher:
    """Records each task kfp.local executes; shows progress on ``stream``."""

    def __init__(self, total: int, stream, show: bool):
        from tqdm.auto import tqdm

        self.children: set[subprocess.Popen] = set()
        self.running: dict[str, float] = {}  # task name -> start time
        self.stopping: str | None = None  # the signal's name once interrupted
        self.interrupted: dict | None = None  # what was running, which processes were stopped
        self.lock = (
            threading.RLock()
        )  # the SIGINT/SIGTERM handler runs on the thread that may hold it
        self.local = threading.local()
        self.tasks: list[dict] = []
        self.t0 = time.perf_counter()
        self.bar = tqdm(
            total=total,
            desc="naslid",
            unit="step",
            file=stream,
            disable=not show,
            dynamic_ncols=True,
        )
        self.stream = stream
        self.show = show

    def done(
        self, task_name: str, component: str, seconds: float, ok: bool, cached: bool, outputs: dict
    ) -> None:
        rec = {
            "task": task_name,
            "step": step_name(component),
            "component": component,
            "status": "SUCCESS" if ok else "FAILURE",
            "cached": cached,
            "seconds": round(seconds, 3),
            "finished": round(time.perf_counter() - self.t0, 3),
            "outputs": {k: _plain(v) for k, v in (outputs or {}).items()},
        }
        with self.lock:
            self.tasks.append(rec)
            how = "cached" if cached else ("done" if ok else "FAILED")
            if self.show:
                self.bar.write(f"  {rec['step']:<22} {how:<7} {seconds:7.1f}s", file=self.stream)
            self.bar.update(1)

    def close(self) -> None:
        if self.bar.total is not None and self.bar.n < self.bar.total and self.tasks:
            self.bar.total = self.bar.n  # fewer tasks than estimated (a condition skipped some)
        self.bar.close()


@contextlib.contextmanager
def _instrumented(watcher: _Watcher) -> Iterator[None]:
    from kfp.local import cache as kcache
    from kfp.local.orchestrator import task_executor

    orig_exec = task_executor.execute_single_task
    orig_get = kcache.LocalCache.get

    def get(self, key):  # noqa: ANN001 - kfp's signature
        out = orig_get(self, key)
        watcher.local.hit = out is not None
        return out

    def execute(*args, **kwargs):
        from kfp.local import status as kstatus

        task_name = kwargs.get("task_name", args[0] if args else "?")
        task_spec = kwargs.get("task_spec", args[1] if len(args) > 1 else None)
        component = task_spec.component_ref.name if task_spec is not None else task_name
        if watcher.stopping:  # interrupted: start nothing new
            return {}, kstatus.Status.FAILURE
        watcher.local.hit = False
        t0 = time.perf_counter()
        with watcher.lock:
            watcher.running[task_name] = time.time()
        try:
            outputs, status = orig_exec(*args, **kwargs)
        finally:
            with watcher.lock:
                watcher.running.pop(task_name, None)
        if watcher.stopping:
            return outputs, status

        watcher.done(
            task_name,
            component,
            time.perf_counter() - t0,
            status == kstatus.Status.SUCCESS,
            bool(getattr(watcher.local, "hit", False)),
            outputs,
        )
        return outputs, status

    from kfp.local import subprocess_task_handler as handler

    orig_sub = handler.run_local_subprocess

    def run_local_subprocess(full_command, env_vars=None):  # kfp 2.17.0's, owning the child
        env = {**os.environ, **(env_vars or {}), RUN_PID_ENV: str(os.getpid())}
        if watcher.stopping:
            return 1
        command = [sys.executable, "-c", _DIE_WITH_PARENT, str(os.getpid()), *full_command]
        with subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
            env=env,
            start_new_session=True,  # its own process group, stopped by naslid run
        ) as process:
            with watcher.lock:
                watcher.children.add(process)
            try:
                if process.stdout:
                    for line in iter(process.stdout.readline, ""):
                        print(line, end="")
                    print("\n")
                return process.wait()
            finally:
                with watcher.lock:
                    watcher.children.discard(process)

    task_executor.execute_single_task = execute
    kcache.LocalCache.get = get
    handler.run_local_subprocess = run_local_subprocess
    try:
        yield
    finally:
        task_executor.execute_single_task = orig_exec
        kcache.LocalCache.get = orig_get
        handler.run_local_subprocess = orig_sub


def _stop_children(watcher: _Watcher, grace: float = 10.0) -> list[int]:
    """SIGTERM every step's process group, SIGKILL what is left after ``grace`` seconds."""
    with watcher.lock:
        children = list(watcher.children)
    for proc in children:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    for proc in children:
        try:
            proc.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)  # the group: the step and anything it started
    docker_runner.stop_all(grace)  # step containers (--runner docker)
    return [p.pid for p in children]


def _interrupt(watcher: _Watcher) -> None:
    """Note the running steps, then stop their processes (before anything waits on them)."""
    if watcher.interrupted is not None:
        return
    with watcher.lock:
        running = sorted(watcher.running)
    watcher.interrupted = {
        "signal": watcher.stopping,
        "running": running,
        "stopped_pids": _stop_children(watcher),
    }


@contextlib.contextmanager
def _signals(watcher: _Watcher) -> Iterator[None]:
    """SIGINT / SIGTERM: stop the steps and unwind the run (KeyboardInterrupt) once."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):  # noqa: ANN001
        if watcher.stopping:
            return
        watcher.stopping = signal.Signals(signum).name
        _interrupt(watcher)
        raise KeyboardInterrupt

    before = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in before.items():
            signal.signal(sig, old)


class _Tee(io.TextIOBase):
    def __init__(self, *streams):
        self.streams = streams

    def write(self, text: str) -> int:
        for s in self.streams:
            s.write(text)
        return len(text)

    def flush(self) -> None:
        for s in self.streams:
            s.flush()


def _tail(path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


@contextlib.contextmanager
def _process_state() -> Iterator[None]:
    """Every process-wide setting a local run changes, restored when it ends:

    - ``$NASLID_THREADS`` = 1 unless set: kfp.local runs up to two steps at once, and one torch
      thread each keeps two cores from being oversubscribed (two threads per step ran 5-30x
      slower on a busy 2-core machine);
    - ``builtins.print`` and the root logger: kfp.local indents task output by swapping print
      per task and swaps the root logger's handlers; two tasks at once can leave the swapped
      ones in place (pointing at run.log, closed after the run)."""
    threads_before = os.environ.get(THREADS_ENV)
    os.environ.setdefault(THREADS_ENV, "1")
    original_print = builtins.print
    root_logger = logging.getLogger()
    level, handlers = root_logger.level, list(root_logger.handlers)
    try:
        yield
    finally:
        builtins.print = original_print
        root_logger.setLevel(level)
        root_logger.handlers[:] = handlers
        if threads_before is None:
            os.environ.pop(THREADS_ENV, None)


def run(
    pipeline: str | Path,
    arguments: dict,
    out: Path,
    *,
    runner: Any = None,
    image: str | None = None,
    cache: bool = True,
    retries: bool = False,
    verbose: bool = False,
    progress: bool = True,
) -> RunResult:
    """Run the compiled ``pipeline`` with ``arguments`` under ``kfp.local``; results in ``out``.
    With ``image`` (the one ``pipeline`` names), every step runs in a container of that local
    image (naslid.docker_runner), and the image's id keys the cache as the source does."""
    from kfp import local
    from kfp.components import load_component_from_text

    from naslid import config

    text = Path(pipeline).read_text()
    if not retries:
        text = strip_retries(text)
    out = Path(out).resolve()
    key = code_fingerprint()
    if image is not None:  # steps in containers of ``image`` (the pipeline must name it)
        key = f"{key}-{docker_runner.image_id(image).removeprefix('sha256:')[:12]}"
        runner = runner or local.DockerRunner()
    component = load_component_from_text(text)
    out.mkdir(parents=True, exist_ok=True)
    # The cache key covers the component code in the YAML, not the library it calls: one cache
    # folder per version of naslid's source, so a code change never serves stale results.
    local.init(
        runner=runner or local.SubprocessRunner(use_venv=False),
        pipeline_root=str(out / "pipeline_root"),
        enable_caching=cache,
        cache_root=str(out / "cache" / key),
        raise_on_error=True,
    )
    prof = config.resolve(
        str(arguments.get("profile", config.DEFAULT_PROFILE)),
        {"rounds": arguments.get("rounds", -1)},
    )
    total = expected_tasks(prof.rounds, bool(arguments.get("transfer", True)))
    log_path, record = out / "run.log", out / "run.json"
    err = sys.stderr
    from naslid.io import write_json

    # a run killed with SIGKILL leaves this record: RUNNING, with a pid that no longer exists
    write_json(
        record,
        {
            "status": "RUNNING",
            "pid": os.getpid(),
            "started": time.time(),
            "root": str(out.resolve()),
            "arguments": arguments,
        },
    )
    watcher = _Watcher(total, err, progress)
    result = RunResult(record=record)
    t0 = time.perf_counter()
    failure: BaseException | None = None
    with open(log_path, "w") as log, warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*no effect in the current local runner.*")
        warnings.filterwarnings("ignore", message=r".*non-Python base image.*")
        sink = _Tee(log, sys.stdout) if verbose else log
        try:
            with (
                _process_state(),
                _signals(watcher),
                _instrumented(watcher),
                docker_runner.patched(docker_runner.container_settings(out)),
                contextlib.redirect_stdout(sink),
            ):
                component(**arguments)
        except KeyboardInterrupt as exc:  # our handler, or Ctrl-C outside the main thread's
            watcher.stopping = watcher.stopping or "SIGINT"
            _interrupt(watcher)
            failure = exc
        except Exception as exc:  # kfp.local raises RuntimeError naming the failed task
            failure = exc
            if watcher.stopping:
                _interrupt(watcher)
        finally:
            watcher.close()
    result.seconds = time.perf_counter() - t0
    result.tasks = watcher.tasks
    for rec in result.tasks:
        if rec["status"] != "SUCCESS":
            continue
        if rec["step"] == "evolutionary-search":
            result.best_arch = rec["outputs"].get("Output")
        if rec["step"] == "report":
            result.report = rec["outputs"].get("report_html", {}).get("uri")
            result.report_markdown = rec["outputs"].get("report_md", {}).get("uri")
    # Convenience copies beside run.json (the artifacts keep KFP's extension-less names).
    from naslid.io import atomic_write_bytes

    for attr, name in (("report", "report.html"), ("report_markdown", "report.md")):
        src = getattr(result, attr)
        if src and Path(src).is_file():
            atomic_write_bytes(out / name, Path(src).read_bytes())
            setattr(result, attr, str(out / name))
    summary = {
        "root": str(out.resolve()),  # where the run was: a copy rebases the artifacts' paths
        "pipeline": str(Path(pipeline).resolve()),
        "arguments": arguments,
        "cache": cache,
        "seconds": round(result.seconds, 3),
        "status": "INTERRUPTED" if watcher.stopping else ("FAILURE" if failure else "SUCCESS"),
        "interrupted": watcher.interrupted,
        "best_arch": result.best_arch,
        "report": result.report,
        "report_markdown": result.report_markdown,
        "tasks": result.tasks,
    }
    write_json(record, summary)
    if watcher.stopping:
        sig = signal.Signals[watcher.stopping]
        info = watcher.interrupted or {"running": [], "stopped_pids": []}
        running = ", ".join(step_name(t) for t in info["running"]) or "none"
        raise Interrupted(
            f"interrupted by {sig.name}: stopped {len(info['stopped_pids'])} step process(es) (running: "
            f"{running}); {record} records the state, run again to resume",
            128 + int(sig),
        )
    if failure is not None:
        failed = [t["step"] for t in result.tasks if t["status"] != "SUCCESS"]
        where = f"step {failed[0]} failed" if failed else f"the pipeline failed ({failure})"
        raise RuntimeError(f"{where}; its log is in {log_path}. Last lines:\n{_tail(log_path)}")
    return result
