"""Evolutionary search and random search (naslid.evolution, naslid evolve)."""

from __future__ import annotations

import json
import time

import numpy as np
import pandas as pd
import pytest

from naslid.benchmarks import Table
from naslid.budget import Budget
from naslid.cli import main
from naslid.evolution import (
    HISTORY_COLUMNS,
    EvolutionConfig,
    crossover,
    evolve,
    mutate,
    random_search,
)
from naslid.scorer import Scorer, TableScorer
from naslid.spaces import nb201

SPACE = nb201.SPACE
BEST_ACC = 94.3733  # best c10_test_acc_200 cell of the shared table


def additive_score(arch) -> float:
    """A smooth synthetic objective: conv-heavy cells score high, unique optimum all-3x3."""
    weights = np.array([0.0, 1.0, 2.0, 3.0, 0.5])
    return float(weights[list(arch.ops)].sum() + 0.01 * arch.ops[0])


def additive_oracle(archs):
    return np.array([additive_score(a) for a in archs])


class CountingOracle:
    """Records every batch it is asked to score."""

    def __init__(self) -> None:
        self.batches: list[list] = []

    def __call__(self, archs):
        self.batches.append(list(archs))
        return additive_oracle(archs)


# ------------------------------------------------------------------ operators
def test_mutation_changes_each_slot_with_probability_p_to_another_option():
    rng = np.random.default_rng(0)
    parent = SPACE.make([0, 1, 2, 3, 4, 0])
    n = 20000
    children = np.array([mutate(SPACE, parent, 0.1, rng).ops for _ in range(n)])
    changed = children != np.array(parent.ops)
    # Per slot, Binomial(20000, 0.1): sd 0.0021; the bound is ~5 sd.
    assert np.all(np.abs(changed.mean(axis=0) - 0.1) < 0.011)
    # The number of changed slots per child is Binomial(6, 0.1): P(none) = 0.9**6 = 0.531.
    assert abs((changed.sum(axis=1) == 0).mean() - 0.9**6) < 0.02
    # A moved slot takes each of the 4 other options about equally often (1/4 each).
    moved = children[:, 0][changed[:, 0]]
    freq = np.bincount(moved, minlength=5) / moved.size
    assert freq[0] == 0.0
    assert np.all(np.abs(freq[1:] - 0.25) < 0.05)


def test_mutation_respects_the_mask():
    rng = np.random.default_rng(1)
    mask = ((3,), (2, 3), (0, 1, 4), (1,), (2, 3), (0, 1, 2, 3, 4))
    parent = SPACE.make([3, 2, 4, 1, 3, 0])
    children = np.array([mutate(SPACE, parent, 0.3, rng, mask).ops for _ in range(5000)])
    assert all(SPACE.contains(mask, SPACE.make(c)) for c in np.unique(children, axis=0))
    assert np.all(children[:, 0] == 3) and np.all(children[:, 3] == 1)  # single-option slots
    # A two-option slot moves (to its only other option) with probability exactly p.
    assert set(children[:, 1]) == {2, 3}
    assert abs((children[:, 1] == 3).mean() - 0.3) < 0.03


def test_crossover_takes_each_slot_from_the_second_parent_with_probability_p():
    rng = np.random.default_rng(2)
    a = SPACE.make([0, 0, 0, 0, 0, 0])
    b = SPACE.make([1, 2, 3, 4, 1, 2])
    assert crossover(SPACE, a, b, 0.0, rng) == a
    assert crossover(SPACE, a, b, 1.0, rng) == b
    children = np.array([crossover(SPACE, a, b, 0.1, rng).ops for _ in range(20000)])
    from_b = children == np.array(b.ops)
    assert np.all((children == 0) | from_b)  # every slot comes from one of the parents
    assert np.all(np.abs(from_b.mean(axis=0) - 0.1) < 0.011)
    # Slot choices are independent: P(child == a) = 0.9**6.
    assert abs((~from_b).all(axis=1).mean() - 0.9**6) < 0.02


def test_config_defaults_are_the_papers():
    c = EvolutionConfig()
    assert (c.population, c.generations, c.mutation_prob, c.crossover_prob) == (50, 50, 0.1, 0.1)
    assert (c.num_parents, c.num_mutations, c.num_crossovers) == (10, 20, 20)
    with pytest.raises(ValueError, match="mutation_prob"):
        EvolutionConfig(mutation_prob=1.5)
    with pytest.raises(ValueError, match="budget"):
        EvolutionConfig(budget=0)


