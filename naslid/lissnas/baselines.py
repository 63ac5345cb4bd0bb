"""LISSNAS's baselines (paper appendix H) at its number of oracle labels and its size."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import replace

import numpy as np

from naslid.lissnas.config import LissnasConfig
from naslid.lissnas.neighbourhoods import enumerate_distinct, sample_distinct
from naslid.lissnas.predictor import QueryCounter, fit_predictor
from naslid.lissnas.shrinkage import ShrinkResult, shrink, top_seeds
from naslid.scorer import CountingScorer, Scorer
from naslid.spaces.base import Arch, Mask, SlotSpace


def naive_top_fraction(labelled: Sequence[Arch], labels: np.ndarray, fraction: float) -> list[Arch]:
    """Paper appendix H.1: the top ``fraction`` of the uniformly sampled labelled archs."""
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"naive_top_fraction: must lie in (0, 1], got {fraction}")
    k = max(1, int(round(fraction * len(labelled))))
    return top_seeds(labelled, labels, k)


def operation_ranking(
    space: SlotSpace, archs: Sequence[Arch], labels: np.ndarray
) -> list[dict[int, float]]:
    """Per slot, the mean label of the sampled archs using each option (ABS-like ranking)."""
    ops = np.asarray([a.ops for a in archs])
    labels = np.asarray(labels, dtype=np.float64)
    out = []
    for s in range(space.num_slots):
        out.append({int(o): float(labels[ops[:, s] == o].mean()) for o in np.unique(ops[:, s])})
    return out


def operation_pruning_to_size(
    space: SlotSpace,
    archs: Sequence[Arch],
    labels: np.ndarray,
    size: int,
    count: Callable[[Mask], int],
) -> Mask:
    """ABS-like pruning at a matched size: drop, one at a time, the option whose sampled archs
    have the lowest mean label over all slots (inside the current mask; never sampled ranks
    lowest), and stop at the mask whose ``count`` (its number of classes) is closest to
    ``size``."""
    mask = space.full_mask()
    best, best_gap = mask, abs(count(mask) - size)
    labels = np.asarray(labels, dtype=np.float64)
    while count(mask) > size:
        inside = [i for i, a in enumerate(archs) if space.contains(mask, a)]
        if not inside:
            break
        rank = operation_ranking(space, [archs[i] for i in inside], labels[inside])
        options = [
            (rank[s].get(o, -math.inf), -s, -o, s, o)
            for s, allowed in enumerate(mask)
            if len(allowed) > 1
            for o in allowed
        ]
        if not options:
            break
        *_, s, o = min(options)
        mask = tuple(tuple(x for x in a if x != o) if i == s else a for i, a in enumerate(mask))
        gap = abs(count(mask) - size)
        if gap < best_gap:
            best, best_gap = mask, gap
    return best


def baseline_spaces(
    space: SlotSpace,
    res: ShrinkResult,
    labeller: Scorer,
    cfg: LissnasConfig,
    seed: int,
) -> tuple[dict[str, list[Arch]], dict[str, dict]]:
    """Appendix H's baselines at LISSNAS's size and number of oracle labels.

    Each labels ``res.queries`` uniform archs: LISSNAS's ``samples`` uniform ones plus as many
    fresh uniform draws as LISSNAS spent on refits. Returns the spaces and, per baseline, its
    oracle and predictor queries and parameters.
    """
    rule, size, feasible = res.rule, len(res.archs), res.feasible
    rng = np.random.default_rng(seed + 7)
    uniform = res.labelled[: res.uniform]
    extra_n = max(0, res.queries - len(uniform))
    taken = set(uniform)
    rest = [a for a in res.original if a not in taken] if res.original_enumerated else None
    extra = (
        sample_distinct(space, rng, extra_n, population=rest, rule=rule)
        if rest is not None
        else [
            a
            for a in sample_distinct(space, rng, 2 * extra_n + 10, rule=rule, feasible=feasible)
            if a not in taken
        ][:extra_n]
    )
    counter = CountingScorer(labeller)
    pool = list(uniform) + list(extra)
    labels = np.concatenate([res.labels[: res.uniform], counter(extra) if extra else np.zeros(0)])
    q = len(pool)
    pcount = QueryCounter()
    bp = fit_predictor(space, pool, labels, replace(cfg, seed_rule="predicted"), seed, pcount)
    spaces: dict[str, list[Arch]] = {}
    meta: dict[str, dict] = {}
    # H.1: the top x% of the uniformly labelled archs, and the same at LISSNAS's size.
    for f in cfg.naive_top_fractions:
        name = f"naive_top_{100 * f:g}%"
        spaces[name] = naive_top_fraction(pool, labels, f)
        meta[name] = {"fraction": f, "queries": q, "predictor_queries": 0}
    spaces["naive_top_matched"] = top_seeds(pool, labels, min(size, q))
    meta["naive_top_matched"] = {"queries": q, "predictor_queries": 0, "matched": size <= q}
    # H.2 "no neighbour": seeds alone, as many as LISSNAS's size, chosen by the predictor from
    # as many uniform draws as LISSNAS's seed pools held.
    n_pool = min(len(res.original), max(size, cfg.seed_pool * max(1, res.iterations)))
    draws = sample_distinct(
        space,
        rng,
        n_pool,
        population=res.original if res.original_enumerated else None,
        rule=rule,
        feasible=feasible,
    )
    before = pcount.queries
    spaces["no_neighbours"] = top_seeds(draws, bp.predict(draws), size)
    meta["no_neighbours"] = {"queries": q, "predictor_queries": pcount.queries - before}
    # H.2 "without locality": the same loop, random members instead of neighbours.
    rnd = shrink(space, labeller, replace(cfg, neighbours="random"), seed, feasible=feasible)
    spaces["random_neighbours"] = rnd.archs
    meta["random_neighbours"] = {
        "queries": rnd.queries,
        "predictor_queries": rnd.predictor_queries,
        "iterations": rnd.iterations,
    }
    # H.3: the predictor scores every arch of the original space; its top ones at equal size.
    before = pcount.queries
    spaces["predictor_top"] = top_seeds(res.original, bp.predict(res.original), size)
    meta["predictor_top"] = {"queries": q, "predictor_queries": pcount.queries - before}
    # ABS-like operation pruning at (about) LISSNAS's size.

    def classes(mask: Mask) -> int:
        if space.mask_size(mask) > cfg.enumerate_limit:
            return space.mask_size(mask)
        return len(enumerate_distinct(space, mask, cfg.enumerate_limit, rule) or [])

    mask = operation_pruning_to_size(space, pool, labels, size, classes)
    pruned = enumerate_distinct(space, mask, cfg.enumerate_limit, rule)
    if pruned is None:
        pruned = sample_distinct(space, rng, cfg.original_sample, mask, rule=rule)
    if feasible is not None:  # the pruned mask's members within the budget
        pruned = [a for a in pruned if feasible.within(a)]
    spaces["operation_pruning"] = pruned
    meta["operation_pruning"] = {
        "queries": q,
        "predictor_queries": 0,
        "mask": space.mask_to_json(mask),
        "mask_size": space.mask_size(mask),
    }
    return spaces, meta
