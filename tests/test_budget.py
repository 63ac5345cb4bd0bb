"""Hardware budgets (issue 24): every searched arch is within the limits, by construction."""

from __future__ import annotations

import math

import numpy as np
import pytest

from naslid.budget import Budget, Feasible
from naslid.evolution import EvolutionConfig, crossover, evolve, mutate, random_search
from naslid.spaces import mobilenet, nb201, ofa

SPACES = {"nb201": nb201.SPACE, "mobilenet": mobilenet.SPACE, "ofa": ofa.SPACE}


def score_by_flops(archs):
    """A scorer that prefers big networks: without limits the search runs to the largest."""
    return np.array(
        [nb201.SPACE.flops(a) if isinstance(a, nb201.Arch) else a.ops[0] for a in archs]
    )


def scattered(archs):
    """A deterministic score with no relation to size."""
    return np.array([float(hash(a.ops) % 1000) for a in archs])


def never_called(archs):
    raise AssertionError("an arch was scored")


def fake_latency(arch) -> float:
    """A latency predictor for tests: ms grow with the option indices."""
    return 1.0 + 0.5 * sum(arch.ops)


# ------------------------------------------------------------------ the budget itself
@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"flops_max": -1.0}, "flops_max"),
        ({"params_max": math.nan}, "params_max"),
        ({"latency_max": math.inf}, "latency_max"),
        ({"flops_max": True}, "flops_max"),
        ({"params_max": "5"}, "params_max"),
    ],
)
def test_a_bad_limit_is_refused_naming_its_field(kwargs, field):
    with pytest.raises(ValueError, match=f"^{field}:"):
        Budget(**kwargs)


def test_minimum_is_exact_on_nb201():
    f = Feasible(nb201.SPACE)
    archs = list(nb201.SPACE.all_archs())
    for metric, fn in (("flops", nb201.flops), ("params", nb201.params)):
        low, arch = f.minimum(metric)
        assert low == min(fn(a) for a in archs) == fn(arch)


@pytest.mark.parametrize("name", ["mobilenet", "ofa"])
def test_minimum_by_descent_is_below_every_draw_and_locally_minimal(name):
    space = SPACES[name]
    f = Feasible(space)
    low, arch = f.minimum("flops")
    assert low == pytest.approx(space.flops(arch))
    draws = space.sample(np.random.default_rng(0), 3000)
    assert low <= min(space.flops(a) for a in draws)
    for slot, options in enumerate(space.slot_options):  # no single move lowers it
        for option in range(len(options)):
            ops = list(arch.ops)
            ops[slot] = option
            assert space.flops(space.network(space.arch_type(tuple(ops)))) >= low - 1e-9


def test_a_budget_nothing_meets_is_refused_with_the_minimum_before_any_scoring():
    low, _ = Feasible(nb201.SPACE).minimum("flops")
    with pytest.raises(ValueError, match=rf"^flops_max: .* its minimum is {low:.4g} M FLOPs$"):
        evolve(nb201.SPACE, never_called, EvolutionConfig(), 0, limits=Budget(flops_max=low / 2))
    with pytest.raises(ValueError, match="^params_max: no arch of space ofa"):
        random_search(ofa.SPACE, never_called, 10, rng=0, limits=Budget(params_max=0.01))


def test_limits_met_alone_but_not_together_are_refused():
    f_low, f_arch = Feasible(nb201.SPACE).minimum("flops")
    archs = list(nb201.SPACE.all_archs())
    # the latency predictor below is cheapest where FLOPs are highest
    peak = max(nb201.flops(a) for a in archs)

    def latency(arch):
        return 1.0 + peak - nb201.flops(arch)

    with pytest.raises(ValueError, match="^budget: no arch of space nb201 meets .* at once"):
        Feasible(nb201.SPACE, Budget(flops_max=f_low, latency_max=1.0), latency=latency).check()