# ------------------------------------------------------------------ evolution
def test_no_arch_is_scored_twice_and_the_budget_stops_the_search():
    oracle = CountingOracle()
    result = evolve(SPACE, oracle, EvolutionConfig(budget=520), rng=3)
    scored = [a for batch in oracle.batches for a in batch]
    keys = [str(SPACE.canonical(a)) for a in scored]
    assert len(scored) == 520 and len(set(keys)) == 520  # distinct isomorphism classes
    assert [len(b) for b in oracle.batches] == [50] * 10 + [20]  # one call per generation
    hist = result.history
    assert list(hist.columns) == list(HISTORY_COLUMNS)
    assert hist["latency"].isna().all()  # no latency table: unknown, never 0
    assert len(hist) == 520 and hist["generation"].max() == 10
    assert hist["arch"].tolist() == [str(a) for a in scored]
    np.testing.assert_allclose(hist["flops"], [SPACE.flops(a) for a in scored])
    np.testing.assert_allclose(hist["params"], [SPACE.params(a) for a in scored])
    assert (hist.loc[hist.generation == 0, "origin"] == "random").all()
    later = hist.loc[hist.generation == 1, "origin"].value_counts()
    assert later["mutation"] == 20 and later["crossover"] == 20 and later["random"] == 10


def test_children_descend_from_the_top_20_percent():
    result = evolve(SPACE, additive_oracle, EvolutionConfig(budget=100), rng=4)
    hist = result.history
    gen0 = hist[hist.generation == 0].sort_values("score", ascending=False, kind="stable")
    parents = [nb201.Arch.from_str(s) for s in gen0["arch"][:10]]
    for origin in ("mutation", "crossover"):
        kids = [
            nb201.Arch.from_str(s)
            for s in hist[(hist.generation == 1) & (hist.origin == origin)].arch
        ]
        assert len(kids) == 20
        if origin == "mutation":  # P(>3 slots move) = 0.0013; a random cell: 0.65 per child
            assert all(min(SPACE.edit_distance(k, p) for p in parents) <= 3 for k in kids)
        else:  # every slot of a crossover child is some parent's option for that slot
            assert all(all(k.ops[s] in {p.ops[s] for p in parents} for s in range(6)) for k in kids)


def test_evolution_finds_the_optimum_of_a_smooth_objective():
    result = evolve(SPACE, additive_oracle, EvolutionConfig(budget=400), rng=5)
    assert result.best["arch"] == str(SPACE.make([3] * 6))
    assert result.best["score"] == pytest.approx(18.03)
    scores = [t["score"] for t in result.top]
    assert len(scores) == 10 and scores == sorted(scores, reverse=True)


def test_same_seed_same_history_and_other_seed_other_history():
    cfg = EvolutionConfig(budget=200)
    a = evolve(SPACE, additive_oracle, cfg, rng=np.random.default_rng(7))
    b = evolve(SPACE, additive_oracle, cfg, rng=7)
    c = evolve(SPACE, additive_oracle, cfg, rng=8)
    pd.testing.assert_frame_equal(a.history, b.history)
    assert a.top == b.top
    assert a.history["arch"].tolist() != c.history["arch"].tolist()
    r1 = random_search(SPACE, additive_oracle, 120, rng=7)
    r2 = random_search(SPACE, additive_oracle, 120, rng=7)
    pd.testing.assert_frame_equal(r1.history, r2.history)


@pytest.mark.parametrize("search", ["evolution", "random"])
def test_flops_and_params_limits_are_respected(search):
    flops_max, params_max = 100.0, 0.8
    if search == "evolution":
        cfg = EvolutionConfig(budget=300)
        result = evolve(SPACE, additive_oracle, cfg, rng=9, limits=Budget(flops_max, params_max))
    else:
        result = random_search(
            SPACE, additive_oracle, 300, rng=9, limits=Budget(flops_max, params_max)
        )
    assert len(result.history) == 300
    assert result.history["flops"].max() <= flops_max
    assert result.history["params"].max() <= params_max
    # without the limits the search goes for the 153-MFLOPs all-3x3 cell
    assert result.history["flops"].max() > 90.0


def test_restriction_to_an_explicit_set():
    rng = np.random.default_rng(10)
    allowed = SPACE.sample(rng, 300)
    allowed_ops = {a.ops for a in allowed}
    oracle = CountingOracle()
    result = evolve(SPACE, oracle, EvolutionConfig(budget=150), rng=11, restrict=allowed)
    assert len(result.history) == 150
    assert all(nb201.Arch.from_str(s).ops in allowed_ops for s in result.history.arch)
    assert set(result.history.origin) >= {"random", "mutation"}
    # A set smaller than the budget: each of its isomorphism classes is scored exactly once.
    small = allowed[:40]
    classes = {str(SPACE.canonical(a)) for a in small}
    for res in (
        evolve(SPACE, additive_oracle, EvolutionConfig(budget=500), rng=12, restrict=small),
        random_search(SPACE, additive_oracle, 500, rng=12, restrict=small),
    ):
        got = [str(SPACE.canonical(nb201.Arch.from_str(s))) for s in res.history.arch]
        assert sorted(got) == sorted(classes)


def test_search_inside_a_mask_exhausts_a_small_mask():
    mask = ((3,), (2, 3), (3,), (1, 3), (3,), (2, 3))  # 8 cells
    result = evolve(SPACE, additive_oracle, EvolutionConfig(budget=100), rng=13, mask=mask)
    archs = [nb201.Arch.from_str(s) for s in result.history.arch]
    assert all(SPACE.contains(mask, a) for a in archs)
    classes = {str(SPACE.canonical(a)) for a in SPACE.all_archs(mask)}
    assert len(archs) == len(classes)
    assert {str(SPACE.canonical(a)) for a in archs} == classes


