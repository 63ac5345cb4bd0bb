"""The pipeline's steps as plain functions: the one implementation behind every KFP component
and behind ``naslid step NAME``.

Each step takes its input artifact directories, an output directory and parameters, does
the work by calling the library, and writes its files atomically (:mod:`naslid.io`) with a
``meta.json`` (artifact kind, space, round, config, code version) beside them. A step reads
its inputs' ``meta.json`` first and refuses one that does not match, naming the field.

Artifacts (one directory each; ``meta.json["artifact"]`` says which):

- ``naslid.data``: ``train.pt`` / ``valid.pt`` (uint8 images, labels, classes, mean, std).
- ``naslid.partition``: the sub-supernets after a round: ``leaves/<node>/`` (``supernet.pt`` +
  ``meta.json`` of :func:`naslid.train.save_model`) and, from round 1 on, ``tree.json``.
- ``naslid.node_profile``: ``profile.json``, one sub-supernet's per-edge similarities.
- ``naslid.split``: ``tree.json`` after a round's splits and ``decisions.json``.
- ``naslid.subsupernet``: one fine-tuned child (``save_model`` layout).
- ``naslid.space``: the LISSNAS output (``space.csv``, ``stats.json``, figures) or, with
  shrinkage off, only ``stats.json`` saying so.
- ``naslid.search``: ``top.json``, ``history.parquet`` / ``.csv``, ``best.json``.
- ``naslid.transfer``: the output of :func:`naslid.transfer.transfer` (``model.pt2``,
  ``weights.pt``, ``arch.json``).

Parameters left at their "profile default" (``-1``, ``""``) take the profile's setting
(:func:`naslid.config.resolve`). Long steps write epoch checkpoints to ``checkpoint_uri``
(a directory or a ``minio://`` / ``s3://`` prefix; ``""`` = inside the output directory,
removed when the step ends) and resume from them, so a pre-empted pod picks up where it
stopped. Re-running one step on an earlier run's artifacts lives in :mod:`naslid.rerun`.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from naslid import __version__
from naslid.io import atomic_write_bytes, check_meta, read_json, seal_meta, verify_meta, write_json

PathLike = str | os.PathLike

DATA = "naslid.data"
PARTITION = "naslid.partition"
NODE_PROFILE = "naslid.node_profile"
SPLIT = "naslid.split"
SUBSUPERNET = "naslid.subsupernet"
SPACE = "naslid.space"
SEARCH = "naslid.search"
TRANSFER = "naslid.transfer"
META = "meta.json"
FORMAT = 1
"""Version of the artifact layouts above; a step refuses inputs of another version."""


# --------------------------------------------------------------------------- helpers
def _log(msg: str) -> None:
    print(f"[naslid] {msg}", flush=True)


_STEP_START: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "step_start", default=None
)
_PARENTS: contextvars.ContextVar[list | None] = contextvars.ContextVar("parents", default=None)
RUN_ID_ENV = "NASLID_RUN_ID"
"""Environment variable with the id of the run a step belongs to (the KFP components set it
from their output artifact's URI, :func:`naslid.kfp_components.run_of`); recorded as
``run_id`` in every meta.json."""


def meta_digest(directory: PathLike) -> str:
    """An artifact's identity: the SHA-256 of its meta.json (which holds its own parents'
    digests, so a digest pins the whole lineage)."""
    return hashlib.sha256((Path(directory) / META).read_bytes()).hexdigest()[:16]


def lineage() -> dict:
    """``run_id`` and ``made_from`` (kind, round, node, digest, run id of every artifact the
    current step read) for the meta.json the step writes."""
    parents = _PARENTS.get()
    return {"run_id": os.environ.get(RUN_ID_ENV, ""), "made_from": list(parents or [])}


_ON_SUCCESS: contextvars.ContextVar[list | None] = contextvars.ContextVar(
    "naslid_on_success", default=None
)


def timed(fn: Callable) -> Callable:
    """Mark a step: the ``meta.json`` it writes records its wall time and peak memory."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        token = _STEP_START.set(time.monotonic())
        parents = _PARENTS.set([])
        done = _ON_SUCCESS.set([])
        _reset_peak_memory()
        try:
            result = fn(*args, **kwargs)
            for cleanup in _ON_SUCCESS.get():  # the step's outputs are all written
                cleanup()
            return result
        finally:
            _ON_SUCCESS.reset(done)
            _STEP_START.reset(token)
            _PARENTS.reset(parents)

    return wrapper


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


