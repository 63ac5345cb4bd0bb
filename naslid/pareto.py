"""The Pareto front of a search: proxy accuracy (maximised) against FLOPs, parameters and
latency (each minimised, whichever are known) over every scored arch (issue 24), and the best
arch within a budget.

Dominance is the usual one (Deb, *Multi-Objective Optimization Using Evolutionary
Algorithms*, 2001, def. 2.5): point ``a`` dominates ``b`` when ``a``'s score is ``>=`` ``b``'s,
each of ``a``'s costs is ``<=`` ``b``'s, and at least one of these is strict. The front is the
set of points no other point dominates. Points equal in score and every cost (duplicates)
dominate none of each other; of such a group only the **first scored** (lowest row) is on
the front, so the front holds each trade-off once and the same history always gives the same
front.

An objective whose column is absent or NaN in every row (latency without a lookup table) is
*unknown* and left out, never read as 0; a column NaN in only some rows is refused, naming it
(an objective is known for every arch or for none).

Algorithms: one cost is the classic sweep (sort by cost, keep each point that beats every
score before it; Kung, Luccio and Preparata, J. ACM 22(4), 1975), O(n log n); more costs are
an O(n^2) comparison, vectorised over the other points, which takes well under a second at
the search's n <= 2,500. No dependency of the project computes fronts (pymoo's
``NonDominatedSorting`` does, but pymoo is a large framework to add for twenty lines).

Names and units, one table (:data:`OBJECTIVES`): the search history's columns are ``flops``
and ``params`` (millions, ``space.flops`` / ``space.params``) and ``latency`` (milliseconds,
predicted from a measured lookup table); in ``front.json`` they are ``flops_M``, ``params_M``
and ``latency_ms``, as ``best.json`` names ``flops_M`` and ``params_M``.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from naslid.budget import METRICS
from naslid.io import write_json

FRONT_FILE = "front.json"
"""The search artifact's front summary (:func:`write_front`)."""


@dataclass(frozen=True)
class Objective:
    """A cost the front minimises: its history column, its ``front.json`` field (with the
    unit), and its axis label."""

    column: str
    field: str
    label: str


OBJECTIVES: tuple[Objective, ...] = (
    Objective("flops", "flops_M", "FLOPs (M)"),
    Objective("params", "params_M", "parameters (M)"),
    Objective("latency", "latency_ms", "latency (ms)"),
)
"""Every cost the front may hold, in the order the front is sorted by (first known first):
the metrics a budget limits (:data:`naslid.budget.METRICS`), in their order."""
assert tuple(o.column for o in OBJECTIVES) == METRICS

SCORE = "score"
"""The maximised objective: the history column and the ``front.json`` field."""

_BY_COLUMN = {o.column: o for o in OBJECTIVES}


# ------------------------------------------------------------------ the front
def _known_columns(costs: np.ndarray) -> np.ndarray:
    """The columns of ``costs`` that are known: all-NaN columns dropped, partly NaN refused."""
    nan = np.isnan(costs)
    partial = nan.any(axis=0) & ~nan.all(axis=0)
    if partial.any():
        j = int(np.flatnonzero(partial)[0])
        raise ValueError(
            f"costs: column {j} is NaN in {int(nan[:, j].sum())} of {len(costs)} rows "
            "(an objective must be known for every point or for none)"
        )
    return costs[:, ~nan.all(axis=0)]


def _front_one_cost(scores: np.ndarray, cost: np.ndarray) -> np.ndarray:
    """Sweep by cost ascending (ties: score descending, then first scored): a point is on the
    front when its score beats every score before it."""
    order = np.lexsort((np.arange(len(scores)), -scores, cost))
    ranked = scores[order]
    before = np.maximum.accumulate(ranked)
    keep = np.empty(len(ranked), dtype=bool)
    keep[0] = True  # the cheapest, most accurate, first scored: dominated by nothing
    keep[1:] = ranked[1:] > before[:-1]
    return np.sort(order[keep])


