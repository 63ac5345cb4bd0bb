"""Ranking correlation against benchmark tables (naslid.evaluate, naslid evaluate)."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from naslid.benchmarks import Table
from naslid.cli import main
from naslid.evaluate import (
    best_found,
    correlations,
    evaluate_scores,
    load_scores,
    rank_correlation,
)


def table_of(acc: dict[str, float]) -> Table:
    return Table("hand", "acc", dict(acc))


# ------------------------------------------------------------------ hand-made data
def test_perfect_and_reversed_rankings():
    x = [0.1, 0.5, 0.7, 0.9, 1.3]
    same = correlations(x, [1, 2, 3, 4, 5])
    assert same == {"n": 5, "kendall_tau": pytest.approx(1.0), "spearman_rho": pytest.approx(1.0)}
    rev = correlations(x, [5, 4, 3, 2, 1])
    assert rev["kendall_tau"] == pytest.approx(-1.0) and rev["spearman_rho"] == pytest.approx(-1.0)


def test_small_example_against_a_hand_calculation():
    # y swaps the pairs (2,3) and (4,5): 2 discordant of 10 pairs -> tau = (8 - 2) / 10 = 0.6;
    # rank differences 0, 1, 1, 1, 1 -> rho = 1 - 6 * 4 / (5 * 24) = 0.8.
    c = correlations([1, 2, 3, 4, 5], [1, 3, 2, 5, 4])
    assert c["kendall_tau"] == pytest.approx(0.6)
    assert c["spearman_rho"] == pytest.approx(0.8)


def test_ties_use_kendall_tau_b():
    # x ties one pair: 5 concordant, 0 discordant, 6 pairs, 1 tied in x only:
    # tau_b = 5 / sqrt((6 - 1) * (6 - 0)) = 5 / sqrt(30).
    c = correlations([1, 2, 2, 3], [1, 2, 3, 4])
    assert c["kendall_tau"] == pytest.approx(5 / math.sqrt(30))


def test_constant_or_too_short_input_is_undefined_not_nan():
    const = correlations([0.3, 0.3, 0.3], [1, 2, 3])
    assert const["kendall_tau"] is None and const["spearman_rho"] is None
    assert const["undefined"] == "constant proxy scores"
    assert correlations([1, 2, 3], [7, 7, 7])["undefined"] == "constant table accuracies"
    assert correlations([1.0], [2.0])["undefined"].startswith("fewer than 2")
    with pytest.raises(ValueError, match="finite"):
        correlations([1.0, float("nan")], [1.0, 2.0])
    with pytest.raises(ValueError, match="equal length"):
        correlations([1.0, 2.0], [1.0])


def test_top_k_is_taken_among_the_archs_that_have_a_proxy_score():
    truth = table_of({"a1": 6, "a2": 5, "a3": 4, "a4": 3, "a5": 2, "a6": 1})
    proxy = {"a2": 1.0, "a3": 3.0, "a4": 2.0, "a5": 0.0, "a6": -1.0, "zz": 9.0}  # a1 unscored
    out = rank_correlation(proxy, truth, subsets=(3, 10))
    # top3 = a2, a3, a4 (not the table's a1, a2, a3): truth 5 > 4 > 3, proxy 1, 3, 2
    # pairs (a2,a3) and (a2,a4) discordant, (a3,a4) concordant -> tau = -1/3, rho = -0.5
    assert out["top3"]["n"] == 3
    assert out["top3"]["kendall_tau"] == pytest.approx(-1 / 3)
    assert out["top3"]["spearman_rho"] == pytest.approx(-0.5)
    assert out["top10"]["n"] == 5 and out["all"]["n"] == 5  # "zz" is not in the table
    x = [1.0, 3.0, 2.0, 0.0, -1.0]
    assert out["all"]["kendall_tau"] == pytest.approx(
        stats.kendalltau(x, [5, 4, 3, 2, 1]).statistic
    )


def test_random_sample_is_reproducible_and_bounded():
    rng = np.random.default_rng(0)
    acc = {f"arch{i}": float(v) for i, v in enumerate(rng.normal(size=200))}
    proxy = {k: v + rng.normal(scale=0.5) for k, v in acc.items()}
    truth = table_of(acc)
    a = rank_correlation(proxy, truth, sample=50, rng=1)
    b = rank_correlation(proxy, truth, sample=50, rng=1)
    assert a == b and a["scored_sample50"]["n"] == 50
    assert rank_correlation(proxy, truth, sample=500, rng=1)["scored_sample500"]["n"] == 200
    assert 0.5 < a["all"]["kendall_tau"] < 0.9  # noisy but informative proxy
    assert "scored ones" in a["scored_sample50"]["covers"]


def test_uniform_correlation_covers_the_uniform_archs_alone():
    """The top cells scored besides a uniform draw never enter the uniform figure: here the
    uniform archs are ranked perfectly and the top ones backwards, so any mixing shows."""
    acc = {f"u{i}": float(i) for i in range(20)} | {f"t{i}": 100.0 + i for i in range(10)}
    proxy = {f"u{i}": float(i) for i in range(20)} | {f"t{i}": -float(i) for i in range(10)}
    truth = table_of(acc)
    uniform = [f"u{i}" for i in range(20)] + ["not-scored"]
    out = rank_correlation(proxy, truth, subsets=(10,), uniform=uniform)
    assert out["uniform20"]["n"] == 20 and out["uniform20"]["kendall_tau"] == pytest.approx(1.0)
    assert out["top10"]["kendall_tau"] == pytest.approx(-1.0)
    assert out["all"]["kendall_tau"] < 1.0
    assert "uniformly" in out["uniform20"]["covers"] and "most accurate" in out["top10"]["covers"]


def test_best_found_looks_up_the_best_proxy_arch():
    truth = table_of({"a": 90.0, "b": 94.0, "c": 93.0, "d": 91.0})
    best = best_found({"a": 0.1, "c": 0.9, "d": 0.9}, truth)  # tie c/d: smallest string
    assert best == {
        "arch": "c",
        "proxy_score": 0.9,
        "accuracy": 93.0,
        "table_rank": 2,
        "table_size": 4,
        "table_best": 94.0,
    }
    with pytest.raises(ValueError, match="none of the 1 archs"):
        best_found({"zz": 1.0}, truth)
    with pytest.raises(ValueError, match="not finite"):
        rank_correlation({"a": float("nan"), "b": 1.0}, truth)


def test_load_scores_formats_and_errors(tmp_path):
    csv = tmp_path / "s.csv"
    pd.DataFrame({"arch": ["a", "b", "a"], "score": [1.0, 2.0, 1.0]}).to_csv(csv, index=False)
    assert load_scores(csv) == {"a": 1.0, "b": 2.0}
    pq = tmp_path / "s.parquet"
    pd.DataFrame({"arch_str": ["a"], "acc": [3.0]}).to_parquet(pq)
    assert load_scores(pq, column="acc") == {"a": 3.0}
    pd.DataFrame({"arch": ["a", "a"], "score": [1.0, 2.0]}).to_csv(csv, index=False)
    with pytest.raises(ValueError, match="two scores"):
        load_scores(csv)
    with pytest.raises(ValueError, match="no column 'acc'"):
        load_scores(csv, column="acc")
    with pytest.raises(FileNotFoundError, match="missing.csv"):
        load_scores(tmp_path / "missing.csv")


# ------------------------------------------------------------------ NAS-Bench-201
def test_nb201_top_k_subsets_are_the_tables_best(nb201_table):
    """Every cell scored by the 12-epoch accuracy (a cheap proxy): the top-k subsets are the
    table's own top-k, and the figures equal scipy's on them."""
    from naslid.benchmarks import load_table

    short = load_table(nb201_table.name.rsplit(":", 1)[0] + ":c10_test_acc_12")
    proxy = dict(short.accuracy)
    out = evaluate_scores(proxy, nb201_table, sample=1000, rng=0)
    assert out["num_in_table"] == 15625 and out["num_missing_in_table"] == 0
    top = nb201_table.top(50)
    ref = stats.kendalltau([proxy[a] for a in top], nb201_table.lookup(top)).statistic
    assert out["correlations"]["top50"]["kendall_tau"] == pytest.approx(ref)
    assert out["correlations"]["all"]["kendall_tau"] > out["correlations"]["top50"]["kendall_tau"]
    best = min(proxy, key=lambda a: (-proxy[a], a))
    assert out["best"]["arch"] == best and out["best"]["accuracy"] == nb201_table[best]


# ------------------------------------------------------------------ CLI
def test_cli_evaluate_writes_json(tmp_path):
    table_csv = tmp_path / "table.csv"
    archs = [f"arch{i}" for i in range(8)]
    pd.DataFrame({"arch_str": archs, "acc": np.arange(8.0)}).to_csv(table_csv, index=False)
    scores = tmp_path / "scores.csv"
    pd.DataFrame({"arch_str": archs[::-1], "score": np.arange(8.0)}).to_csv(scores, index=False)
    out = tmp_path / "eval.json"
    argv = ["evaluate", "--scores", str(scores), "--table", f"table:{table_csv}:acc"]
    assert main(argv + ["--out", str(out), "--subsets", "3,5", "--sample", "4"]) == 0
    report = json.loads(out.read_text())
    assert set(report["correlations"]) == {"top3", "top5", "all", "scored_sample4"}
    assert report["correlations"]["all"]["kendall_tau"] == pytest.approx(-1.0)
    assert report["best"]["arch"] == "arch0" and report["best"]["table_rank"] == 8
    assert main(argv[:2] + [str(tmp_path / "nope.csv")] + argv[3:] + ["--out", str(out)]) == 1
