"""The Pareto front of a search (issue 24): checked against the definition, written out by
brute force, on random data full of ties and duplicates, and on small cases by hand."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from naslid.budget import Budget
from naslid.io import read_json
from naslid.pareto import (
    FRONT_FILE,
    best_within,
    front_indices,
    front_summary,
    write_front,
)


def brute_front(scores, costs) -> list[int]:
    """The definition, point by point: ``j`` dominates ``i`` when its score is >=, each cost
    <=, one of them strict; an equal earlier point (a duplicate) also removes ``i``."""
    out = []
    for i in range(len(scores)):
        beaten = False
        for j in range(len(scores)):
            if j == i:
                continue
            no_worse = scores[j] >= scores[i] and all(
                cj <= ci for cj, ci in zip(costs[j], costs[i])
            )
            better = scores[j] > scores[i] or any(cj < ci for cj, ci in zip(costs[j], costs[i]))
            if no_worse and (better or j < i):
                beaten = True
                break
        if not beaten:
            out.append(i)
    return out


def tied_data(seed: int, n: int, k: int):
    """Scores and costs on coarse grids (many ties), with exact duplicates appended."""
    rng = np.random.default_rng(seed)
    scores = rng.integers(0, 12, n).astype(float)
    costs = rng.integers(0, 8, (n, k)).astype(float)
    dup = rng.integers(0, n, n // 5)
    return np.concatenate([scores, scores[dup]]), np.concatenate([costs, costs[dup]])


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("k", [1, 2, 3])
def test_front_is_the_definition_on_random_data_with_ties_and_duplicates(seed, k):
    scores, costs = tied_data(seed, 150, k)
    assert front_indices(scores, costs) == brute_front(scores, costs.tolist())


@pytest.mark.parametrize("seed", range(3))
def test_one_cost_given_flat_or_as_a_column_agrees_with_the_many_cost_path(seed):
    scores, costs = tied_data(seed, 200, 1)
    flat = front_indices(scores, costs[:, 0])
    assert flat == front_indices(scores, costs) == brute_front(scores, costs.tolist())
    # the O(n^2) path on the same points, made two-cost by a constant column
    assert front_indices(scores, np.hstack([costs, np.zeros_like(costs)])) == flat


def test_two_objectives_by_hand():
    #            0    1    2    3    4    5    6
    scores = [70.0, 60.0, 80.0, 80.0, 50.0, 70.0, 90.0]
    flops = [10.0, 5.0, 20.0, 30.0, 5.0, 10.0, 40.0]
    # 3 is dominated by 2 (same score, more FLOPs); 4 by 1; 5 duplicates 0 (0 scored first)
    assert front_indices(scores, flops) == [0, 1, 2, 6]


def test_three_objectives_by_hand():
    scores = [70.0, 70.0, 60.0, 80.0, 60.0]
    costs = [
        [10.0, 1.0],  # 0: on the front
        [10.0, 2.0],  # 1: 0 is as good and has fewer params
        [5.0, 3.0],  # 2: fewer FLOPs than anyone: on the front
        [20.0, 0.5],  # 3: best score: on the front
        [5.0, 4.0],  # 4: 2 is as good with fewer params
    ]
    assert front_indices(scores, costs) == [0, 2, 3]


def test_unknown_objectives_are_dropped_never_read_as_zero():
    scores = [70.0, 60.0, 80.0]
    flops = [10.0, 5.0, 20.0]
    unknown = [math.nan] * 3
    with_nan = np.column_stack([flops, unknown])
    assert front_indices(scores, with_nan) == front_indices(scores, flops) == [0, 1, 2]
    # read as 0 the NaN column would change nothing here, but as a score it would: no cost
    # known at all leaves the first best score alone
    assert front_indices(scores, np.column_stack([unknown, unknown])) == [2]
    assert front_indices([5.0, 7.0, 7.0], np.empty((3, 0))) == [1]
    assert front_indices([], np.empty((0, 2))) == []


def test_bad_input_is_refused_naming_it():
    with pytest.raises(ValueError, match="costs: column 1 is NaN in 1 of 3 rows"):
        front_indices([1.0, 2.0, 3.0], [[1.0, 1.0], [2.0, math.nan], [3.0, 3.0]])
    with pytest.raises(ValueError, match="scores: NaN at index 1"):
        front_indices([1.0, math.nan], [1.0, 2.0])
    with pytest.raises(ValueError, match=r"costs: expected one row per score \(2\)"):
        front_indices([1.0, 2.0], [1.0, 2.0, 3.0])


# ----------------------------------------------------------------------------- histories
def history(seed: int = 0, n: int = 120, latency: bool = True) -> pd.DataFrame:
    """A search history as ``naslid.evolution`` writes it, costs on coarse grids (ties)."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "generation": np.arange(n) // 20,
            "arch": [f"arch{i}" for i in range(n)],
            "score": rng.integers(40, 70, n).astype(float),
            "flops": rng.integers(1, 30, n) * 10.0,
            "params": rng.integers(1, 15, n) / 10.0,
            "origin": "random",
        }
    )
    frame["latency"] = rng.integers(1, 20, n) * 0.5 if latency else math.nan
    return frame