def _front_many_costs(scores: np.ndarray, costs: np.ndarray) -> np.ndarray:
    """Each point against all others: dominated, or a duplicate of an earlier point, is out."""
    keep = np.empty(len(scores), dtype=bool)
    for i in range(len(scores)):
        no_worse = (scores >= scores[i]) & (costs <= costs[i]).all(axis=1)
        better = (scores > scores[i]) | (costs < costs[i]).any(axis=1)
        dominated = (no_worse & better).any()
        duplicate = (no_worse[:i] & ~better[:i]).any()
        keep[i] = not (dominated or duplicate)
    return np.flatnonzero(keep)


def front_indices(scores: Sequence[float], costs: Any) -> list[int]:
    """The rows on the Pareto front, ascending: ``scores`` (n,) maximised, every column of
    ``costs`` ((n,) or (n, k), e.g. FLOPs, parameters, latency) minimised.

    Duplicates (equal score and costs): only the first row is on the front. All-NaN cost
    columns (unknown objectives) are dropped first; with no cost left the front is the first
    best score. NaN scores and partly-NaN cost columns are refused (``ValueError``)."""
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    c = np.asarray(costs, dtype=np.float64)
    c = c.reshape(-1, 1) if c.ndim == 1 else c
    if c.ndim != 2 or c.shape[0] != len(s):
        raise ValueError(f"costs: expected one row per score ({len(s)}), got shape {c.shape}")
    if np.isnan(s).any():
        raise ValueError(f"scores: NaN at index {int(np.flatnonzero(np.isnan(s))[0])}")
    c = _known_columns(c)
    if not len(s):
        return []
    if c.shape[1] == 0:
        return [int(np.argmax(s))]
    found = _front_one_cost(s, c[:, 0]) if c.shape[1] == 1 else _front_many_costs(s, c)
    return [int(i) for i in found]


# ------------------------------------------------------------------ a history's front
def known_objectives(history: pd.DataFrame) -> list[Objective]:
    """The costs ``history`` knows: its columns of :data:`OBJECTIVES` that are not NaN in
    every row (a column NaN in only some rows is refused, naming it)."""
    if SCORE not in history.columns or "arch" not in history.columns:
        missing = SCORE if SCORE not in history.columns else "arch"
        raise ValueError(f"history: no column {missing!r}")
    scores = history[SCORE].to_numpy(dtype=np.float64)
    if np.isnan(scores).any():
        raise ValueError(f"history: score is NaN in row {int(np.flatnonzero(np.isnan(scores))[0])}")
    known = []
    for o in OBJECTIVES:
        if o.column not in history.columns:
            continue
        nan = np.isnan(history[o.column].to_numpy(dtype=np.float64))
        if nan.all():
            continue
        if nan.any():
            raise ValueError(
                f"history: column {o.column!r} is NaN in {int(nan.sum())} of {len(nan)} rows "
                "(an objective must be known for every arch or for none)"
            )
        known.append(o)
    return known


def _check_limits(limits: Mapping[str, float | None], what: str) -> dict[str, float | None]:
    """``limits`` by history column, every objective present (None: unset); an unknown name
    or a limit that is not a number >= 0 refused, naming it."""
    out: dict[str, float | None] = {o.column: None for o in OBJECTIVES}
    for name, value in limits.items():
        if name not in _BY_COLUMN:
            raise ValueError(f"{what}: unknown objective {name!r} (known: {', '.join(_BY_COLUMN)})")
        if value is not None:
            if isinstance(value, bool) or not isinstance(value, numbers.Real):
                raise ValueError(f"{what}: {name} must be a number or None, got {value!r}")
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{what}: {name} must be finite and >= 0, got {value!r}")
            value = float(value)
        out[name] = value
    return out


def _cost_matrix(history: pd.DataFrame, objectives: Sequence[Objective]) -> np.ndarray:
    return (
        history[[o.column for o in objectives]]
        .to_numpy(dtype=np.float64)
        .reshape(len(history), len(objectives))
    )


