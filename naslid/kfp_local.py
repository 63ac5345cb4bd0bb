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
"""

from __future__ import annotations

import builtins
import contextlib
import io
import logging
import os
import re
import sys
import threading
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from naslid.steps import THREADS_ENV

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


class _Watcher:
    """Records each task kfp.local executes; shows progress on ``stream``."""

    def __init__(self, total: int, stream, show: bool):
        from tqdm.auto import tqdm

        self.lock = threading.Lock()
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
        task_name = kwargs.get("task_name", args[0] if args else "?")
        task_spec = kwargs.get("task_spec", args[1] if len(args) > 1 else None)
        component = task_spec.component_ref.name if task_spec is not None else task_name
        watcher.local.hit = False
        t0 = time.perf_counter()
        outputs, status = orig_exec(*args, **kwargs)
        from kfp.local import status as kstatus

        watcher.done(
            task_name,
            component,
            time.perf_counter() - t0,
            status == kstatus.Status.SUCCESS,
            bool(getattr(watcher.local, "hit", False)),
            outputs,
        )
        return outputs, status

    task_executor.execute_single_task = execute
    kcache.LocalCache.get = get
    try:
        yield
    finally:
        task_executor.execute_single_task = orig_exec
        kcache.LocalCache.get = orig_get


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


def run(
    pipeline: str | Path,
    arguments: dict,
    out: Path,
    *,
    runner: Any = None,
    cache: bool = True,
    retries: bool = False,
    verbose: bool = False,
    progress: bool = True,
) -> RunResult:
    """Run the compiled ``pipeline`` with ``arguments`` under ``kfp.local``; results in ``out``."""
    from kfp import local
    from kfp.components import load_component_from_text

    from naslid import config

    text = Path(pipeline).read_text()
    if not retries:
        text = strip_retries(text)
    component = load_component_from_text(text)
    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    # kfp.local runs up to two steps at once: one torch thread each keeps two cores from being
    # oversubscribed (two threads per step ran 5-30x slower on a busy 2-core machine).
    threads_before = os.environ.get(THREADS_ENV)
    os.environ.setdefault(THREADS_ENV, "1")
    # The cache key covers the component code in the YAML, not the library it calls: one cache
    # folder per version of naslid's source, so a code change never serves stale results.
    local.init(
        runner=runner or local.SubprocessRunner(use_venv=False),
        pipeline_root=str(out / "pipeline_root"),
        enable_caching=cache,
        cache_root=str(out / "cache" / code_fingerprint()),
        raise_on_error=True,
    )
    prof = config.resolve(
        str(arguments.get("profile", "smoke")), {"rounds": arguments.get("rounds", -1)}
    )
    total = expected_tasks(prof.rounds, bool(arguments.get("transfer", True)))
    log_path, record = out / "run.log", out / "run.json"
    err = sys.stderr
    # kfp.local indents task output by swapping builtins.print per task and swaps the root
    # logger's handlers; two tasks at once can leave the swapped ones in place (pointing at
    # run.log, closed after the run), so put the originals back afterwards.
    original_print = builtins.print
    root_logger = logging.getLogger()
    original_logging = (root_logger.level, list(root_logger.handlers))
    watcher = _Watcher(total, err, progress)
    result = RunResult(record=record)
    t0 = time.perf_counter()
    failure: BaseException | None = None
    with open(log_path, "w") as log, warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*no effect in the current local runner.*")
        warnings.filterwarnings("ignore", message=r".*non-Python base image.*")
        sink = _Tee(log, sys.stdout) if verbose else log
        try:
            with _instrumented(watcher), contextlib.redirect_stdout(sink):
                component(**arguments)
        except Exception as exc:  # kfp.local raises RuntimeError naming the failed task
            failure = exc
        finally:
            watcher.close()
            builtins.print = original_print
            root_logger.setLevel(original_logging[0])
            root_logger.handlers[:] = original_logging[1]
            if threads_before is None:
                os.environ.pop(THREADS_ENV, None)
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
        "pipeline": str(Path(pipeline).resolve()),
        "arguments": arguments,
        "cache": cache,
        "seconds": round(result.seconds, 3),
        "status": "FAILURE" if failure else "SUCCESS",
        "best_arch": result.best_arch,
        "report": result.report,
        "report_markdown": result.report_markdown,
        "tasks": result.tasks,
    }
    from naslid.io import write_json

    write_json(record, summary)
    if failure is not None:
        failed = [t["step"] for t in result.tasks if t["status"] != "SUCCESS"]
        where = f"step {failed[0]} failed" if failed else f"the pipeline failed ({failure})"
        raise RuntimeError(f"{where}; its log is in {log_path}. Last lines:\n{_tail(log_path)}")
    return result


def run_artifacts(root: str | Path) -> list[tuple[Path, dict]]:
    """The artifacts of a run folder, newest first: those ``run.json`` lists (the last local
    run, cached steps included), else every artifact found under ``root``."""
    from naslid import rerun, steps
    from naslid.io import read_json

    root = Path(root)
    record = root / "run.json"
    if not record.is_file():
        return rerun.find_artifacts(root)
    found: dict[Path, dict] = {}
    for task in read_json(record).get("tasks", []):
        for value in task.get("outputs", {}).values():
            if isinstance(value, dict) and value.get("uri"):
                d = Path(value["uri"])
                if (d / steps.META).is_file():
                    meta = read_json(d / steps.META)
                    if isinstance(meta, dict) and "artifact" in meta:
                        found[d] = meta
    return sorted(found.items(), key=lambda item: -float(item[1].get("created", 0.0)))