def test_a_latency_limit_needs_a_predictor():
    with pytest.raises(ValueError, match="^latency_max: a latency limit needs a latency table"):
        evolve(nb201.SPACE, never_called, EvolutionConfig(), 0, limits=Budget(latency_max=3.0))


# ------------------------------------------------------------------ the operators
def test_without_limits_the_operators_draw_exactly_as_the_papers():
    f = Feasible(nb201.SPACE)
    for seed in range(20):
        a, b = nb201.SPACE.sample(np.random.default_rng(seed), 2)
        r1, r2 = np.random.default_rng(seed), np.random.default_rng(seed)
        assert f.mutate(a, 0.5, r1) == mutate(nb201.SPACE, a, 0.5, r2)
        assert f.crossover(a, b, 0.5, r1) == crossover(nb201.SPACE, a, b, 0.5, r2)


@pytest.mark.parametrize("name", ["nb201", "mobilenet", "ofa"])
def test_operators_and_draws_stay_inside_a_tight_budget(name):
    space = SPACES[name]
    low, _ = Feasible(space).minimum("flops")
    f = Feasible(space, Budget(flops_max=low * 1.15))
    rng = np.random.default_rng(1)
    drawn = f.sample(rng, 200)
    assert len(drawn) == 200 and all(f.within(a) for a in drawn)
    for _ in range(200):
        a, b = drawn[int(rng.integers(200))], drawn[int(rng.integers(200))]
        assert f.within(f.mutate(a, 0.3, rng))
        assert f.within(f.crossover(a, b, 0.5, rng))
    # and they still move: the budget does not freeze the search
    assert len({a.ops for a in drawn}) > 50


def test_evolution_under_a_tight_budget_keeps_the_papers_shares_and_never_goes_over():
    flops = np.array([nb201.flops(a) for a in nb201.SPACE.all_archs()])
    limit = float(np.quantile(flops, 0.15))
    cfg, limits = EvolutionConfig(budget=500), Budget(flops_max=limit)
    result = evolve(nb201.SPACE, score_by_flops, cfg, rng=3, limits=limits)
    hist = result.history
    assert len(hist) == 500
    assert hist["flops"].max() <= limit
    assert all(t["flops_M"] <= limit for t in result.top)
    # the best cell under the limit is found: the largest FLOPs at or below it
    assert result.best["flops_M"] == pytest.approx(flops[flops <= limit].max())

    # a scorer with no taste for size: the first generation of children holds the paper's
    # 20 mutations and 20 crossovers of 50 (later ones fewer only when the parents'
    # neighbourhoods run out of unscored archs, with or without a budget)
    hist = evolve(nb201.SPACE, scattered, cfg, rng=3, limits=limits).history
    first = hist[hist["generation"] == 1]["origin"].value_counts()
    assert first["mutation"] == 20 and first["crossover"] == 20


def test_latency_limit_with_a_predictor_is_met_and_recorded():
    cfg, limits = EvolutionConfig(budget=200), Budget(latency_max=4.0)
    result = evolve(nb201.SPACE, score_by_flops, cfg, rng=0, limits=limits, latency=fake_latency)
    hist = result.history
    assert hist["latency"].max() <= 4.0
    assert hist["latency"].tolist() == [fake_latency(nb201.Arch.from_str(s)) for s in hist["arch"]]
    assert result.best["latency_ms"] <= 4.0


def test_a_restricted_set_over_budget_is_refused_naming_it():
    archs = [a for a in nb201.SPACE.sample(np.random.default_rng(0), 400) if nb201.flops(a) > 100]
    with pytest.raises(ValueError, match=rf"^flops_max: no arch of the {len(set(archs))} allowed"):
        evolve(
            nb201.SPACE,
            never_called,
            EvolutionConfig(budget=10),
            rng=0,
            restrict=archs,
            limits=Budget(flops_max=50.0),
        )


