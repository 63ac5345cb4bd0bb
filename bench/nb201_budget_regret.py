"""Constrained search on NAS-Bench-201 against ground truth (issue 24, point 4).

    .venv/bin/python bench/nb201_budget_regret.py [--seeds 20] [--queries 100 300 500]
        [--quantiles 0.1 0.25 0.5 0.75] [--table table:CSV:COLUMN] [--out JSON]

With the benchmark table as oracle (default ``c10_test_acc_200`` of the shared NB201 table),
for each FLOPs budget (the given quantiles of the 15,625 cells' FLOPs under the NB201 cost
model, C=16 N=5 on CIFAR-10) and each number of oracle queries: NAS-LID's evolution
(paper hyper-parameters, 50 x 50, stopped after the queries) and random search, both inside
the budget (:mod:`naslid.budget`), one run per seed. The regret of a run is the table's best
accuracy among the cells within the budget minus the table accuracy of the arch the search
returns (the best it scored: with the table as oracle, the score is the accuracy). Reported:
mean regret with its 95 % t-interval over seeds, how many seeds returned a cell of the budget's
best accuracy and how many an arch of the isomorphism class of such a cell (the search scores
one member per class, and the table's members of one class differ by their training noise,
up to about 0.5 points), and
whether any returned arch broke the budget (never, by construction; counted anyway).

Prints a Markdown table (bench/RESULTS.md) and writes bench/results/nb201_budget_regret.json.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import time
from pathlib import Path

import numpy as np
from nb201_fewshot import interval  # one mean-and-t-interval for the benches (bench/ on sys.path)

from naslid.benchmarks import DEFAULT_NB201_CSV, load_table
from naslid.budget import Budget
from naslid.evolution import EvolutionConfig, evolve, random_search
from naslid.io import write_json
from naslid.scorer import TableScorer
from naslid.spaces import nb201

REPO = Path(__file__).resolve().parents[1]
METHODS = ("evolution", "random")


def budget_optimum(table, limit: float) -> tuple[float, list[str]]:
    """The table's best accuracy among the cells within ``limit`` M FLOPs, and every cell
    within it that has that accuracy (the table's accuracies tie)."""
    within = {
        arch: acc
        for arch, acc in table.accuracy.items()
        if nb201.flops(nb201.Arch.from_str(arch)) <= limit
    }
    best = max(within.values())
    return float(best), sorted(a for a, acc in within.items() if acc == best)


def canonical(arch: str) -> str:
    return str(nb201.SPACE.canonical(nb201.Arch.from_str(arch)))


def one_run(method: str, scorer, queries: int, limits: Budget, seed: int):
    if method == "evolution":
        return evolve(nb201.SPACE, scorer, EvolutionConfig(budget=queries), seed, limits=limits)
    return random_search(nb201.SPACE, scorer, queries, seed, limits=limits)


def run(args: argparse.Namespace) -> dict:
    table = load_table(args.table)
    scorer = TableScorer(table)
    all_flops = np.array([nb201.flops(a) for a in nb201.SPACE.all_archs()])
    budgets = [float(np.quantile(all_flops, q)) for q in args.quantiles]
    rows = []
    t0 = time.perf_counter()
    for q, limit in zip(args.quantiles, budgets):
        optimum, optimal = budget_optimum(table, limit)
        optimal_classes = {canonical(a) for a in optimal}
        limits = Budget(flops_max=limit)
        for queries in args.queries:
            for method in METHODS:
                regrets, hits, class_hits, over = [], 0, 0, 0
                for seed in range(args.seeds):
                    best = one_run(method, scorer, queries, limits, seed).best
                    over += nb201.flops(nb201.Arch.from_str(best["arch"])) > limit  # own count
                    accuracy = table.accuracy[best["arch"]]
                    regrets.append(optimum - accuracy)
                    hits += accuracy == optimum
                    class_hits += canonical(best["arch"]) in optimal_classes
                rows.append(
                    {
                        "quantile": q,
                        "flops_max": limit,
                        "optimum": optimum,
                        "optimal_cells": optimal,
                        "queries": queries,
                        "method": method,
                        "regret": interval(regrets),
                        "found_optimum": hits,
                        "found_optimum_class": class_hits,
                        "over_budget": over,
                        "seeds": args.seeds,
                    }
                )
                r = rows[-1]
                print(
                    f"q={q:<5} flops<={limit:7.2f}  {queries:4d} queries  {method:9s} regret "
                    f"{r['regret']['mean']:.3f}  optimum {hits}/{args.seeds}",
                    flush=True,
                )
    return {
        "bench": "nb201_budget_regret",
        "table": args.table.replace(str(REPO.parent), ".."),
        "seeds": args.seeds,
        "quantiles": args.quantiles,
        "queries": args.queries,
        "rows": rows,
        "seconds": time.perf_counter() - t0,
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count()},
    }


def markdown(result: dict) -> str:
    lines = [
        "| FLOPs budget (quantile) | budget's best (table) | queries | evolution regret [95 % CI] | "
        "found: cell / class | random regret [95 % CI] | found: cell / class |",
        "|---|---|---|---|---|---|---|",
    ]
    by = {(r["quantile"], r["queries"], r["method"]): r for r in result["rows"]}

    def cell(r: dict) -> str:
        lo, hi = r["regret"].get("ci95", [math.nan, math.nan])
        found = f"{r['found_optimum']} / {r['found_optimum_class']} of {r['seeds']}"
        return f"{r['regret']['mean']:.3f} [{lo:.3f}, {hi:.3f}] | {found}"

    for q in result["quantiles"]:
        for queries in result["queries"]:
            e, r = by[(q, queries, "evolution")], by[(q, queries, "random")]
            lines.append(
                f"| {e['flops_max']:.2f} M ({q:g}) | {e['optimum']:.2f} | {queries} | {cell(e)} | "
                f"{cell(r)} |"
            )
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", type=int, default=20)
    p.add_argument("--queries", type=int, nargs="+", default=[100, 300, 500])
    p.add_argument("--quantiles", type=float, nargs="+", default=[0.1, 0.25, 0.5, 0.75])
    p.add_argument("--table", default=f"table:{DEFAULT_NB201_CSV}:c10_test_acc_200")
    p.add_argument("--out", default=str(REPO / "bench" / "results" / "nb201_budget_regret.json"))
    args = p.parse_args()
    for q in args.quantiles:
        if not 0 < q <= 1:
            p.error(f"--quantiles: each must lie in (0, 1], got {q}")
    result = run(args)
    md = markdown(result)
    result["markdown"] = md
    write_json(Path(args.out), result)
    print(md)
    print(f"{result['seconds']:.0f} s -> {args.out}")


if __name__ == "__main__":
    main()
