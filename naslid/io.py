"""Atomic, self-checking files: checkpoints, state dicts, JSON and tables.

Loading uses ``torch.load(weights_only=True)`` (tensors, containers, plain values and the numpy
types of an RNG state): write access to a bucket must not be code execution in every pod.

Every write goes to a temporary name in the target's directory and is renamed into place, so
a killed process leaves either the old file or the new one, never half of one. Tensor files
end with a footer (magic, payload length, SHA-256): a truncated or corrupt file is refused
with a message naming it, before ``torch.load`` sees a byte of it. Artifacts are sealed
through their folder's ``meta.json`` (:func:`seal_meta`: the SHA-256 of every other file,
weights included, and of itself; an unkeyed hash, see there), checked on load by
:func:`verify_meta`: a file changed, missing or added after sealing, or a ``meta.json``
without a seal, is refused with one line naming it.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import pickle
import secrets
import struct
from pathlib import Path
from typing import Any

import torch

_MAGIC = b"NASLIDv1"
_FOOTER = struct.Struct("<8sQ32s")  # magic, payload length, sha256


class CorruptFileError(RuntimeError):
    """A file that is truncated, corrupt or not written by naslid."""


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically: a hidden temporary beside it, fsynced, then
    renamed over it. The temporary is created with mode 0666 less the process umask (what
    ``open()`` gives; mkstemp's 0600 would be unreadable to other pods' users)."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # a parent is a file (File exists / Not a directory), read-only ...
        raise OSError(f"{path}: cannot create its folder ({exc.strerror})") from None
    while True:
        tmp = path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            break
        except FileExistsError:
            continue
        except OSError as exc:
            raise OSError(f"{path}: cannot be written ({exc.strerror})") from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:  # e.g. no space left on device: say which file
        tmp.unlink(missing_ok=True)
        raise OSError(f"{path}: cannot be written ({exc.strerror})") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def seal(payload: bytes) -> bytes:
    """``payload`` followed by the footer that :func:`unseal` checks."""
    return payload + _FOOTER.pack(_MAGIC, len(payload), hashlib.sha256(payload).digest())


def unseal(data: bytes, name: str = "<bytes>") -> bytes:
    """The payload of sealed bytes; raises :class:`CorruptFileError` naming ``name``."""
    if len(data) < _FOOTER.size:
        raise CorruptFileError(f"{name}: truncated ({len(data)} bytes, no naslid footer)")
    magic, length, digest = _FOOTER.unpack(data[-_FOOTER.size :])
    if magic != _MAGIC:
        raise CorruptFileError(f"{name}: truncated or not a naslid checkpoint (footer missing)")
    payload = data[: -_FOOTER.size]
    if len(payload) != length:
        raise CorruptFileError(f"{name}: truncated ({len(payload)} of {length} bytes)")
    if hashlib.sha256(payload).digest() != digest:
        raise CorruptFileError(f"{name}: corrupt (checksum mismatch)")
    return payload


def save_torch(obj: Any, path: str | os.PathLike) -> Path:
    """``torch.save`` to ``path`` atomically, with a checksum footer."""
    buf = io.BytesIO()
    torch.save(obj, buf)
    return atomic_write_bytes(path, seal(buf.getvalue()))


def torch_to_bytes(obj: Any) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return seal(buf.getvalue())


def _numpy_globals() -> list:
    """numpy's RNG state (``np.random.get_state()``: a uint32 array) in training checkpoints."""
    import numpy as np

    try:
        from numpy._core.multiarray import _reconstruct
    except ImportError:  # numpy < 2
        from numpy.core.multiarray import _reconstruct
    return [_reconstruct, np.ndarray, np.dtype, type(np.dtype(np.uint32))]