def test_random_search_in_a_huge_space_under_a_tight_budget_scores_its_budget():
    low, _ = Feasible(ofa.SPACE).minimum("flops")
    limits = Budget(flops_max=low * 1.05)
    result = random_search(ofa.SPACE, score_by_flops, 120, rng=4, limits=limits)
    assert len(result.history) == 120
    assert result.history["flops"].max() <= low * 1.05


# ------------------------------------------------------------------ LISSNAS
@pytest.mark.parametrize("name, factor", [("nb201", None), ("mobilenet", 1.3)])
def test_lissnas_seeds_neighbours_and_baselines_stay_within_the_budget(name, factor):
    from naslid import lissnas as L

    space = SPACES[name]
    if factor is None:  # NB201: the median cell's FLOPs
        limit = float(np.median([space.flops(a) for a in space.all_archs()]))
    else:
        limit = Feasible(space).minimum("flops")[0] * factor
    feasible = Feasible(space, Budget(flops_max=limit))

    def labeller(archs):  # bigger is better: unbounded, LISSNAS would grow past the limit
        return np.array([50 + space.flops(a) / 10 for a in archs])

    cfg = L.LissnasConfig(
        samples=200, original_sample=1000, max_ball_size=500, diversity_sample=500,
        xgb_n_estimators=50, max_iterations=3,
    )  # fmt: skip
    run = L.run(space, labeller, cfg, seed=0, feasible=feasible)
    res = run.result
    for archs in (res.archs, res.labelled, res.original, *run.baseline_archs.values()):
        assert archs and max(space.flops(a) for a in archs) <= limit
    assert run.stats["budget"]["flops_max"] == limit
    if name == "nb201":  # the original space is every class within the budget
        classes = {space.canonical(a) for a in space.all_archs()}
        assert len(res.original) == sum(space.flops(a) <= limit for a in classes)


def test_cli_budgets_are_checked_before_any_label_or_oracle(tmp_path, capsys):
    from naslid.cli import main

    low = Feasible(nb201.SPACE).minimum("params")[0]
    missing = f"table:{tmp_path / 'absent.csv'}:acc"
    for argv, match in (
        (["lissnas", "--labels", missing, "--params-max", f"{low / 2}"], "params_max: no arch"),
        (["evolve", "--oracle", missing, "--latency-max", "3"], "--latency-max: needs"),
        (["evolve", "--oracle", missing, "--flops-max", "-1"], "--flops-max: must be >= 0"),
    ):
        assert main([*argv, "--out", str(tmp_path / "o")]) == 1
        err = capsys.readouterr().err.strip()
        assert match in err and len(err.splitlines()) == 1, err