def test_bad_evaluators_are_refused():
    with pytest.raises(ValueError, match="returned 1 scores for 50 archs"):
        evolve(SPACE, lambda archs: np.zeros(1), EvolutionConfig(budget=60), rng=0)
    with pytest.raises(ValueError, match="non-finite score nan"):
        random_search(SPACE, lambda archs: np.full(len(archs), np.nan), 10, rng=0)


def test_table_scorer_looks_archs_up():
    archs = SPACE.sample(np.random.default_rng(0), 3)
    table = Table("t", "acc", {str(a): float(i) for i, a in enumerate(archs)})
    scorer = TableScorer(table)
    assert isinstance(scorer, Scorer) and scorer.table is table
    np.testing.assert_array_equal(scorer(archs), [0.0, 1.0, 2.0])


# ------------------------------------------------------------------ NAS-Bench-201
def test_evolution_beats_random_search_with_500_queries_on_nb201(nb201_table):
    """NAS-LID's evolution (paper defaults, budget 500 = its first 10 generations) against
    random search with the same 500 distinct queries, 10 seeds, the table as oracle."""
    oracle = TableScorer(nb201_table)
    start = time.perf_counter()
    evo = [evolve(SPACE, oracle, EvolutionConfig(budget=500), rng=s).best for s in range(10)]
    rnd = [random_search(SPACE, oracle, 500, rng=s).best for s in range(10)]
    elapsed = time.perf_counter() - start
    evo_acc = np.mean([nb201_table[b["arch"]] for b in evo])
    rnd_acc = np.mean([nb201_table[b["arch"]] for b in rnd])
    print(f"evolution {evo_acc:.4f}, random {rnd_acc:.4f}, 10 seeds each, {elapsed:.1f} s")
    assert evo_acc >= 94.2
    assert evo_acc > rnd_acc
    assert max(nb201_table.accuracy.values()) == pytest.approx(BEST_ACC)


# ------------------------------------------------------------------ CLI
@pytest.fixture()
def synthetic_table(tmp_path):
    path = tmp_path / "synthetic.csv"
    archs = list(SPACE.all_archs())
    pd.DataFrame(
        {"arch_str": [str(a) for a in archs], "acc": [additive_score(a) for a in archs]}
    ).to_csv(path, index=False)
    return f"table:{path}:acc"


def test_cli_evolve_writes_top_and_history(tmp_path, synthetic_table):
    out = tmp_path / "run"
    argv = ["evolve", "--space", "nb201", "--oracle", synthetic_table, "--budget", "150"]
    assert main(argv + ["--seed", "1", "--out", str(out), "--top", "5"]) == 0
    top = json.loads((out / "top.json").read_text())
    assert len(top) == 5 and [t["score"] for t in top] == sorted(
        (t["score"] for t in top), reverse=True
    )
    assert set(top[0]) == {"arch", "score", "flops_M", "params_M", "on_front"}  # no latency
    arch = nb201.Arch.from_str(top[0]["arch"])
    assert top[0]["flops_M"] == nb201.flops(arch) and top[0]["params_M"] == nb201.params(arch)
    hist = pd.read_parquet(out / "history.parquet")
    pd.testing.assert_frame_equal(hist, pd.read_csv(out / "history.csv"), check_dtype=False)
    assert len(hist) == 150 and top[0]["score"] == hist["score"].max()
    meta = json.loads((out / "meta.json").read_text())
    assert meta["seed"] == 1 and meta["config"]["population"] == 50

    # restriction to a LISSNAS-style space.csv, random-search baseline
    space_csv = tmp_path / "space.csv"
    pd.DataFrame({"arch_str": hist["arch"][:30], "x": 0}).to_csv(space_csv, index=False)
    out2 = tmp_path / "run2"
    argv2 = argv + ["--out", str(out2), "--restrict", str(space_csv), "--method", "random"]
    assert main(argv2) == 0
    assert set(pd.read_csv(out2 / "history.csv")["arch"]) <= set(hist["arch"][:30])


def test_cli_evolve_refuses_a_budget_it_cannot_spend(tmp_path, synthetic_table, capsys):
    argv = ["evolve", "--oracle", synthetic_table, "--out", str(tmp_path / "o")]
    assert main(argv + ["--budget", "41", "--population", "10", "--generations", "4"]) == 1
    err = capsys.readouterr().err.strip()
    assert "budget: 41 exceeds population 10 x generations 4 = 40" in err
    assert len(err.splitlines()) == 1 and not (tmp_path / "o").exists()


def test_cli_evolve_bad_input_names_the_file(tmp_path, synthetic_table, capsys):
    missing = tmp_path / "nope.csv"
    argv = [
        "evolve",
        "--oracle",
        synthetic_table,
        "--out",
        str(tmp_path / "o"),
        "--restrict",
        str(missing),
    ]
    assert main(argv) == 1
    assert "nope.csv" in capsys.readouterr().err
