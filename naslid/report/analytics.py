"""Numbers the report derives from a run's artifacts: per-generation statistics, the time
per step, the sub-supernet that holds an arch and the best arch's benchmark rank."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from naslid.artifacts import leaf_masks
from naslid.io import inside, read_json
from naslid.node_ids import check_node_id
from naslid.report.load import RunArtifacts


def generation_stats(history) -> list[dict]:
    """Per generation of a search history: count, mean, std (population), max, best so far."""
    rows, best = [], -math.inf
    for gen, group in history.groupby("generation", sort=True):
        scores = group["score"].astype(float)
        best = max(best, float(scores.max()))
        rows.append(
            {
                "generation": int(gen),
                "count": int(len(scores)),
                "mean": float(scores.mean()),
                "std": float(scores.std(ddof=0)),
                "max": float(scores.max()),
                "best_so_far": best,
            }
        )
    return rows


def tree_nodes(run: RunArtifacts) -> dict[str, dict]:
    """The partition tree's nodes by id (none without a tree: rounds=0)."""
    return dict(run.tree["nodes"]) if run.tree else {}


def leaf_of(run: RunArtifacts, arch_str: str) -> str | None:
    """The sub-supernet (leaf id) whose mask holds ``arch_str``."""
    return run.space.owner(leaf_masks(run.partition), run.space.from_str(arch_str))


def step_timings(run: RunArtifacts, step_order: Sequence[str] = ()) -> list[dict]:
    """Time (and peak memory) per step, from what the artifacts record, in ``step_order``
    (the pipeline's steps; a step not in it comes last) or, without it, in the order the
    artifacts that record the times were created, the parts an artifact records (its
    ``timings``, its leaves' epochs) before its own time.

    Read: a ``seconds`` / ``peak_memory_MB`` field of each artifact's ``meta.json``; a
    ``timings`` list in any of them (``{"step", "node"?, "round"?, "criterion"?, "seconds",
    "peak_memory_MB"?}``); the ``seconds`` of node-profile artifacts; failing those, the sum of
    the per-epoch ``seconds`` of the training histories (pretraining, the last round's
    fine-tuning), marked "epochs only".
    """
    rows: list[dict] = []
    created: dict[tuple[str, str], tuple[float, bool]] = {}

    def add(
        meta: dict,
        step: str,
        detail: str,
        seconds: Any,
        memory: Any = None,
        source: str = "",
        part: bool = False,
    ) -> None:
        key = (step, detail)
        if key in created or seconds is None:
            return
        created[key] = (float(meta.get("created", math.inf)), not part)
        rows.append(
            {
                "step": step,
                "detail": detail,
                "seconds": float(seconds),
                "peak_memory_MB": None if memory is None else float(memory),
                "source": source,
            }
        )

    metas = [
        ("prepare-data", run.data),
        ("pretrain-supernet", run.supernet),
        (
            "gather-subsupernets" if int(run.partition.get("round", 0)) else "pretrain-supernet",
            run.partition,
        ),
        ("lissnas-shrink", run.space_meta),
        ("evolutionary-search", run.search_meta),
        ("imagenet-transfer", run.transfer_meta or {}),
    ]
    for step, meta in metas:
        for t in meta.get("timings") or []:
            detail = ", ".join(
                str(x)
                for x in (
                    t.get("node"),
                    t.get("criterion"),
                    f"round {t['round']}" if t.get("round") is not None else None,
                )
                if x is not None
            )
            add(
                meta,
                t.get("step", step),
                detail,
                t.get("seconds"),
                t.get("peak_memory_MB"),
                "timings",
                part=True,
            )
        if meta.get("seconds") is not None:
            add(meta, step, "", meta["seconds"], meta.get("peak_memory_MB"), "meta.json")
    for meta, _ in run.profiles:
        add(
            meta,
            "profile-lid",
            f"{meta.get('node')}, {meta.get('criterion')}, round {meta.get('round')}",
            meta.get("seconds"),
            meta.get("peak_memory_MB"),
            "meta.json",
        )
    if not any(r["step"] == "pretrain-supernet" for r in rows):
        hist = run.supernet.get("history") or []
        if hist and all("seconds" in h for h in hist):
            add(
                run.supernet,
                "pretrain-supernet",
                "epochs only",
                sum(h["seconds"] for h in hist),
                None,
                "history",
            )
    if int(run.partition.get("round", 0)) > 0 and not any(
        r["step"] == "finetune-subsupernet" for r in rows
    ):
        for node in sorted(run.partition["leaves"]):
            path = inside(
                run.partition_dir, "leaves", check_node_id(node, "partition"), "meta.json"
            )
            if not path.is_file():
                continue
            hist = read_json(path).get("history") or []
            if hist and all("seconds" in h for h in hist):
                add(
                    run.partition,
                    "finetune-subsupernet",
                    f"{node}, round {run.partition['round']}, epochs only",
                    sum(h["seconds"] for h in hist),
                    None,
                    "history",
                    part=True,
                )
    if not step_order:
        return sorted(rows, key=lambda r: (created[r["step"], r["detail"]], r["detail"]))
    order = {s: i for i, s in enumerate(step_order)}
    return sorted(rows, key=lambda r: (order.get(r["step"], len(order)), r["detail"]))


def best_accuracy(run: RunArtifacts) -> tuple[float | None, int | None]:
    """The benchmark accuracy of the best arch and its rank in the table (1 = best)."""
    if run.table is None or run.best["arch"] not in run.table:
        return None, None
    acc = run.table[run.best["arch"]]
    rank = 1 + sum(1 for v in run.table.accuracy.values() if v > acc)
    return acc, rank