# ------------------------------------------------------------------ the regret benchmark
def test_regret_benchmark_against_the_tables_best_cell_within_the_budget(nb201_csv, tmp_path):
    """bench/nb201_budget_regret.py at a tiny setting: the budget's optimum is the table's best
    cell within it, no returned arch breaks the budget, regrets are never negative."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    out = tmp_path / "regret.json"
    done = subprocess.run(
        [sys.executable, str(repo / "bench" / "nb201_budget_regret.py"), "--seeds", "2",
         "--queries", "60", "--quantiles", "0.2", "--out", str(out),
         "--table", f"table:{nb201_csv}:c10_test_acc_200"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(out.read_text())
    from naslid.benchmarks import load_table

    table = load_table(f"table:{nb201_csv}:c10_test_acc_200")
    for row in result["rows"]:
        within = [
            acc
            for arch, acc in table.accuracy.items()
            if nb201.flops(nb201.Arch.from_str(arch)) <= row["flops_max"]
        ]
        assert row["optimum"] == max(within)
        assert row["over_budget"] == 0 and row["regret"]["mean"] >= 0
    assert {r["method"] for r in result["rows"]} == {"evolution", "random"}


def test_top_entries_say_whether_they_are_on_the_front_of_everything_scored():
    cfg = EvolutionConfig(budget=150, top_k=40)
    result = evolve(nb201.SPACE, scattered, cfg, 5, latency=fake_latency)
    rows = result.history[["score", "flops", "params", "latency"]].to_numpy()
    for entry in result.top:  # brute force: no scored arch at least as good everywhere
        me = np.array([entry["score"], entry["flops_M"], entry["params_M"], entry["latency_ms"]])
        better = (rows[:, 0] >= me[0]) & (rows[:, 1:] <= me[1:]).all(axis=1)
        strictly = (rows[:, 0] > me[0]) | (rows[:, 1:] < me[1:]).any(axis=1)
        assert entry["on_front"] == (not (better & strictly).any())
    assert {e["on_front"] for e in result.top} == {True, False}  # the check saw both cases


# ------------------------------------------------------------------ the search steps
def test_search_step_reads_the_latency_table_and_meets_every_limit(smoke_chain, tmp_path):
    """The pipeline's search step: the measured table predicts every arch's latency, a
    latency and a FLOPs limit are met, front.json and meta.json say so; a table of another
    space, a latency limit without a table and an unmeetable limit are refused before any
    arch is scored."""
    import json

    import pandas as pd

    from naslid import latency, steps

    table_dir = tmp_path / "latency"
    steps.measure_latency(table_dir, profile="smoke")
    table = latency.load_table(table_dir)
    draws = nb201.SPACE.sample(np.random.default_rng(0), 200)
    limit = float(np.median([table.predict(a) for a in draws]))
    flops = float(np.median([nb201.flops(a) for a in draws]))
    out = tmp_path / "search"
    args = (smoke_chain["data"], smoke_chain["p1"], smoke_chain["space"])
    steps.evolutionary_search(
        *args, out, table_dir, profile="smoke", search_budget=6, latency_max=limit,
        flops_max=flops,
    )  # fmt: skip
    hist = pd.read_parquet(out / "history.parquet")
    assert hist["latency"].tolist() == [table.predict(a) for a in hist["arch"]]
    assert hist["latency"].max() <= limit and hist["flops"].max() <= flops
    front = json.loads((out / "front.json").read_text())
    assert "latency_ms" in front["objectives"] and front["budget"]["latency_ms"] == limit
    meta = json.loads((out / "meta.json").read_text())
    assert meta["budget"] == {"flops_max": flops, "params_max": None, "latency_max": limit}
    assert meta["latency_device"] == table.device["name"]
    best = json.loads((out / "best.json").read_text())
    assert best["latency_ms"] <= limit

    other = tmp_path / "mobile-latency"
    latency.write_table(latency.measure(mobilenet.SPACE, warmup=0, repeats=1), other)
    low = Feasible(nb201.SPACE).minimum("flops")[0]
    for kwargs, match in (
        ({"latency": other}, "latency table: field 'space' is 'mobilenet'"),
        ({"latency_max": 5.0}, "latency_max: the step was given no latency table"),
        ({"flops_max": low / 2}, "flops_max: no arch of space nb201 meets"),
    ):
        with pytest.raises(ValueError, match=match):
            steps.evolutionary_search(
                *args, tmp_path / "refused", profile="smoke", search_budget=6, **kwargs
            )
        assert not (tmp_path / "refused" / "history.parquet").exists()


def test_cli_checks_the_latency_table_against_the_space_and_the_device(tmp_path, capsys):
    import json

    from naslid import latency
    from naslid.cli import main

    table_dir = tmp_path / "lat"
    latency.write_table(latency.measure(nb201.SPACE, warmup=0, repeats=1), table_dir)
    table = latency.load_table(table_dir)
    small = tmp_path / "lat64"  # another input size: another network than FLOPs describe
    latency.write_table(latency.measure(nb201.SPACE, warmup=0, repeats=1, resolution=64), small)
    archs = list(nb201.SPACE.all_archs())
    csv = tmp_path / "t.csv"
    csv.write_text(
        "arch_str,acc\n" + "".join(f"{a},{s / 10}\n" for a, s in zip(archs, scattered(archs)))
    )
    oracle = f"table:{csv}:acc"
    base = ["evolve", "--oracle", oracle, "--budget", "20", "--latency-table", str(table_dir)]
    for argv, match in (
        (["--space", "ofa"], "latency table: field 'space' is 'nb201'"),
        (["--latency-device", "NVIDIA H100"], "field 'device.name' is"),
        (["--latency-table", str(small)], "field 'resolution' is 64"),
    ):
        assert main([*base, *argv, "--out", str(tmp_path / "o")]) == 1
        err = capsys.readouterr().err.strip()
        assert match in err and len(err.splitlines()) == 1, err
    limit = float(
        np.median([table.predict(a) for a in nb201.SPACE.sample(np.random.default_rng(0), 50)])
    )
    argv = [*base, "--latency-device", table.device["name"], "--latency-max", str(limit)]
    assert main([*argv, "--out", str(tmp_path / "ok")]) == 0
    front = json.loads((tmp_path / "ok" / "front.json").read_text())
    assert front["budget"]["latency_ms"] == limit
    assert max(p["latency_ms"] for p in front["front"]) <= limit


def test_the_check_is_exact_where_the_archs_are_enumerated():
    """Three archs, each cheapest in something, only one within both limits: accepted."""
    x, y, z = (
        nb201.Arch.from_str(s)
        for s in (
            "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|",
            "|none~0|+|none~0|skip_connect~1|+|nor_conv_3x3~0|none~1|none~2|",
            "|none~0|+|none~0|nor_conv_1x1~1|+|nor_conv_1x1~0|nor_conv_1x1~1|nor_conv_1x1~2|",
        )
    )
    ms = {x: 10.0, y: 1.0, z: 5.0}
    f = Feasible(nb201.SPACE, Budget(flops_max=30.0, latency_max=6.0), latency=ms.get)
    assert [f.within(a) for a in (x, y, z)] == [False, False, True]
    f.check([x, y, z])
    assert f.anchor([x, y, z]) == z


def test_the_minimum_of_a_mask_stays_inside_it():
    """OFA: a unit whose last layer may not be skip has depth 4; the descent must not reach
    a shorter unit through ``network`` (which would put skip there)."""
    mask = list(ofa.SPACE.full_mask())
    last = ofa.unit_slots(1)[-1]
    mask[last] = tuple(o for o in mask[last] if o != ofa.SKIP_INDEX)
    mask = tuple(mask)
    free, held = Feasible(ofa.SPACE), Feasible(ofa.SPACE, mask=mask)
    low, arch = held.minimum("flops")
    assert ofa.SPACE.contains(mask, arch) and low > free.minimum("flops")[0]
    draws = [a for a in ofa.SPACE.sample(np.random.default_rng(0), 2000, mask)]
    assert low <= min(ofa.SPACE.flops(a) for a in draws if ofa.SPACE.contains(mask, a))
    with pytest.raises(ValueError, match="^flops_max: no arch of space ofa meets"):
        Feasible(
            ofa.SPACE, Budget(flops_max=(low + free.minimum("flops")[0]) / 2), mask=mask
        ).check()
    f = Feasible(ofa.SPACE, Budget(flops_max=low * 1.05), mask=mask)
    assert all(ofa.SPACE.contains(mask, a) for a in f.sample(np.random.default_rng(1), 100))


def test_measure_latency_stops_a_latency_budget_nothing_meets(tmp_path):
    from naslid import steps

    with pytest.raises(ValueError, match="^latency_max: no arch of space nb201 meets 1e-06 ms"):
        steps.measure_latency(tmp_path / "lat", profile="smoke", latency_max=1e-6)
    assert not (tmp_path / "lat" / "meta.json").exists()
