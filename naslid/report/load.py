"""A run's artifacts as the report reads them: each directory checked by its ``meta.json``
kind, and the benchmark table the run named."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from naslid.artifacts import DATA, NODE_PROFILE, PARTITION, SEARCH, SPACE, TRANSFER, read_meta
from naslid.io import read_json
from naslid.pareto import FRONT_FILE

PathLike = str | os.PathLike


@dataclass
class RunArtifacts:
    """Everything the report reads from one run's artifacts."""

    data: dict
    supernet: dict
    partition: dict
    partition_dir: Path
    space_meta: dict
    space_dir: Path
    search_meta: dict
    search_dir: Path
    best: dict
    top: list[dict]
    history: Any  # pandas.DataFrame of the search (generation, arch, score, flops, params, origin)
    space: Any  # the SlotSpace
    tree: dict | None = None
    stats: dict | None = None
    transfer_meta: dict | None = None
    transfer_dir: Path | None = None
    profiles: list[tuple[dict, Any]] = field(default_factory=list)
    """(meta, NodeProfile) of extra naslid.node_profile artifacts, newest first."""
    table: Any = None
    table_spec: str | None = None
    table_note: str = ""
    front: dict | None = None
    """The search's ``front.json`` (:func:`naslid.pareto.front_summary`); None for searches
    that wrote none (before issue 24)."""


def _meta(directory: PathLike, kind: str, expected: dict | None = None) -> dict:
    # seals are verified; a bad tree costs its sections, not the whole report
    return read_meta(directory, kind, expected, cross_check=False)


def _history(search: Path):
    import pandas as pd

    if (search / "history.parquet").is_file():
        return pd.read_parquet(search / "history.parquet")
    if (search / "history.csv").is_file():
        return pd.read_csv(search / "history.csv")
    raise FileNotFoundError(f"{search}: no history.parquet or history.csv")


def table_spec_of(table: str | None, search_meta: dict, space_meta: dict) -> tuple[str | None, str]:
    """The benchmark table of a run and where it was named: ``table`` (an argument) first,
    then the search's oracle, then LISSNAS's labels when they were a table."""
    if table:
        return table, "given"
    evaluator = search_meta.get("evaluator") or {}
    for spec, where in (
        (search_meta.get("table"), "search"),
        (evaluator.get("oracle") if isinstance(evaluator, dict) else None, "search oracle"),
        (space_meta.get("labels"), "LISSNAS labels"),
    ):
        if isinstance(spec, str) and spec.startswith(("table:", "nb201api:")):
            return spec, where
    return None, ""


def load_run(
    *,
    data: PathLike,
    supernet: PathLike,
    partition: PathLike,
    space: PathLike,
    search: PathLike,
    transfer: PathLike | None = None,
    profiles: Sequence[PathLike] = (),
    table: str | None = None,
) -> RunArtifacts:
    """Read and check the artifacts (each by its ``meta.json`` kind).

    ``profiles``: extra ``naslid.node_profile`` artifacts (other criteria, timings);
    ``table``: a benchmark table ``table:CSV:COLUMN`` (default: the one the run named, if
    any)."""
    from naslid import spaces
    from naslid.split import NodeProfile

    dmeta = _meta(data, DATA)
    smeta0 = _meta(supernet, PARTITION, {"round": 0})
    pmeta = _meta(partition, PARTITION)
    space_meta = _meta(space, SPACE, {"space": pmeta["space"]})
    search_meta = _meta(search, SEARCH)
    sp = spaces.get(pmeta["space"]).SPACE
    run = RunArtifacts(
        data=dmeta,
        supernet=smeta0,
        partition=pmeta,
        partition_dir=Path(partition),
        space_meta=space_meta,
        space_dir=Path(space),
        search_meta=search_meta,
        search_dir=Path(search),
        best=read_json(Path(search) / "best.json"),
        top=read_json(Path(search) / "top.json"),
        history=_history(Path(search)),
        space=sp,
    )
    if int(pmeta.get("round", 0)) > 0 and (Path(partition) / "tree.json").is_file():
        run.tree = read_json(Path(partition) / "tree.json")
    if (Path(search) / FRONT_FILE).is_file():
        run.front = read_json(Path(search) / FRONT_FILE, dict)
    if (Path(space) / "stats.json").is_file():
        run.stats = read_json(Path(space) / "stats.json")
    if transfer is not None:
        run.transfer_meta = _meta(transfer, TRANSFER)
        run.transfer_dir = Path(transfer)
    seen = set()
    for p in profiles:
        meta = _meta(p, NODE_PROFILE, {"space": sp.name})
        key = (meta.get("node"), meta.get("round"), meta.get("criterion"))
        if key in seen:  # a re-run of the same profile: keep the first (newest) given
            continue
        seen.add(key)
        run.profiles.append((meta, NodeProfile.load(Path(p) / "profile.json", sp)))
    spec, where = table_spec_of(table, search_meta, space_meta)
    if spec:
        from naslid.benchmarks import load_table

        try:
            run.table = load_table(spec)
            run.table_spec = spec
            run.table_note = f"table `{spec}` ({where})"
        except (FileNotFoundError, ValueError, ImportError) as exc:
            run.table_note = f"the table named by the {where} cannot be read here: {exc}"
    return run