def torch_from_bytes(
    data: bytes, name: str = "<bytes>", map_location: str | torch.device = "cpu"
) -> Any:
    """Unseal and load with ``weights_only=True``: tensors, containers and plain values,
    plus the numpy types of an RNG state; anything else (a pickled class or function, which
    would run code on load) is refused with a :class:`CorruptFileError` naming ``name``."""
    payload = unseal(data, name)
    try:
        with torch.serialization.safe_globals(_numpy_globals()):
            return torch.load(io.BytesIO(payload), map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CorruptFileError(
            f"{name}: refused: holds objects other than tensors and plain values ({first})"
        ) from None


def load_torch(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> Any:
    """Load a file written by :func:`save_torch`; a damaged file raises, never half-loads."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such checkpoint")
    return torch_from_bytes(path.read_bytes(), str(path), map_location)


def inside(root: str | os.PathLike, *parts: str) -> Path:
    """``root`` joined with ``parts``, refused (one line naming both) unless the result,
    symlinks resolved, stays inside ``root``: names read from artifacts (node ids, file
    names) must never lead a step to read or write elsewhere."""
    root = Path(root)
    path = root.joinpath(*parts)
    base = root.resolve()
    if not path.resolve().is_relative_to(base) or any(Path(p).is_absolute() for p in parts):
        raise ValueError(f"{path}: leads outside {root}; refused")
    return path


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    return atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=False) + "\n").encode())


def read_json(path: str | os.PathLike, expect: type | None = None) -> Any:
    """The JSON value in ``path``; with ``expect`` (``dict``, ``list``) anything else is a
    :class:`CorruptFileError` naming the file."""
    path = Path(path)
    try:
        value = json.loads(path.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such file") from None
    except json.JSONDecodeError as exc:
        raise CorruptFileError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    except UnicodeDecodeError:
        raise CorruptFileError(f"{path}: not valid JSON (not UTF-8 text)") from None
    if expect is not None and not isinstance(value, expect):
        want = {dict: "an object", list: "a list"}.get(expect, expect.__name__)
        raise CorruptFileError(f"{path}: expected {want}, found a {type(value).__name__}")
    return value


def write_table(path: str | os.PathLike, frame: Any) -> Path:
    """A pandas DataFrame as parquet (``.parquet``) or CSV (``.csv``), atomically."""
    path = Path(path)
    buf = io.BytesIO()
    if path.suffix == ".csv":
        buf.write(frame.to_csv(index=False).encode())
    else:
        frame.to_parquet(buf, index=False)
    return atomic_write_bytes(path, buf.getvalue())


def read_table(path: str | os.PathLike, what: str) -> Any:
    """A CSV (or ``.parquet``) file as a pandas DataFrame; a file that is empty, not text, or
    not a table is one line naming ``what`` and the file (``No columns to parse from file``
    and ``'utf-8' codec can't decode ...`` said neither)."""
    import pandas as pd

    path = Path(path)
    try:
        return pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
    except pd.errors.EmptyDataError:
        raise ValueError(f"{what}: {path} is empty (no header, no rows)") from None
    except UnicodeDecodeError:
        raise ValueError(f"{what}: {path} is not UTF-8 text (a CSV is expected)") from None
    except (pd.errors.ParserError, ValueError, OSError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(f"{what}: {path} is not a readable table ({first})") from None


SEAL_FIELD = "sealed"


def folder_files(folder: str | os.PathLike) -> list[tuple[str, Path]]:
    """(relative POSIX name, path) of every file under ``folder``, sorted by name; names with a
    part starting with ``.`` (lock files, temporaries being written) are not the folder's."""
    folder = Path(folder)
    found = []
    for path in folder.rglob("*"):
        rel = path.relative_to(folder).as_posix()
        if path.is_file() and not any(part.startswith(".") for part in rel.split("/")):
            found.append((rel, path))
    return sorted(found)


def _canonical(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


CHECKPOINT_DIR = "ckpt"
"""The folder of epoch checkpoints inside an output (``naslid.checkpoints.CKPT_DIR``)."""
UNSEALED = (CHECKPOINT_DIR,)
"""Folders of an artifact outside its seal, at any depth (``ckpt/``, ``checkpoints/ckpt/``):
epoch checkpoints, which no loader reads and which may be removed (or resumed from) once a
run finished."""


def _sealed_files(folder: str | os.PathLike) -> list[tuple[str, Path]]:
    return [
        (rel, path)
        for rel, path in folder_files(folder)
        if rel != "meta.json" and not set(rel.split("/")[:-1]) & set(UNSEALED)
    ]


def _digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def seal_meta(meta: dict, folder: str | os.PathLike) -> dict:
    """``meta`` plus the field ``sealed``: the SHA-256 of every other file of the artifact
    folder (weights included; checkpoint folders, :data:`UNSEALED`, and hidden files not) and
    of ``meta`` itself, so that an edited ``tree.json``, a swapped ``supernet.pt`` or an
    edited ``meta.json`` is refused by :func:`verify_meta`.

    The seal is an unkeyed hash: it catches accidents (a truncated copy, an edited file, a
    file from another run) but not tampering, since whoever can write the artifact can
    recompute it. A keyed seal (an HMAC with a key from the run's secret) was considered and
    not adopted: the key would have to reach every pod that reads artifacts, i.e. sit in the
    same trust domain as the bucket credentials whose holders it is meant to stop; write
    access to the bucket is the boundary (and ``.pt`` files are loaded ``weights_only``, so a
    forged artifact can change results but not run code)."""
    files = {rel: _digest(path) for rel, path in _sealed_files(folder)}
    body = {k: v for k, v in meta.items() if k != SEAL_FIELD}
    seal_ = {"files": files}
    seal_["meta"] = hashlib.sha256(_canonical({**body, SEAL_FIELD: seal_})).hexdigest()
    return {**body, SEAL_FIELD: seal_}


def verify_meta(meta: Any, folder: str | os.PathLike, source: str) -> None:
    """Refuse a ``meta.json`` that is not an object, or whose seal (when it has one) does not
    match it or the files it lists, with :class:`CorruptFileError` naming the file."""
    if not isinstance(meta, dict):
        raise CorruptFileError(f"{source}: expected a JSON object, found a {type(meta).__name__}")
    seal_ = meta.get(SEAL_FIELD)
    if seal_ is None:
        raise CorruptFileError(
            f"{source}: has no seal (field {SEAL_FIELD!r}); naslid writes every meta.json sealed"
        )
    if not isinstance(seal_, dict) or not isinstance(seal_.get("files"), dict):
        raise CorruptFileError(f"{source}: field {SEAL_FIELD!r} is malformed")
    body = {k: v for k, v in meta.items() if k != SEAL_FIELD}
    unsealed = {"files": seal_["files"]}
    if hashlib.sha256(_canonical({**body, SEAL_FIELD: unsealed})).hexdigest() != seal_.get("meta"):
        raise CorruptFileError(f"{source}: modified after it was written (its seal does not match)")
    folder = Path(folder)
    for rel, path in _sealed_files(folder):
        if rel not in seal_["files"]:
            raise CorruptFileError(f"{path}: not covered by the seal of {source} (added later)")
    for rel, digest in seal_["files"].items():
        try:
            path = inside(folder, rel)
        except ValueError as exc:  # a link out of the artifact, or a name such as ../x
            raise CorruptFileError(f"{exc} (listed in {source})") from None
        if not path.is_file():
            raise CorruptFileError(f"{path}: listed in {source} but missing")
        if _digest(path) != digest:
            raise CorruptFileError(
                f"{path}: modified or damaged after it was written (digest differs from {source})"
            )


def check_meta(meta: dict, expected: dict, source: str) -> None:
    """Refuse an artifact whose ``meta.json`` disagrees with what a step expects."""
    for key, want in expected.items():
        if key not in meta:
            raise ValueError(f"{source}: meta.json has no field {key!r} (expected {want!r})")
        if meta[key] != want:
            raise ValueError(
                f"{source}: meta.json field {key!r} is {meta[key]!r}, expected {want!r}"
            )
