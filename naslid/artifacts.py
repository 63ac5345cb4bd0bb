"""The artifact schema: what every step writes and reads, and how it is checked.

An artifact is one directory with a ``meta.json`` (its ``artifact`` kind, the layout
``format``, the code version, the config it was made with, its lineage) beside its files,
written last and sealed over them (:func:`naslid.io.seal_meta`), so an edited or truncated
file is refused with one line naming it.

Kinds (``meta.json["artifact"]``):

- ``naslid.data``: ``train.pt`` / ``valid.pt`` (uint8 images, labels, classes, mean, std).
- ``naslid.partition``: the sub-supernets after a round: ``leaves/<node>/`` (``supernet.pt`` +
  ``meta.json`` of :func:`naslid.saved_model.save_model`) and, from round 1 on, ``tree.json``.
- ``naslid.node_profile``: ``profile.json``, one sub-supernet's per-edge similarities.
- ``naslid.split``: ``tree.json`` after a round's splits and ``decisions.json``.
- ``naslid.subsupernet``: one fine-tuned child (``save_model`` layout).
- ``naslid.space``: the LISSNAS output (``space.csv``, ``stats.json``, figures) or, with
  shrinkage off, only ``stats.json`` saying so.
- ``naslid.search``: ``top.json``, ``history.parquet`` / ``.csv``, ``best.json``.
- ``naslid.transfer``: the output of :func:`naslid.transfer.transfer` (``model.pt2``,
  ``weights.pt``, ``arch.json``).
- ``naslid.latency``: ``latency.json``, a latency lookup table measured on one device
  (:mod:`naslid.latency`).

Lineage: inside a :func:`recording` block (every step runs in one, see
:mod:`naslid.steps.registry`) each artifact read with :func:`read_meta` is remembered, and
every ``meta.json`` written with :func:`artifact_meta` records them as ``made_from`` (kind,
round, node, identity, run) with the ``run_id`` the block was given, the step's wall time and
its peak memory.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from naslid import __version__
from naslid.io import check_meta, inside, read_json, seal_meta, verify_meta, write_json
from naslid.node_ids import check_node_id

PathLike = str | os.PathLike

DATA = "naslid.data"
PARTITION = "naslid.partition"
NODE_PROFILE = "naslid.node_profile"
SPLIT = "naslid.split"
SUBSUPERNET = "naslid.subsupernet"
SPACE = "naslid.space"
SEARCH = "naslid.search"
TRANSFER = "naslid.transfer"
LATENCY = "naslid.latency"
KINDS = (DATA, PARTITION, NODE_PROFILE, SPLIT, SUBSUPERNET, SPACE, SEARCH, TRANSFER, LATENCY)
META = "meta.json"
FORMAT = 1
"""Version of the artifact layouts above; a step refuses inputs of another version."""


# --------------------------------------------------------------------------- identity
def identity(meta: dict) -> str:
    """An artifact's identity: 16 hex digits of the SHA-256 of its ``meta.json`` content, which
    holds the seal over its files and its ``made_from`` (its parents' identities), so an
    identity pins the artifact and its whole lineage."""
    return hashlib.sha256(json.dumps(meta, sort_keys=True).encode()).hexdigest()[:16]


def meta_digest(directory: PathLike) -> str:
    """:func:`identity` of the artifact in ``directory``."""
    return identity(read_json(Path(directory) / META, dict))


# --------------------------------------------------------------------------- one step's record
@dataclass
class _Record:
    run_id: str
    start: float = field(default_factory=time.monotonic)
    parents: list[dict] = field(default_factory=list)
    on_success: list[Callable[[], None]] = field(default_factory=list)


_RECORD: contextvars.ContextVar[_Record | None] = contextvars.ContextVar(
    "naslid_record", default=None
)


@contextlib.contextmanager
def recording(run_id: str = "") -> Iterator[None]:
    """One step's execution: the inputs it reads become its outputs' ``made_from``, ``run_id``
    is recorded in them, ``seconds`` and peak memory are measured from here; the callbacks of
    :func:`on_success` run when the block ends without an error."""
    _reset_peak_memory()
    token = _RECORD.set(_Record(run_id))
    try:
        yield
        for callback in _RECORD.get().on_success:
            callback()
    finally:
        _RECORD.reset(token)


def on_success(callback: Callable[[], None]) -> bool:
    """Run ``callback`` once the current step has written all its outputs; False outside a
    :func:`recording` block (the caller then does it at once)."""
    record = _RECORD.get()
    if record is None:
        return False
    record.on_success.append(callback)
    return True


def _reset_peak_memory() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()


def _peak_memory_mb() -> tuple[float, str]:
    """Peak GPU memory of this step on CUDA, else the process's peak resident set."""
    import resource

    import torch

    if torch.cuda.is_available() and torch.cuda.max_memory_allocated() > 0:
        return torch.cuda.max_memory_allocated() / 2**20, "cuda_max_allocated"
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "process_max_rss"


def lineage() -> dict:
    """``run_id`` and ``made_from`` of the current step, for the meta.json files it writes."""
    record = _RECORD.get()
    if record is None:
        return {"run_id": "", "made_from": []}
    return {"run_id": record.run_id, "made_from": list(record.parents)}


def artifact_meta(kind: str, **fields: Any) -> dict:
    """The common part of every ``meta.json`` (with ``seconds`` inside a :func:`recording`)."""
    meta = {"artifact": kind, "format": FORMAT, "code_version": __version__, "created": time.time()}
    meta.update(lineage())
    record = _RECORD.get()
    if record is not None:
        peak, how = _peak_memory_mb()
        meta.update(
            seconds=round(time.monotonic() - record.start, 3),
            peak_memory_MB=round(peak, 1),
            peak_memory_of=how,
        )
    return {**meta, **fields}


# --------------------------------------------------------------------------- meta.json
def write_meta(out: PathLike, meta: dict) -> Path:
    """``out/meta.json``, sealed over the artifact's other files (naslid.io.seal_meta): write
    it last, once everything else of the artifact is in place."""
    return write_json(Path(out) / META, seal_meta(meta, out))


def load_meta(directory: PathLike, expected: dict | None = None) -> dict:
    """``directory/meta.json``, its seal verified and the ``expected`` fields checked."""
    path = Path(directory) / META
    meta = read_json(path)
    verify_meta(meta, directory, str(path))
    if expected:
        check_meta(meta, expected, str(path))
    return meta


def read_meta(
    directory: PathLike, kind: str, expected: dict | None = None, *, cross_check: bool = True
) -> dict:
    """``directory/meta.json``, checked to be a ``kind`` artifact with the ``expected`` fields,
    its seal verified and (``cross_check``) a partition's tree and leaves checked against it
    (:func:`check_partition`; the report turns that off to draw what it can of a bad tree).
    Inside a :func:`recording` block the artifact is recorded as an input of the step."""
    path = Path(directory) / META
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file (is {directory} a {kind} artifact?)")
    meta = load_meta(directory, {"artifact": kind, "format": FORMAT, **(expected or {})})
    record = _RECORD.get()
    if record is not None:
        digest = identity(meta)
        if all(p["digest"] != digest for p in record.parents):
            record.parents.append(
                {
                    "artifact": kind,
                    "round": meta.get("round"),
                    "node": meta.get("node"),
                    "digest": digest,
                    "run_id": meta.get("run_id", ""),
                }
            )
    if kind == PARTITION and cross_check:
        check_partition(directory, meta)
    return meta


def space_of(meta: dict):
    """The :class:`~naslid.spaces.base.SlotSpace` an artifact's ``meta.json`` names."""
    from naslid import spaces

    return spaces.get(meta["space"]).SPACE


def _disjoint(a, b) -> bool:
    return any(not set(x) & set(y) for x, y in zip(a, b))


def check_partition(directory: PathLike, meta: dict) -> None:
    """Cross-check a partition artifact: ``tree.json``'s leaves are ``meta.json``'s leaves
    with the same masks, every leaf's own ``meta.json`` holds that mask and space, and the
    leaves are pairwise disjoint and cover the root (every architecture in exactly one)."""
    from naslid import split

    directory = Path(directory)
    source = directory / META
    space = space_of(meta)
    leaves = meta.get("leaves")
    if not isinstance(leaves, dict) or not leaves:
        raise ValueError(f"{source}: field 'leaves' must be an object of masks")
    masks = leaf_masks(meta)
    tree_path = directory / "tree.json"
    if tree_path.is_file():
        tree = split.PartitionTree.load(tree_path)
        if tree.space.name != space.name:
            raise ValueError(
                f"{tree_path}: space {tree.space.name!r}, {source} says {space.name!r}"
            )
        tree_leaves = {n.id: n.mask for n in tree.leaves()}
        if set(tree_leaves) != set(masks):
            raise ValueError(
                f"{tree_path}: leaves {sorted(tree_leaves)} differ from {source}'s {sorted(masks)}"
            )
        for node, mask in tree_leaves.items():
            if tuple(map(tuple, mask)) != tuple(map(tuple, masks[node])):
                raise ValueError(f"{tree_path}: leaf {node!r} has another mask than {source}")
        root = tree.node(tree.root).mask
    else:
        root = space.full_mask() if len(masks) > 1 else next(iter(masks.values()))
    nodes = sorted(masks)
    for i, a in enumerate(nodes):
        for b in nodes[i + 1 :]:
            if not _disjoint(masks[a], masks[b]):
                raise ValueError(f"{source}: leaves {a!r} and {b!r} overlap")
    if sum(space.mask_size(m) for m in masks.values()) != space.mask_size(root):
        raise ValueError(f"{source}: the leaves do not cover the root mask")
    for node, mask in masks.items():
        leaf_meta_path = inside(directory, "leaves", node, META)
        if not leaf_meta_path.is_file():
            continue  # checked when the leaf is loaded (load_model names the file)
        # its bytes are covered by the partition's seal, verified above: not verified again
        leaf_meta = read_json(leaf_meta_path)
        if leaf_meta.get("space") != space.name:
            raise ValueError(
                f"{leaf_meta_path}: field 'space' is {leaf_meta.get('space')!r}, "
                f"{source} says {space.name!r}"
            )
        if leaf_meta.get("mask") != space.mask_to_json(mask):
            raise ValueError(
                f"{leaf_meta_path}: field 'mask' differs from leaf {node!r} in {source}"
            )


def leaf_masks(meta: dict) -> dict[str, Any]:
    """Node id -> mask of every sub-supernet of a partition (or split), in node order."""
    space = space_of(meta)
    return {
        check_node_id(node, "meta.json: field 'leaves'"): space.mask_from_json(mask)
        for node, mask in sorted(meta["leaves"].items())
    }


def leaves(partition: PathLike, meta: dict) -> list[tuple[Any, Path]]:
    """(mask, model dir) of every sub-supernet of a partition, in node order."""
    return [(mask, inside(partition, "leaves", node)) for node, mask in leaf_masks(meta).items()]


# --------------------------------------------------------------------------- naslid.data
def save_data(data, path: Path) -> None:
    """One split of a ``naslid.data`` artifact (ImageData as tensors and lists)."""
    from naslid.io import save_torch

    save_torch(
        {
            "images": data.images.cpu(),
            "labels": data.labels.cpu(),
            "classes": list(data.classes),
            "mean": list(data.mean),
            "std": list(data.std),
            "name": data.name,
            "split": data.split,
        },
        path,
    )


def load_data(data: PathLike, split: str):
    """The ``split`` (``train`` or ``valid``) of a ``naslid.data`` artifact as ImageData."""
    from naslid.data import ImageData
    from naslid.io import load_torch

    read_meta(data, DATA)
    blob = load_torch(Path(data) / f"{split}.pt")
    return ImageData(
        blob["images"],
        blob["labels"],
        tuple(blob["classes"]),
        tuple(blob["mean"]),
        tuple(blob["std"]),
        blob.get("name", ""),
        blob.get("split", split),
    )
