"""A run's parameters, checked before any step works: the one check behind the
``validate-params`` step, ``naslid run`` and ``naslid submit``.

:func:`check_params` refuses what a step would fail on hours later (an unknown profile or
criterion, rounds above what the DAG unrolls, a search budget outside the profile's,
a malformed labels table or checkpoint root, a negative seed) with one line naming the
parameter. ``local=True`` where the files the parameters name are on this machine
(``naslid run``, and the validate-params pod, which sees what the steps see): the labels
table is opened and its column found, a local checkpoint root must be creatable. ``naslid
submit`` checks only their form (the paths are the cluster's).

:func:`check_data` is the validate-params pod's second check: the search data and, with
transfer on, the transfer data can be read where the steps will read them (a folder, the
mounted dataset volume under ``$NASLID_DATA``, or a minio:// / s3:// prefix).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from naslid.budget import LIMIT_FIELDS

PROFILE_PARAMETERS = {
    "rounds": "rounds",
    "criterion": "criterion",
    "edge_rule": "edge_rule",
    "dataset": "dataset",
    "dataset_uri": "dataset_uri",
    "labels": "labels",
    "search_budget": "search_budget",
    "epochs": "epochs",
    "finetune_epochs": "finetune_epochs",
    "transfer_epochs": "transfer_epochs",
    "transfer_uri": "transfer_uri",
    "shrink": "shrink",
    **{name: name for name in LIMIT_FIELDS.values()},
    "latency_batch": "latency_batch",
}
"""Pipeline parameter -> the profile setting it overrides (config.resolve's key)."""


def check_labels(labels: str, *, local: bool) -> None:
    """'proxy', ``table:CSV:COLUMN`` or ``nb201api:FILE:DATASET:SETTING``; opened when local."""
    if labels == "proxy":
        return
    kind, _, rest = labels.partition(":")
    if kind == "table":
        path, sep, column = rest.rpartition(":")
        if not (sep and path and column):
            raise ValueError(f"labels: expected 'proxy' or table:CSV:COLUMN, got {labels!r}")
    elif kind == "nb201api":
        if len(rest.rsplit(":", 2)) != 3:
            raise ValueError(f"labels: expected nb201api:FILE:DATASET:SETTING, got {labels!r}")
    else:
        raise ValueError(f"labels: expected 'proxy' or a table 'table:CSV:COLUMN', got {labels!r}")
    if local:  # open it now, not after the GPU work
        from naslid.benchmarks import load_table

        load_table(labels)


def check_root(root: str, what: str, *, local: bool) -> None:
    """A checkpoint root: '' (none), ``minio://BUCKET/PREFIX`` / ``s3://...``, or a folder
    (creatable here when ``local``; an absolute path inside the pods otherwise)."""
    if not root:
        return
    url = urlparse(root)
    if url.scheme in ("minio", "s3"):
        if not url.netloc:
            raise ValueError(
                f"{what}: {root!r} names no bucket (expected {url.scheme}://BUCKET/PREFIX)"
            )
        return
    if url.scheme not in ("", "file"):
        raise ValueError(
            f"{what}: {root!r}: unknown scheme {url.scheme!r} (expected a folder, minio:// or s3://)"
        )
    path = Path(url.path if url.scheme else root).expanduser()
    if not local:
        if not path.is_absolute():
            raise ValueError(
                f"{what}: {root!r} is relative; on a cluster give minio://BUCKET/PREFIX or an "
                "absolute path on a mounted volume"
            )
        return
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir() or not os.access(existing, os.W_OK):
        raise ValueError(
            f"{what}: {root!r}: cannot create it ({existing} is not a writable folder)"
        )


def check_params(values: Mapping[str, Any], *, max_rounds: int, local: bool):
    """The run's :class:`naslid.config.Profile` after ``values`` (pipeline parameters by
    name; absent ones keep the pipeline's defaults), or ValueError naming the parameter."""
    from naslid import config
    from naslid.data import DATASETS
    from naslid.evolution import check_budget

    profile = values.get("profile") or config.DEFAULT_PROFILE
    seed = values.get("seed", 0)
    if isinstance(seed, int) and not isinstance(seed, bool) and seed < 0:
        raise ValueError(f"seed: must be >= 0, got {seed}")
    overrides = {PROFILE_PARAMETERS[k]: v for k, v in values.items() if k in PROFILE_PARAMETERS}
    if "transfer" in values:
        overrides["transfer"] = config.flag(values["transfer"], "transfer")
    cfg = config.resolve(profile, overrides)
    if cfg.search_budget is not None:
        try:
            check_budget(replace(cfg.evolution, budget=cfg.search_budget))
        except ValueError as exc:  # name the pipeline parameter
            raise ValueError(f"search_budget: {str(exc).removeprefix('budget: ')}") from None
    check_limits(cfg)
    if cfg.dataset not in DATASETS:
        raise ValueError(f"dataset: unknown {cfg.dataset!r}; expected one of {', '.join(DATASETS)}")
    check_labels(cfg.labels, local=local)
    if cfg.rounds > max_rounds:
        raise ValueError(
            f"rounds: {cfg.rounds} asked, the compiled pipeline unrolls at most {max_rounds} "
            "(recompile with naslid compile --max-rounds)"
        )
    check_root(str(values.get("checkpoint_root") or ""), "checkpoint_root", local=local)
    return cfg


def check_limits(cfg) -> None:
    """Refuse FLOPs / parameter limits that no arch of the profile's space meets, naming the
    limit and the space's minimum (the latency limit waits for the latency table)."""
    from naslid import spaces
    from naslid.budget import Budget, Feasible

    static = Budget(cfg.budget.flops_max, cfg.budget.params_max)
    if static:
        Feasible(spaces.get(cfg.space).SPACE, static).check()


# --------------------------------------------------------------------------- data
def _first_object(uri: str, sub: str = "") -> str | None:
    """The first object key under ``uri``/``sub`` (one listing page, never the whole tree)."""
    from naslid import store

    bucket = store.open_store(uri)
    client = getattr(bucket, "client", None)
    if client is None:  # a local store
        keys = bucket.list(sub)
        return keys[0] if keys else None
    base = "/".join(p for p in (bucket.prefix, sub.strip("/")) if p)
    base = f"{base}/" if base else ""
    for obj in client.list_objects(bucket.bucket, prefix=base, recursive=True):
        return obj.object_name
    return None


def _why(param: str) -> str:
    """Where the default data location came from, and what changes it."""
    from naslid.data.images import DATA_ENV

    env = os.environ.get(DATA_ENV)
    how = f"${DATA_ENV}={env}" if env else f"${DATA_ENV} unset: no dataset volume mounted"
    return f"{param} is empty, {how}; compile with --dataset-pvc or set {param}"


def _check_tree(what: str, param: str, uri: str, default: Path, subs: tuple[str, ...]) -> None:
    """``uri`` (the parameter ``param``; else ``default``) holds data, and each of ``subs``."""
    from naslid import store

    for sub in subs or ("",):
        if uri and store.is_remote(uri):
            try:
                found = _first_object(uri, sub)
            except Exception as exc:  # noqa: BLE001 - any store failure is this one line
                raise ValueError(
                    f"{what}: cannot list {uri}: {type(exc).__name__}: {exc}"
                ) from None
            if found is None:
                raise ValueError(f"{what}: {uri.rstrip('/')}/{sub} holds no object ({param})")
            continue
        folder = (Path(uri).expanduser() if uri else default) / sub
        where = f"({param})" if uri else f"({_why(param)})"
        if not folder.is_dir():
            raise ValueError(f"{what}: {folder} does not exist {where}")
        if not any(folder.iterdir()):
            raise ValueError(f"{what}: {folder} is empty {where}")


def check_data(cfg, transfer: bool = True) -> None:
    """The search data of ``cfg`` and, when ``transfer``, its transfer data can be read."""
    from naslid import config
    from naslid.data import data_home

    if cfg.dataset not in ("digits", "synthetic"):  # bundled / made on the fly
        default = data_home() / cfg.dataset.split("-")[0]
        _check_tree(f"dataset {cfg.dataset}", "dataset_uri", cfg.dataset_uri, default, ())
    if not transfer:
        return
    if cfg.transfer_dataset == config.DIGITS_IMAGEFOLDER and not cfg.transfer_uri:
        return  # made by the step from the bundled digits
    default = data_home() / "imagenet"
    _check_tree("transfer data", "transfer_uri", cfg.transfer_uri, default, ("train", "val"))