def artifact_meta(kind: str, **fields: Any) -> dict:
    """The common part of every ``meta.json`` (with ``seconds`` inside a :func:`timed` step)."""
    meta = {"artifact": kind, "format": FORMAT, "code_version": __version__, "created": time.time()}
    meta.update(lineage())
    start = _STEP_START.get()
    if start is not None:
        peak, how = _peak_memory_mb()
        meta.update(
            seconds=round(time.monotonic() - start, 3),
            peak_memory_MB=round(peak, 1),
            peak_memory_of=how,
        )
    return {**meta, **fields}


def read_meta(
    directory: PathLike, kind: str, expected: dict | None = None, *, cross_check: bool = True
) -> dict:
    """``directory/meta.json``, checked to be a ``kind`` artifact with the ``expected`` fields,
    its seal verified and (``cross_check``) a partition's tree and leaves checked against it
    (:func:`check_partition`; the report turns that off to draw what it can of a bad tree)."""
    path = Path(directory) / META
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file (is {directory} a {kind} artifact?)")
    meta = read_json(path)
    verify_meta(meta, directory, str(path))
    check_meta(meta, {"artifact": kind, "format": FORMAT, **(expected or {})}, str(path))
    parents = _PARENTS.get()
    if parents is not None:  # inside a step: an input, recorded in its outputs' lineage
        digest = meta_digest(directory)
        if all(p["digest"] != digest for p in parents):
            parents.append(
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


def write_meta(out: PathLike, meta: dict) -> Path:
    """``out/meta.json``, sealed over the artifact's other files (naslid.io.seal_meta): write
    it last, once everything else of the artifact is in place."""
    return write_json(Path(out) / META, seal_meta(meta, out))


def _disjoint(a, b) -> bool:
    return any(not set(x) & set(y) for x, y in zip(a, b))


def check_partition(directory: PathLike, meta: dict) -> None:
    """Cross-check a partition artifact: ``tree.json``'s leaves are ``meta.json``'s leaves
    with the same masks, every leaf's own ``meta.json`` holds that mask and space, and the
    leaves are pairwise disjoint and cover the root (every architecture in exactly one)."""
    from naslid import split

    directory = Path(directory)
    source = directory / META
    space = _space(meta["space"])
    leaves = meta.get("leaves")
    if not isinstance(leaves, dict) or not leaves:
        raise ValueError(f"{source}: field 'leaves' must be an object of masks")
    masks = {node: space.mask_from_json(m) for node, m in leaves.items()}
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
        leaf_meta_path = directory / "leaves" / node / META
        if not leaf_meta_path.is_file():
            continue  # checked when the leaf is loaded (load_model names the file)
        leaf_meta = read_json(leaf_meta_path)
        verify_meta(leaf_meta, leaf_meta_path.parent, str(leaf_meta_path))
        if leaf_meta.get("space") != space.name:
            raise ValueError(
                f"{leaf_meta_path}: field 'space' is {leaf_meta.get('space')!r}, "
                f"{source} says {space.name!r}"
            )
        if leaf_meta.get("mask") != space.mask_to_json(mask):
            raise ValueError(
                f"{leaf_meta_path}: field 'mask' differs from leaf {node!r} in {source}"
            )


def _resolve(profile: str, **overrides: Any):
    from naslid import config

    return config.resolve(profile, overrides)


THREADS_ENV = "NASLID_THREADS"
"""Set to cap torch's CPU threads per step (naslid run sets 1: two steps share two cores)."""


def _device():
    import torch

    from naslid.train import resolve_device

    threads = os.environ.get(THREADS_ENV, "")
    if threads:
        if not threads.isdigit() or int(threads) < 1:
            raise ValueError(f"{THREADS_ENV}: expected a positive integer, got {threads!r}")
        torch.set_num_threads(int(threads))
    return resolve_device("auto")


def resize_images(data, size: int):
    """``data`` with its images resized to ``size`` x ``size`` (bilinear, antialiased)."""
    import torch
    import torch.nn.functional as F

    from naslid.data import ImageData

    if data.image_size == (size, size):
        return data
    images = F.interpolate(data.images.float(), size=(size, size), mode="bilinear", antialias=True)
    images = images.round().clamp_(0, 255).to(torch.uint8)
    return ImageData(images, data.labels, data.classes, data.mean, data.std, data.name, data.split)


def _seed_all(seed: int) -> None:
    import random

    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


@contextlib.contextmanager
def _local_copy(uri: str, what: str) -> Iterator[Path | None]:
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
        _log(f"{what}: copied {len(files)} objects from {uri}")
        yield Path(tmp)


def _artifact_digest(path: Path, digest) -> None:
    """Feed every file under ``path`` (relative name and bytes) into ``digest``; meta.json
    without its times and seal, so a re-executed deterministic step digests the same."""
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for f in files:
        rel = f.name if f == path else f.relative_to(path).as_posix()
        if rel.rsplit("/", 1)[-1].startswith("."):
            continue  # lock files, temporaries
        data = f.read_bytes()
        if f.name == META:
            try:
                meta = json.loads(data)
                if isinstance(meta, dict):  # what differs between two executions
                    for volatile in ("created", "sealed", "seconds", "peak_memory_MB"):
                        meta.pop(volatile, None)
                data = json.dumps(meta, sort_keys=True).encode()
            except ValueError:
                pass
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
        _artifact_digest(path, digest)
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
def _checkpoints(checkpoint_uri: str, out: Path, name: str) -> Iterator[str]:
    """The checkpoint location of a long step; removed once the step has succeeded (only
    then: an interrupted or failed step leaves them for its re-run), so neither artifacts
    nor the checkpoint root pile up optimiser states."""
    location = checkpoint_uri or str(out / name)
    yield location
    pending = _ON_SUCCESS.get()
    if pending is None or not checkpoint_uri:  # inside the artifact: gone before it is sealed
        _remove_checkpoints(location)
    else:  # once the whole step has succeeded, its artifact written
        pending.append(functools.partial(_remove_checkpoints, location))


def _copy_file(src: Path, dst: Path) -> None:
    atomic_write_bytes(dst, src.read_bytes())


def _space(name: str):
    from naslid import spaces

    return spaces.get(name).SPACE


# --------------------------------------------------------------------------- data artifacts
def _save_split(data, path: Path) -> None:
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


def _leaves(partition: PathLike, meta: dict) -> list[tuple[Any, Path]]:
    """(mask, model dir) of every sub-supernet of a partition, in node order."""
    space = _space(meta["space"])
    return [
        (space.mask_from_json(mask), Path(partition) / "leaves" / node)
        for node, mask in sorted(meta["leaves"].items())
    ]


# --------------------------------------------------------------------------- validate-params
def validate_params(
    *,
    profile: str = "smoke",
    rounds: int = -1,
    max_rounds: int = 4,
    criterion: str = "",
    dataset: str = "",
    labels: str = "",
    search_budget: int = -1,
    epochs: int = -1,
    finetune_epochs: int = -1,
    transfer_epochs: int = -1,
    shrink: str | bool = "",
) -> int:
    """Check every pipeline parameter against the profile; return the number of rounds to run.

    Fails in seconds, with one line naming the parameter, before any GPU is asked for.
    """
    from naslid.data import DATASETS

    cfg = _resolve(
        profile,
        rounds=rounds,
        criterion=criterion,
        dataset=dataset,
        labels=labels,
        search_budget=search_budget,
        epochs=epochs,
        warmup_epochs=finetune_epochs,
        transfer_epochs=transfer_epochs,
        shrink=shrink,
    )
    from naslid.evolution import check_budget

    if cfg.search_budget is not None:
        check_budget(replace(cfg.evolution, budget=cfg.search_budget))
    if cfg.dataset not in DATASETS:
        raise ValueError(f"dataset: unknown {cfg.dataset!r}; expected one of {', '.join(DATASETS)}")
    if cfg.labels != "proxy" and not cfg.labels.startswith(("table:", "nb201api:")):
        raise ValueError(
            f"labels: expected 'proxy' or a table 'table:CSV:COLUMN', got {cfg.labels!r}"
        )
    if cfg.labels.startswith("table:"):  # open it now, not after the GPU work
        from naslid.benchmarks import load_table

        load_table(cfg.labels)
    if cfg.rounds > max_rounds:
        raise ValueError(
            f"rounds: {cfg.rounds} asked, the compiled pipeline unrolls at most {max_rounds} "
            "(recompile with naslid compile --max-rounds)"
        )
    _log(
        f"profile {cfg.name}: {cfg.dataset}, {cfg.space} C={cfg.C} N={cfg.N}, {cfg.rounds} rounds of "
        f"{cfg.criterion} splitting, shrink={cfg.shrink}, transfer={cfg.transfer}"
    )
    return cfg.rounds


# --------------------------------------------------------------------------- prepare-data
@timed
def prepare_data(
    out: PathLike,
    *,
    profile: str = "smoke",
    dataset: str = "",
    dataset_uri: str = "",
    seed: int = 0,
) -> dict:
    """Decode the search data set once: ``train.pt`` and ``valid.pt`` (the ``test`` split where
    a data set has no validation split) into a ``naslid.data`` artifact."""
    from naslid import data as datasets

    cfg = _resolve(profile, dataset=dataset, dataset_uri=dataset_uri, seed=seed)
    out = Path(out)
    valid_split = "valid" if "valid" in datasets.DATASETS.get(cfg.dataset, ()) else "test"
    with _local_copy(cfg.dataset_uri, "dataset") as root:
        train = datasets.load(cfg.dataset, root, "train", limit=cfg.limit, seed=seed)
        valid = datasets.load(cfg.dataset, root, valid_split, limit=cfg.limit, seed=seed)
    if cfg.image_size:
        train, valid = resize_images(train, cfg.image_size), resize_images(valid, cfg.image_size)
    _save_split(train, out / "train.pt")
    _save_split(valid, out / "valid.pt")
    meta = artifact_meta(
        DATA,
        dataset=cfg.dataset,
        dataset_uri=cfg.dataset_uri,
        valid_split=valid_split,
        num_classes=train.num_classes,
        classes=list(train.classes),
        image_size=list(train.image_size),
        sizes={"train": len(train), "valid": len(valid)},
        profile=cfg.name,
        seed=seed,
    )
    write_meta(out, meta)
    _log(
        f"prepare-data: {cfg.dataset} train {len(train)}, valid ({valid_split}) {len(valid)}, "
        f"{train.num_classes} classes"
    )
    return meta


# --------------------------------------------------------------------------- pretrain-supernet
def _partition_meta(
    round_: int,
    space: str,
    leaves: dict,
    criterion: str | None,
    data_meta: dict,
    supernet: dict,
    **extra: Any,
) -> dict:
    return artifact_meta(
        PARTITION,
        round=round_,
        space=space,
        criterion=criterion,
        leaves=leaves,
        dataset=data_meta["dataset"],
        num_classes=data_meta["num_classes"],
        supernet=supernet,
        **extra,
    )


@timed
def pretrain_supernet(
    data: PathLike,
    out: PathLike,
    *,
    profile: str = "smoke",
    epochs: int = -1,
    seed: int = 0,
    checkpoint_uri: str = "",
    progress: bool = False,
) -> dict:
    """Train the one-shot supernet with uniform single-path sampling (resumable); write it as
    the round-0 partition (one leaf ``r`` holding the whole space). Returns the metrics."""
    import numpy as np

    from naslid import supernets
    from naslid.train import evaluate, save_model, train

    cfg = _resolve(profile, epochs=epochs, seed=seed)
    dmeta = read_meta(data, DATA)
    out = Path(out)
    train_data, valid = load_data(data, "train"), load_data(data, "valid")
    _seed_all(seed)
    module = supernets.get(cfg.space)
    if cfg.space == "nb201":
        net = module.Supernet(C=cfg.C, N=cfg.N, num_classes=dmeta["num_classes"])
    else:
        net = module.Supernet(num_classes=dmeta["num_classes"])
    tcfg = replace(cfg.train, seed=seed)
    device = _device()
    with _checkpoints(checkpoint_uri, out, "checkpoints") as store:
        _log(
            f"pretrain-supernet: {cfg.space} on {dmeta['dataset']}, {tcfg.epochs} epochs on {device}, "
            f"checkpoints in {store}"
        )
        result = train(
            net,
            train_data,
            tcfg,
            store=store,
            resume=True,
            device=device,
            progress=progress,
            desc="pretrain",
        )
    if result.start_epoch:
        _log(f"pretrain-supernet: resumed after epoch {result.start_epoch}")
    rng = np.random.default_rng(seed)
    paths = net.space.sample(rng, 5)
    path_acc = [evaluate(net, valid, a) for a in paths]
    last = result.history[-1] if result.history else {}
    leaf = out / "leaves" / "r"
    save_model(net, leaf, config=tcfg, extra={"node": "r", "round": 0, "history": result.history})
    mask_json = net.space.mask_to_json(net.mask)
    write_meta(
        out,
        _partition_meta(
            0,
            cfg.space,
            {"r": mask_json},
            None,
            dmeta,
            net.config(),
            train_config=tcfg.to_json(),
            history=result.history,
        ),
    )
    metrics = {
        "epochs": result.epochs,
        "train_loss": float(last.get("loss", float("nan"))),
        "train_accuracy": float(last.get("accuracy", float("nan"))),
        "valid_accuracy_random_paths": float(np.mean(path_acc)),
        "seconds": float(sum(h.get("seconds", 0.0) for h in result.history)),
    }
    _log(f"pretrain-supernet: {metrics}")
    return metrics


# --------------------------------------------------------------------------- profile-lid
@timed
def profile_lid(
    data: PathLike,
    partition: PathLike,
    out: PathLike,
    *,
    node: str = "r",
    criterion: str = "lid",
    profile: str = "smoke",
    seed: int = 0,
    progress: bool = False,
) -> dict:
    """Measure the per-edge similarity of one sub-supernet's candidate operations: layer-wise
    LID vectors (NAS-LID), gradient cosine (GM-NAS) or a random bipartition."""
    from naslid import lid, split
    from naslid.train import load_model

    cfg = _resolve(profile, criterion=criterion, seed=seed)
    pmeta = read_meta(partition, PARTITION)
    if node not in pmeta["leaves"]:
        raise ValueError(
            f"node: {node!r} is not a sub-supernet of {partition} (it has {sorted(pmeta['leaves'])})"
        )
    if pmeta["criterion"] not in (None, cfg.criterion):
        raise ValueError(
            f"{Path(partition) / META}: field 'criterion' is {pmeta['criterion']!r}, "
            f"expected {cfg.criterion!r}"
        )
    device = _device()
    net, _ = load_model(Path(partition) / "leaves" / node, device=device)
    space = net.space
    mask = space.mask_from_json(pmeta["leaves"][node])
    tree_path = Path(partition) / "tree.json"
    if tree_path.exists():
        tree = split.PartitionTree.load(tree_path)
        root = tree.node(tree.root).mask
    else:  # round 1: the partition is the root itself
        root = mask
    batches: list = []
    crit = split.criterion(cfg.criterion)
    measure = crit.batch_config({"lid": cfg.lid, "gradmatch": cfg.gradmatch})
    if measure is not None:
        train = load_data(data, "train")
        size = min(measure.batch_size, len(train))
        batches = lid.sample_batches(train, size, measure.num_batches, seed=seed, device=device)
    t0 = time.perf_counter()
    prof = split.similarity_for_node(
        cfg.criterion,
        net,
        mask,
        batches,
        node_id=node,
        root=root,
        lid_config=cfg.lid,
        grad_config=cfg.gradmatch,
        split_config=cfg.split,
        seed=seed,
    )
    out = Path(out)
    prof.save(out / "profile.json", space)
    meta = artifact_meta(
        NODE_PROFILE,
        node=node,
        round=pmeta["round"] + 1,
        criterion=cfg.criterion,
        space=space.name,
        edges=sorted(prof.edges),
        seconds=time.perf_counter() - t0,
    )
    write_meta(out, meta)
    _log(
        f"profile-lid: node {node}, {cfg.criterion}, {len(prof.edges)} edges in {meta['seconds']:.1f}s"
    )
    return meta


# --------------------------------------------------------------------------- split-round
@timed
def split_round(
    partition: PathLike, profiles: Sequence[PathLike], out: PathLike, *, criterion: str = "lid"
) -> dict:
    """Split every sub-supernet of ``partition`` on its best never-partitioned edge (balanced
    Eq. 6 cut of its similarity, the criterion's edge rule); write the next level of the
    partition tree."""
    from naslid import split

    pmeta = read_meta(partition, PARTITION)
    space = _space(pmeta["space"])
    round_ = pmeta["round"] + 1
    if pmeta["round"] == 0:
        tree = split.PartitionTree(space, space.mask_from_json(pmeta["leaves"]["r"]), criterion)
    else:
        if pmeta["criterion"] != criterion:
            raise ValueError(
                f"{Path(partition) / META}: field 'criterion' is {pmeta['criterion']!r}, "
                f"expected {criterion!r}"
            )
        tree = split.PartitionTree.load(Path(partition) / "tree.json")
    by_node = {}
    for p in profiles:
        meta = read_meta(
            p, NODE_PROFILE, {"criterion": criterion, "round": round_, "space": space.name}
        )
        by_node[meta["node"]] = split.NodeProfile.load(Path(p) / "profile.json", space)
    leaves = [n.id for n in tree.leaves()]
    missing = sorted(set(leaves) - set(by_node))
    if missing:
        raise ValueError(
            f"profiles: no profile of node(s) {', '.join(missing)} among {len(profiles)} given"
        )
    decisions = []
    for node in leaves:
        decision = split.decide_split(by_node[node], node)
        if decision is None:
            raise ValueError(
                f"node {node}: every edge holds one operation, nothing left to split (ask fewer rounds)"
            )
        tree.apply(decision)
        decisions.append(decision.to_json(space))
        names = space.slot_options[decision.edge]
        _log(
            f"split-round {round_}: node {node} on edge {decision.edge}: "
            f"{[names[o] for o in decision.groups[0]]} | {[names[o] for o in decision.groups[1]]} "
            f"(score {decision.scores[decision.edge]:.3g})"
        )
    out = Path(out)
    tree.save(out / "tree.json")
    write_json(out / "decisions.json", decisions)
    children = [n.id for n in tree.leaves()]
    meta = artifact_meta(
        SPLIT,
        round=round_,
        criterion=criterion,
        space=space.name,
        parents=leaves,
        children=children,
        leaves={n.id: space.mask_to_json(n.mask) for n in tree.leaves()},
        dataset=pmeta["dataset"],
        num_classes=pmeta["num_classes"],
        supernet=pmeta["supernet"],
    )
    write_meta(out, meta)
    return meta


# --------------------------------------------------------------------------- finetune-subsupernet
@timed
def finetune_subsupernet(
    data: PathLike,
    partition: PathLike,
    split: PathLike,
    out: PathLike,
    *,
    node: str,
    profile: str = "smoke",
    epochs: int = -1,
    rounds: int = -1,
    seed: int = 0,
    checkpoint_uri: str = "",
    progress: bool = False,
) -> dict:
    """Inherit the parent's weights for child ``node`` of the split and train inside its mask
    (NAS-LID section 3.4). ``epochs`` -1: the profile's ``train.warmup_epochs``, plus
    ``train.finetune_epochs`` when this split is the last of ``rounds`` (the final
    sub-supernets are fine-tuned longer, as in the public NAS-LID configuration)."""
    from naslid.train import finetune, load_model, save_model

    cfg = _resolve(profile, seed=seed)
    smeta = read_meta(split, SPLIT)
    is_last = smeta["round"] == rounds
    if epochs >= 0:
        n_epochs = epochs
    else:
        n_epochs = cfg.train.warmup_epochs + (cfg.train.finetune_epochs if is_last else 0)
    if n_epochs < 1:
        raise ValueError(f"epochs: a sub-supernet needs at least one epoch, got {n_epochs}")
    if node not in smeta["children"]:
        raise ValueError(
            f"node: {node!r} is not a child of the split {split} (children: {smeta['children']})"
        )
    pmeta = read_meta(partition, PARTITION, {"round": smeta["round"] - 1, "space": smeta["space"]})
    parent = node[:-1]
    if parent not in pmeta["leaves"]:
        raise ValueError(
            f"{Path(partition) / META}: field 'leaves' has no parent {parent!r} of node {node!r}"
        )
    device = _device()
    parent_net, _ = load_model(Path(partition) / "leaves" / parent, device=device)
    space = parent_net.space
    mask = space.mask_from_json(smeta["leaves"][node])
    train_data = load_data(data, "train")
    tcfg = replace(cfg.train, seed=seed)
    out = Path(out)
    _seed_all(seed)
    with _checkpoints(checkpoint_uri, out, "checkpoints") as store:
        child, result = finetune(
            parent_net,
            mask,
            train_data,
            tcfg,
            epochs=n_epochs,
            store=store,
            resume=True,
            device=device,
            progress=progress,
            desc=f"finetune {node}",
        )
    last = result.history[-1] if result.history else {}
    save_model(
        child,
        out,
        mask=mask,
        config=replace(tcfg, epochs=n_epochs),
        extra={
            "artifact": SUBSUPERNET,
            "format": FORMAT,
            "node": node,
            "round": smeta["round"],
            "last_round": is_last,
            "history": result.history,
            "code_version": __version__,
            **lineage(),
        },
    )
    _log(
        f"finetune-subsupernet: node {node}, {result.epochs} epochs, train loss {last.get('loss', float('nan')):.3f}"
    )
    return {
        "node": node,
        "epochs": result.epochs,
        "train_loss": last.get("loss"),
        "train_accuracy": last.get("accuracy"),
    }


# --------------------------------------------------------------------------- gather-subsupernets
@timed
def gather_subsupernets(split: PathLike, subsupernets: Sequence[PathLike], out: PathLike) -> dict:
    """Fan-in: the split's tree and every fine-tuned child as the next round's partition."""
    smeta = read_meta(split, SPLIT)
    out = Path(out)
    found = {}
    for d in subsupernets:
        meta = read_meta(d, SUBSUPERNET, {"round": smeta["round"], "space": smeta["space"]})
        if meta["node"] not in smeta["children"]:
            raise ValueError(
                f"{Path(d) / META}: field 'node' is {meta['node']!r}, not a child of {split}"
            )
        if meta["node"] in found:
            raise ValueError(f"{Path(d) / META}: node {meta['node']!r} given twice")
        found[meta["node"]] = Path(d)
    missing = sorted(set(smeta["children"]) - set(found))
    if missing:
        raise ValueError(f"subsupernets: no fine-tuned child for node(s) {', '.join(missing)}")
    for node, d in sorted(found.items()):
        for name in ("supernet.pt", META):
            _copy_file(d / name, out / "leaves" / node / name)
    _copy_file(Path(split) / "tree.json", out / "tree.json")
    _copy_file(Path(split) / "decisions.json", out / "decisions.json")
    data_meta = {"dataset": smeta["dataset"], "num_classes": smeta["num_classes"]}
    meta = _partition_meta(
        smeta["round"],
        smeta["space"],
        smeta["leaves"],
        smeta["criterion"],
        data_meta,
        smeta["supernet"],
    )
    write_meta(out, meta)
    _log(f"gather-subsupernets: round {smeta['round']}, {len(found)} sub-supernets")
    return meta


# --------------------------------------------------------------------------- lissnas-shrink
def _proxy(data: PathLike, partition: PathLike, pmeta: dict, cfg):
    from naslid.scoring import ProxyEvaluator

    return ProxyEvaluator(
        _leaves(partition, pmeta),
        load_data(data, "train"),
        load_data(data, "valid"),
        replace(cfg.scoring, seed=cfg.seed),
        device=_device(),
    )


@timed
def lissnas_shrink(
    data: PathLike,
    partition: PathLike,
    out: PathLike,
    *,
    profile: str = "smoke",
    shrink: str | bool = "",
    labels: str = "",
    seed: int = 0,
) -> dict:
    """LISSNAS: shrink the space around the seeds an XGBoost predictor ranks best. Labels are
    the sub-supernets' inherited-weight accuracy (``proxy``) or a benchmark table. With
    ``shrink`` off (``""``: the profile's setting -- off for NAS-LID's own ``cifar10``), the
    artifact only says so and the search keeps the whole space."""
    from naslid import lissnas

    cfg = _resolve(profile, labels=labels, seed=seed, shrink=shrink)
    pmeta = read_meta(partition, PARTITION)
    space = _space(pmeta["space"])
    out = Path(out)
    if not cfg.shrink:
        stats = {"shrink": False, "size": space.mask_size(), "original_size": space.mask_size()}
        write_json(out / "stats.json", stats)
        write_meta(
            out, artifact_meta(SPACE, shrink=False, space=space.name, size=space.mask_size())
        )
        _log("lissnas-shrink: off, the search keeps the whole space")
        return {"shrink": 0, "size": space.mask_size()}
    if cfg.labels == "proxy":
        labeller = _proxy(data, partition, pmeta, cfg)
    else:
        from naslid.benchmarks import load_table

        labeller = lissnas.table_labeller(load_table(cfg.labels))
    lcfg = cfg.lissnas
    if lcfg.cost_dataset is None and cfg.labels != "proxy":
        lcfg = replace(lcfg, cost_dataset=lissnas.cost_dataset_for(space, cfg.labels))
    run = lissnas.run(space, labeller, lcfg, seed)
    lissnas.write_outputs(run, out)
    keys = (
        "size",
        "original_size",
        "mean_accuracy",
        "max_accuracy",
        "shrink_index",
        "ks_statistic",
        "ks_pvalue",
        "flops_coverage",
        "diversity_mean",
        "queries",
        "iterations",
        "predictor_kendall_tau",
        "size_cells",
        "regret",
        "predictor_queries",
    )
    metrics = {k: run.stats[k] for k in keys if k in run.stats}
    write_meta(
        out,
        artifact_meta(
            SPACE,
            shrink=True,
            space=space.name,
            size=run.stats["size"],
            labels=cfg.labels,
            accuracy_source=run.accuracy_source,
            config=lcfg.__dict__,
        ),
    )
    _log(
        f"lissnas-shrink: {run.stats['size']} of {run.stats['original_size']} archs, mean accuracy "
        f"{run.stats['mean_accuracy']:.2f}, shrink index {run.stats['shrink_index']:.3f}"
    )
    return {"shrink": 1, **metrics}


# --------------------------------------------------------------------------- evolutionary-search
@timed
def evolutionary_search(
    data: PathLike,
    partition: PathLike,
    space: PathLike,
    out: PathLike,
    *,
    profile: str = "smoke",
    search_budget: int = -1,
    seed: int = 0,
    progress: bool = False,
) -> dict:
    """Evolutionary search (NAS-LID section 4) in the shrunk space, each candidate scored with
    the weights of the sub-supernet that holds it (BN recalibrated). Returns the metrics and
    ``best_arch``."""
    import numpy as np

    from naslid import evolution

    cfg = _resolve(profile, search_budget=search_budget, seed=seed)
    pmeta = read_meta(partition, PARTITION)
    smeta = read_meta(space, SPACE, {"space": pmeta["space"]})
    sp = _space(pmeta["space"])
    restrict = evolution.load_archs(sp, Path(space) / "space.csv") if smeta["shrink"] else None
    ecfg = replace(cfg.evolution, budget=cfg.search_budget) if cfg.search_budget else cfg.evolution
    evaluator = _proxy(data, partition, pmeta, cfg)
    _log(
        f"evolutionary-search: {'shrunk' if restrict else 'whole'} space "
        f"({len(restrict) if restrict else sp.mask_size()} archs), {len(pmeta['leaves'])} sub-supernets, "
        f"budget {ecfg.budget or ecfg.population * ecfg.generations}"
    )
    report_progress: Callable[[int, float], None] | None = None
    if progress:

        def report_progress(gen: int, best: float) -> None:
            _log(f"generation {gen}: best {best:.2f}")

    result = evolution.evolve(
        sp,
        evaluator,
        ecfg,
        np.random.default_rng(seed),
        restrict=restrict,
        progress=report_progress,
    )
    best = result.best
    arch = sp.from_str(best["arch"])
    owner = next(
        (
            node
            for mask, node in zip(pmeta["leaves"].values(), pmeta["leaves"])
            if sp.contains(sp.mask_from_json(mask), arch)
        ),
        None,
    )
    meta = artifact_meta(
        SEARCH,
        space=sp.name,
        round=pmeta["round"],
        shrink=bool(smeta["shrink"]),
        config=ecfg.__dict__,
        seed=seed,
    )
    evolution.write_result(result, out, meta=meta)
    best_info = {
        "arch": best["arch"],
        "score": best["score"],
        "node": owner,
        "flops_M": sp.flops(arch),
        "params_M": sp.params(arch),
    }
    write_json(Path(out) / "best.json", best_info)
    _log(f"evolutionary-search: best {best['arch']} ({best['score']:.2f}% proxy, node {owner})")
    return {
        "best_arch": best["arch"],
        "best_score": best["score"],
        "evaluated": len(result.history),
        "best_flops_M": best_info["flops_M"],
        "best_params_M": best_info["params_M"],
    }


# --------------------------------------------------------------------------- imagenet-transfer
@timed
def imagenet_transfer(
    search: PathLike,
    out: PathLike,
    *,
    profile: str = "smoke",
    transfer_uri: str = "",
    epochs: int = -1,
    seed: int = 0,
    checkpoint_uri: str = "",
    progress: bool = False,
) -> dict:
    """Train the best architecture of the search on ImageNet-format data (an ImageFolder tree,
    a minio:// prefix of one, or, for the smoke profile, a tiny tree of the bundled digits)."""
    from naslid import config, store, transfer

    cfg = _resolve(profile, transfer_uri=transfer_uri, transfer_epochs=epochs, seed=seed)
    smeta = read_meta(search, SEARCH)
    best = read_json(Path(search) / "best.json", dict)
    out = Path(out)
    tcfg = replace(cfg.transfer_config, seed=seed)
    with contextlib.ExitStack() as stack:
        if cfg.transfer_dataset == config.DIGITS_IMAGEFOLDER and not cfg.transfer_uri:
            tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="naslid-digits-"))
            train_n, val_n = cfg.digits_per_class
            root: Path | str = transfer.make_digits_imagefolder(
                tmp, train_n, val_n, size=tcfg.image_size, seed=seed
            )
        elif cfg.transfer_uri:
            root = cfg.transfer_uri
            if store.is_remote(root):
                root = transfer.resolve_data(
                    root, stack.enter_context(tempfile.TemporaryDirectory(prefix="naslid-in-"))
                )
        else:
            root = Path(os.environ.get("NASLID_DATA", "data")) / "imagenet"
        ckpt = stack.enter_context(_checkpoints(checkpoint_uri, out, "checkpoints"))
        _log(f"imagenet-transfer: {best['arch']} on {root}, {tcfg.epochs} epochs")
        result = transfer.transfer(
            smeta["space"],
            best["arch"],
            root,
            out,
            config=tcfg,
            checkpoint_dir=ckpt,
            progress=progress,
        )
    if not result.get("finished", True):
        raise RuntimeError(
            f"imagenet-transfer: stopped after epoch {result.get('epoch')}, not finished"
        )
    meta = read_json(out / META, dict)
    write_meta(
        out,
        {
            **meta,
            **artifact_meta(
                TRANSFER, space=smeta["space"], arch=best["arch"], dataset=cfg.transfer_dataset
            ),
        },
    )
    metrics = {
        k: result[k]
        for k in ("top1", "top5", "flops_M", "params_M", "epochs", "image_size")
        if k in result
    }
    _log(f"imagenet-transfer: top-1 {metrics.get('top1', float('nan')):.2f}")
    return metrics


# --------------------------------------------------------------------------- report
def report(
    html_out: PathLike,
    markdown_out: PathLike,
    *,
    data: PathLike,
    supernet: PathLike,
    partition: PathLike,
    space: PathLike,
    search: PathLike,
    transfer: PathLike | None = None,
) -> dict:
    """The run's report (:mod:`naslid.report`): a self-contained HTML page and the same as Markdown."""
    from naslid.report import build_report

    return build_report(
        html_out,
        markdown_out,
        data=data,
        supernet=supernet,
        partition=partition,
        space=space,
        search=search,
        transfer=transfer,
    )
