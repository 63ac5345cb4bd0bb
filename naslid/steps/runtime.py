"""What every step does around its work: logging, the device and its threads, seeding, staging
remote data, and the epoch checkpoints of the long steps (where they live, their key)."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from naslid.artifacts import META, PathLike, on_success
from naslid.io import atomic_write_bytes, folder_files


def log(msg: str) -> None:
    print(f"[naslid] {msg}", flush=True)


def resolve(profile: str, **overrides: Any):
    """The profile ``profile`` with the step's non-default parameters applied."""
    from naslid import config

    return config.resolve(profile, overrides)


THREADS_ENV = "NASLID_THREADS"
"""Set to cap torch's CPU threads per step (naslid run sets 1: two steps share two cores)."""


def apply_thread_limit(environ: dict | None = None) -> None:
    """Cap torch's CPU threads at ``$NASLID_THREADS`` when set (the step registry calls this
    once before a step runs; it is the one place a step changes process-wide settings)."""
    threads = (os.environ if environ is None else environ).get(THREADS_ENV, "")
    if not threads:
        return
    if not threads.isdigit() or int(threads) < 1:
        raise ValueError(f"{THREADS_ENV}: expected a positive integer, got {threads!r}")
    import torch

    torch.set_num_threads(int(threads))


def step_device():
    """The device a step's networks run on (CUDA when there is one)."""
    from naslid.distributed import resolve_device

    return resolve_device("auto")


def seed_all(seed: int) -> None:
    import random

    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


@contextlib.contextmanager
def local_copy(uri: str, what: str) -> Iterator[Path | None]:
    """A local directory for ``uri``: itself, or a temporary copy of a minio:// / s3:// prefix."""
    from naslid import store

    if not uri:
        yield None
        return
    if not store.is_remote(uri):
        yield Path(uri).expanduser()
        return
    with tempfile.TemporaryDirectory(prefix=f"naslid-{what}-") as tmp:
        files = store.download_prefix(store.open_store(uri), "", tmp)
        if not files:
            raise FileNotFoundError(f"{what}: {uri} holds no object")
        log(f"{what}: copied {len(files)} objects from {uri}")
        yield Path(tmp)


def copy_file(src: Path, dst: Path) -> None:
    atomic_write_bytes(dst, src.read_bytes())


# --------------------------------------------------------------------------- checkpoints
_VOLATILE = (
    "created",
    "sealed",
    "seconds",
    "peak_memory_MB",
    "peak_memory_of",
    "run_id",
    "made_from",
)
"""meta.json fields that differ between two executions of a deterministic step (its time,
its run, its parents' identities, which hold their times): not part of an input's content."""


def _content_digest(path: Path, digest) -> None:
    """Feed every file under ``path`` (relative name and bytes) into ``digest``, its meta.json
    files without their :data:`_VOLATILE` fields."""
    files = [(path.name, path)] if path.is_file() else folder_files(path)
    for rel, f in files:
        data = f.read_bytes()
        if f.name == META:
            try:
                meta = json.loads(data)
            except ValueError:
                meta = None
            if isinstance(meta, dict):
                stable = {k: v for k, v in meta.items() if k not in _VOLATILE}
                data = json.dumps(stable, sort_keys=True).encode()
        digest.update(rel.encode() + b"\0" + hashlib.sha256(data).digest())


def input_key(step: str, inputs: Sequence[PathLike], **params) -> str:
    """16 hex digits naming one execution of ``step``: SHA-256 over its name, parameters and
    the content of its input artifacts. A re-run of the same step on the same inputs (a new
    run folder, a new KFP run id) finds the checkpoints an interrupted one left."""
    digest = hashlib.sha256(step.encode() + b"\0")
    digest.update(json.dumps(params, sort_keys=True, default=str).encode() + b"\0")
    for item in inputs:
        path = Path(item)
        if not path.exists():
            raise FileNotFoundError(f"{step}: input {path} not found")
        _content_digest(path, digest)
        digest.update(b"\1")
    return digest.hexdigest()[:16]


def checkpoint_location(root: str, step: str, inputs: Sequence[PathLike], **params) -> str:
    """``ROOT/STEP-KEY`` (see :func:`input_key`); ``''`` without a root (inside the output)."""
    if not root:
        return ""
    return f"{str(root).rstrip('/')}/{step}-{input_key(step, inputs, **params)}"


def _remove_checkpoints(uri: str) -> None:
    from naslid import store

    if not store.is_remote(uri):
        shutil.rmtree(Path(uri).expanduser(), ignore_errors=True)
        return
    bucket = store.open_store(uri)
    for key in bucket.list():
        bucket.delete(key)


@contextlib.contextmanager
def checkpoints(checkpoint_uri: str, out: Path, name: str = "checkpoints") -> Iterator[str]:
    """The checkpoint location of a long step; removed once the step has succeeded (only
    then: an interrupted or failed step leaves them for its re-run), so neither artifacts
    nor the checkpoint root pile up optimiser states."""
    location = checkpoint_uri or str(out / name)
    yield location
    remove = functools.partial(_remove_checkpoints, location)
    if not checkpoint_uri or not on_success(remove):  # inside the artifact: gone before sealing
        remove()
