"""A LISSNAS run (shrinkage, baselines, statistics) and what it writes."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from naslid.benchmarks import check_covers
from naslid.budget import Budget, Feasible
from naslid.lissnas.baselines import baseline_spaces
from naslid.lissnas.config import LissnasConfig
from naslid.lissnas.costs import check_cost_dataset, cost
from naslid.lissnas.shrinkage import ShrinkResult, shrink
from naslid.lissnas.stats import space_stats
from naslid.scorer import Scorer, TableScorer
from naslid.spaces.base import Arch, SlotSpace


@dataclass
class LissnasRun:
    """A shrinkage, its baselines and their statistics, ready to be written out."""

    space: SlotSpace
    result: ShrinkResult
    accuracy_source: str
    """``table`` (an exhaustive table scores every member) or ``labels+predictor``."""
    accuracy: Scorer
    stats: dict
    baselines: dict[str, dict]
    baseline_archs: dict[str, list[Arch]] = field(default_factory=dict)
    config: LissnasConfig = field(default_factory=LissnasConfig)
    seed: int = 0


def _reference(labeller: Scorer, original: Sequence[Arch]) -> Scorer | None:
    """An exhaustive, free accuracy source for the statistics: a table that has every member."""
    if isinstance(labeller, TableScorer) and all(a in labeller.table for a in original):
        return labeller
    return None


def check_inputs(space: SlotSpace, labeller: Scorer, cfg: LissnasConfig) -> LissnasConfig:
    """Refuse, before any label is spent, a bad configuration, more samples than an enumerable
    space has classes, a cost model the space does not have or a benchmark table that misses
    archs of the space; returns the checked ``cfg``."""
    cfg = cfg.check()
    if space.mask_size() <= cfg.enumerate_limit:
        cfg.check_samples(space, space.num_classes(cfg.rule(space)))
    check_cost_dataset(space, cfg.cost_dataset)
    if isinstance(labeller, TableScorer):
        check_covers(labeller.table, space)
    return cfg


def run(
    space: SlotSpace,
    labeller: Scorer,
    cfg: LissnasConfig | None = None,
    seed: int = 0,
    progress: Callable[[dict], None] | None = None,
    feasible: Feasible | None = None,
) -> LissnasRun:
    """Shrink ``space``, build the baselines at equal labels and size, compute statistics.

    With an exhaustive table as labeller, the statistics read every member's accuracy from it
    (free lookups, not queries); otherwise they use labels where known, else predictions.
    With ``feasible`` (a hardware budget) the space is the archs within it, and so are the
    baselines and the statistics' original space.
    """
    cfg = check_inputs(space, labeller, cfg or LissnasConfig())
    res = shrink(space, labeller, cfg, seed, progress, feasible)
    ref = _reference(labeller, res.original) if res.original_enumerated else None
    accuracy = ref if ref is not None else res.scorer
    source = "table" if ref is not None else "labels+predictor"
    cells = space.mask_size()
    original_size = len(res.original) if res.original_enumerated else space.num_classes(res.rule)
    oacc = accuracy(res.original)
    oflops = cost(space, res.original, "flops", cfg.cost_dataset)
    oparams = cost(space, res.original, "params", cfg.cost_dataset)
    rng = np.random.default_rng(seed + 1)

    def stats_of(archs: Sequence[Arch]) -> dict:
        return space_stats(
            space, archs, accuracy(archs), res.original, oacc, original_size, cfg, rng, oflops,
            rule=res.rule, original_cells=cells, original_params=oparams,
        )  # fmt: skip

    stats = stats_of(res.archs)
    spaces, meta = baseline_spaces(space, res, labeller, cfg, seed) if cfg.baselines else ({}, {})
    baselines = {}
    for name, archs in spaces.items():
        b = stats_of(archs)
        b.pop("edf")
        baselines[name] = {**b, **meta[name]}
    stats.update(
        {
            "space": space.name,
            "seed": seed,
            "accuracy_source": source,
            "isomorphism": res.rule,
            "original_enumerated": res.original_enumerated,
            "neighbourhoods_sampled": res.neighbourhoods_sampled,
            "queries": res.queries,
            "uniform_labels": res.uniform,
            "refit_labels": res.queries - res.uniform,
            "predictor_queries": res.predictor_queries,
            "iterations": res.iterations,
            "iterations_run": len(res.history) - 1,
            "history": res.history,
            "radius": cfg.radius(space),
            "top_seeds": cfg.top_seeds,
            "seed_rule": cfg.seed_rule,
            "seeds": [str(a) for a in res.seeds],
            "predictor_kendall_tau": res.first_predictor.kendall_tau,
            "predictor_kendall_pvalue": res.first_predictor.kendall_pvalue,
            "predictor_train": res.first_predictor.n_train,
            "predictor_holdout": res.first_predictor.n_holdout,
            "baselines": baselines,
            "budget": (feasible.budget if feasible is not None else Budget()).as_dict(),
            "config": asdict(cfg),
        }
    )
    return LissnasRun(space, res, source, accuracy, stats, baselines, spaces, cfg, seed)


def space_frame(run_: LissnasRun) -> Any:
    """The shrunk space as a table: arch_str, predicted and known accuracy, cells, FLOPs, params."""
    import pandas as pd

    res, space = run_.result, run_.space
    archs = res.archs
    known = np.array([res.scorer.known.get(a, np.nan) for a in archs])
    ds = run_.config.cost_dataset
    frame = pd.DataFrame(
        {
            "arch_str": [str(a) for a in archs],
            "predicted_accuracy": res.predictor.predict(archs),
            "known_accuracy": known,
            "cells": [len(space.class_members(a, res.rule)) for a in archs],
            "flops_M": cost(space, archs, "flops", ds),
            "params_M": cost(space, archs, "params", ds),
        }
    )
    if run_.accuracy_source == "table":
        frame["table_accuracy"] = run_.accuracy(archs)
    return frame.sort_values("predicted_accuracy", ascending=False, kind="stable").reset_index(
        drop=True
    )


def write_outputs(run_: LissnasRun, out_dir: str | Path) -> dict[str, str]:
    """DIR/space.csv, DIR/space.parquet and DIR/stats.json (the figures: :func:`figure_data`)."""
    from naslid.io import write_json, write_table

    out = Path(out_dir)
    frame = space_frame(run_)
    paths = {
        "space_csv": write_table(out / "space.csv", frame),
        "space_parquet": write_table(out / "space.parquet", frame),
        "stats": write_json(out / "stats.json", run_.stats),
    }
    return {k: str(v) for k, v in paths.items()}


EDF_SPACES = ("original", "lissnas", "naive_top_matched", "random_neighbours", "predictor_top",
              "operation_pruning")  # fmt: skip
"""The spaces the error-EDF figure shows (those the run has), the original first."""
FLOPS_SPACES = ("original", "lissnas")
"""The spaces the FLOPs-vs-accuracy figure shows."""


def figure_data(run_: LissnasRun) -> dict[str, dict]:
    """What the run's two figures show, per space, under the run's accuracy source:

    ``{"edf": {"title": str, "accuracy": {space: accuracies}},
    "flops": {"title": str, "points": {space: (flops, accuracies)}}}`` (NumPy arrays; the
    spaces of :data:`EDF_SPACES` the run has, and :data:`FLOPS_SPACES`)."""
    res, acc, name = run_.result, run_.accuracy, run_.space.name
    spaces = {"original": res.original, "lissnas": res.archs, **run_.baseline_archs}
    ds = run_.config.cost_dataset
    return {
        "edf": {
            "title": f"{name}: error EDF ({run_.accuracy_source})",
            "accuracy": {k: acc(spaces[k]) for k in EDF_SPACES if k in spaces},
        },
        "flops": {
            "title": f"{name}: FLOPs vs accuracy ({run_.accuracy_source})",
            "points": {
                k: (cost(run_.space, spaces[k], "flops", ds), acc(spaces[k])) for k in FLOPS_SPACES
            },
        },
    }