def test_best_within_respects_every_limit_and_says_none_when_nothing_fits():
    h = history(1)
    limits = {"flops": 150.0, "params": 0.8, "latency": 6.0}
    row = best_within(h, limits)
    fits = h[(h.flops <= 150.0) & (h.params <= 0.8) & (h.latency <= 6.0)]
    assert row["score"] == fits["score"].max()
    assert row["flops"] <= 150.0 and row["params"] <= 0.8 and row["latency"] <= 6.0
    # among the equally good: on the front
    front = front_indices(h["score"], h[["flops", "params", "latency"]])
    assert row.name in front
    assert best_within(h, {"flops": None})["score"] == h["score"].max()
    assert best_within(h, {"flops": 5.0}) is None
    assert best_within(h, {"params": 0.0, "flops": 1e9}) is None


def test_best_within_refuses_unknown_names_and_unknown_objectives():
    with pytest.raises(ValueError, match=r"limits: unknown objective 'mflops' \(known: flops, "):
        best_within(history(), {"mflops": 1.0})
    with pytest.raises(ValueError, match="limits: latency is not known in this history"):
        best_within(history(latency=False), {"latency": 3.0})
    with pytest.raises(ValueError, match="limits: flops must be finite and >= 0"):
        best_within(history(), {"flops": -1.0})
    broken = history()
    broken.loc[3, "latency"] = math.nan
    with pytest.raises(ValueError, match="history: column 'latency' is NaN in 1 of 120 rows"):
        best_within(broken, {})


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("latency", [True, False])
def test_front_summary_round_trips_and_holds_exactly_the_non_dominated_rows(seed, latency):
    h = history(seed, latency=latency)
    budget = {"flops": 300.0, "params": None}
    summary = front_summary(h, budget, ladder=4)
    assert json.loads(json.dumps(summary, allow_nan=False)) == summary

    costs = ["flops", "params", "latency"] if latency else ["flops", "params"]
    fields = {"flops": "flops_M", "params": "params_M", "latency": "latency_ms"}
    assert summary["objectives"] == {"score": "max", **{fields[c]: "min" for c in costs}}
    assert summary["budget"] == {"flops_M": 300.0, "params_M": None, "latency_ms": None}

    truth = brute_front(h["score"].tolist(), h[costs].to_numpy().tolist())
    got = [(e["arch"], e["score"], *(e[fields[c]] for c in costs)) for e in summary["front"]]
    want = [(h.arch[i], h.score[i], *(h[c][i] for c in costs)) for i in truth]
    assert sorted(got) == sorted(want)
    assert all(set(e) == {"arch", "score", *(fields[c] for c in costs)} for e in summary["front"])
    first = [e["flops_M"] for e in summary["front"]]
    assert first == sorted(first)

    ladder = summary["best_within"]
    assert [e["metric"] for e in ladder] == [fields[c] for c in costs for _ in range(4)]
    for c in costs:
        rungs = [e for e in ladder if e["metric"] == fields[c]]
        on_front = [e[fields[c]] for e in summary["front"]]
        assert rungs[0]["limit"] == min(on_front) and rungs[-1]["limit"] == max(on_front)
        for rung in rungs:
            fits = h[h[c] <= rung["limit"]]
            assert rung[fields[c]] <= rung["limit"]
            assert rung["score"] == fits["score"].max()
            assert (rung["arch"], rung["score"]) in {
                (e["arch"], e["score"]) for e in summary["front"]
            }
        assert rungs[-1]["score"] == h["score"].max()  # the last rung: no extra limit


def test_front_summary_refuses_bad_budgets_and_ladders():
    with pytest.raises(ValueError, match="budget: unknown objective 'flops_max'"):
        front_summary(history(), {"flops_max": 3.0})
    with pytest.raises(ValueError, match="budget: params must be a number or None, got '1'"):
        front_summary(history(), {"params": "1"})
    with pytest.raises(ValueError, match="ladder: must be an integer >= 1, got 0"):
        front_summary(history(), {}, ladder=0)
    with pytest.raises(ValueError, match="history: no scored arch"):
        front_summary(history().iloc[:0], {})
    with pytest.raises(ValueError, match="history: no column 'score'"):
        front_summary(history().drop(columns="score"), {})


def test_one_point_front_gives_one_rung_per_cost():
    h = pd.DataFrame({"arch": ["a", "b"], "score": [2.0, 1.0], "flops": [1.0, 2.0]})
    summary = front_summary(h, {}, ladder=5)
    assert summary["front"] == [{"arch": "a", "score": 2.0, "flops_M": 1.0}]
    assert summary["best_within"] == [
        {"metric": "flops_M", "limit": 1.0, "arch": "a", "score": 2.0, "flops_M": 1.0}
    ]


def test_write_front_writes_the_summary_atomically(tmp_path):
    h = history(2)
    path = write_front(h, tmp_path / "search", Budget(flops_max=250.0).limits())
    assert path == tmp_path / "search" / FRONT_FILE
    assert read_json(path, dict) == front_summary(
        h, {"flops": 250.0, "params": None, "latency": None}
    )
    assert [p.name for p in (tmp_path / "search").iterdir()] == [FRONT_FILE]  # no temporaries


def test_a_search_history_of_2500_rows_takes_well_under_a_second():
    import time

    h = history(3, n=2500)
    t0 = time.perf_counter()
    front_summary(h, {})
    assert time.perf_counter() - t0 < 5.0  # generous: a busy 2-core machine