def best_within(history: pd.DataFrame, limits: Mapping[str, float | None]) -> pd.Series | None:
    """The row of ``history`` with the best score whose costs are all ``<=`` ``limits``
    (by history column: ``flops``, ``params``, ``latency``; None: no limit), or None when no
    row fits. Ties in score: the lower costs (in :data:`OBJECTIVES` order), then the first
    scored; so the row returned is on the front (:func:`front_indices`). A limit on an
    objective the history does not know is refused."""
    known = known_objectives(history)
    limits = _check_limits(limits, "limits")
    names = {o.column for o in known}
    fits = np.ones(len(history), dtype=bool)
    for column, limit in limits.items():
        if limit is None:
            continue
        if column not in names:
            raise ValueError(f"limits: {column} is not known in this history (no values)")
        fits &= history[column].to_numpy(dtype=np.float64) <= limit
    if not fits.any():
        return None
    rows = np.flatnonzero(fits)
    costs = _cost_matrix(history, known)[rows]
    scores = history[SCORE].to_numpy(dtype=np.float64)[rows]
    keys = (rows, *costs.T[::-1], -scores)  # lexsort: the last key is the primary one
    return history.iloc[int(rows[np.lexsort(keys)[0]])]


def _entry(row: pd.Series, objectives: Sequence[Objective]) -> dict:
    return {
        "arch": str(row["arch"]),
        SCORE: float(row[SCORE]),
        **{o.field: float(row[o.column]) for o in objectives},
    }


def _ladder(low: float, high: float, steps: int) -> list[float]:
    """``steps`` limits evenly spaced from ``low`` to ``high`` (the last exactly ``high``),
    repeats dropped (a front with one cost value gives one limit)."""
    values = [high] if steps == 1 else np.linspace(low, high, steps).tolist()
    return list(dict.fromkeys(float(v) for v in values))


def front_summary(
    history: pd.DataFrame, budget: Mapping[str, float | None], ladder: int = 5
) -> dict:
    """What ``front.json`` holds (JSON-able; fields named with units, see the module):

    - ``objectives``: ``{"score": "max", "flops_M": "min", "params_M": "min",
      "latency_ms": "min"}``, the costs only when known;
    - ``budget``: the user's limits, ``{"flops_M", "params_M", "latency_ms"}``, None where
      unset (``budget`` is keyed by history column: ``flops``, ``params``, ``latency``);
    - ``front``: ``[{"arch", "score", "flops_M", ...}]``, the non-dominated rows of
      ``history`` (:func:`front_indices`), by the first known cost ascending (ties: score
      descending, then first scored);
    - ``best_within``: per known cost, ``ladder`` limits evenly spaced from its smallest to
      its largest value on the front (the last: no extra limit), each
      ``{"metric": "flops_M", "limit": x, "arch", "score", "flops_M", ...}`` with the best
      arch within it (:func:`best_within`, that limit alone).
    """
    if isinstance(ladder, bool) or not isinstance(ladder, int) or ladder < 1:
        raise ValueError(f"ladder: must be an integer >= 1, got {ladder!r}")
    if not len(history):
        raise ValueError("history: no scored arch")
    known = known_objectives(history)
    user = _check_limits(budget, "budget")
    costs = _cost_matrix(history, known)
    scores = history[SCORE].to_numpy(dtype=np.float64)
    on_front = np.asarray(front_indices(scores, costs), dtype=np.int64)
    if known:
        keys = (on_front, -scores[on_front], costs[on_front, 0])
        on_front = on_front[np.lexsort(keys)]
    ladders = []
    for j, o in enumerate(known):
        values = costs[on_front, j]
        for limit in _ladder(float(values.min()), float(values.max()), ladder):
            row = best_within(history, {o.column: limit})
            ladders.append({"metric": o.field, "limit": limit, **_entry(row, known)})
    return {
        "objectives": {SCORE: "max", **{o.field: "min" for o in known}},
        "budget": {o.field: user[o.column] for o in OBJECTIVES},
        "front": [_entry(history.iloc[int(i)], known) for i in on_front],
        "best_within": ladders,
    }


def write_front(
    history: pd.DataFrame, out_dir: str | Path, budget: Mapping[str, float | None]
) -> Path:
    """``out_dir/front.json`` (:func:`front_summary`), written atomically; call it before the
    artifact's ``meta.json`` is sealed, e.g. ``write_front(result.history, out,
    budget.limits())`` (a :class:`naslid.budget.Budget`)."""
    return write_json(Path(out_dir) / FRONT_FILE, front_summary(history, budget))
