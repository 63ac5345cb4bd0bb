"""LISSNAS against its baselines on NAS-Bench-201 table columns, with 95% intervals over seeds.

    .venv/bin/python bench/lissnas.py [--seeds 10] [--labels table:CSV:COLUMN ...]
        [--variants paper,ensemble_lcb,pocket_filter] [--evolution-samples 100]
        [--evolution-budgets 150,200,300,500]

For every label column (``--labels``, repeatable) and RNG seed: LISSNAS as the paper defines it
(``paper``), the variants that stay within its idea, and the baselines of appendix H at the
same number of oracle labels and LISSNAS's size (``naslid.lissnas.baseline_spaces``). Every
statistic is summarised as mean +- the 95% t-interval half-width over seeds, with win counts of
LISSNAS (paper) against each baseline. Downstream (issue 12, item 6): evolution restricted to
the space of a paper-LISSNAS run with ``--evolution-samples`` labels against plain evolution at
equal *total* oracle queries (the shrinkage's labels included), reported as the best accuracy
among every arch queried. (Plain evolution finds the best NB201 cell within 500 queries, see
"Evolution against random search", so budgets above LISSNAS's 1,000+ labels cannot separate.)

Prints markdown tables (pasted into bench/RESULTS.md) and writes bench/results/lissnas.json.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
from scipy import stats as sps

from naslid import lissnas
from naslid.benchmarks import load_table
from naslid.evolution import EvolutionConfig, evolve
from naslid.io import write_json
from naslid.scorer import TableScorer
from naslid.spaces import nb201

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("NASLID_SHARED", REPO.parent / "shared"))
CSV = SHARED / "data" / "nb201" / "nb201_cifar10.csv"
DEFAULT_LABELS = [f"table:{CSV}:c10_test_acc_200", f"table:{CSV}:c10v_valid_acc_200"]
VARIANTS = {
    "paper": {},
    "ensemble_lcb": {"seed_rule": "ensemble_lcb"},
    "pocket_filter": {"pocket_filter": True},
}
KEYS = ("size", "size_cells", "mean_accuracy", "max_accuracy", "regret", "si_top_1%",
        "si_top_5%", "si_top_10%", "ks_statistic", "edf_area", "diversity_edit_distance",
        "flops_coverage", "queries", "predictor_queries")  # fmt: skip
HIGHER = {
    "mean_accuracy": True,
    "regret": False,
    "si_top_1%": True,
    "diversity_edit_distance": True,
}


def portable(spec: str) -> str:
    """The table spec with the shared folder written as ``../shared`` (no machine paths)."""
    return spec.replace(str(SHARED), "../shared")


def flat(s: dict) -> dict:
    out = {k: s[k] for k in KEYS if k in s}
    for name, v in s["shrink_indices"].items():
        out[f"si_{name}"] = v["shrink_index"]
    return out


def interval(values) -> tuple[float, float]:
    """Mean and the half-width of its 95% t-interval (0 for one value)."""
    v = np.asarray(values, dtype=np.float64)
    if len(v) < 2:
        return float(v.mean()), 0.0
    return float(v.mean()), float(sps.t.ppf(0.975, len(v) - 1) * v.std(ddof=1) / math.sqrt(len(v)))


def fmt(values, digits: int = 2) -> str:
    m, h = interval(values)
    return f"{m:.{digits}f} ± {h:.{digits}f}"


def downstream(table, res, budgets, seed: int) -> dict:
    """Evolution inside the shrunk space with (budget - shrinkage labels) queries against plain
    evolution with the whole budget; best accuracy among all archs queried (labels included)."""
    oracle = TableScorer(table)
    best_labelled = float(np.max(res.labels))
    out = {}
    for budget in budgets:
        left = budget - res.queries
        row = {"budget": budget, "shrink_labels": res.queries}
        plain = evolve(nb201.SPACE, oracle, EvolutionConfig(budget=budget), seed)
        row["plain"] = float(plain.history["score"].max())
        if left > 0:
            inner = evolve(
                nb201.SPACE, oracle, EvolutionConfig(budget=left), seed, restrict=res.archs
            )
            row["shrunk"] = max(best_labelled, float(inner.history["score"].max()))
            row["shrunk_scored"] = len(inner.history)
        else:
            row["shrunk"] = best_labelled
            row["shrunk_scored"] = 0
        out[str(budget)] = row
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--samples", type=int, default=lissnas.LissnasConfig.samples)
    parser.add_argument("--top-seeds", type=int, default=lissnas.LissnasConfig.top_seeds)
    parser.add_argument("--labels", action="append", help="table:CSV:COLUMN (repeatable)")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--evolution-samples", type=int, default=100)
    parser.add_argument("--evolution-budgets", default="150,200,300,500")
    parser.add_argument("--out", default=str(REPO / "bench" / "results" / "lissnas.json"))
    args = parser.parse_args()
    if args.seeds < 2:
        parser.error("--seeds: need at least 2 for an interval")
    labels = args.labels or DEFAULT_LABELS
    variants = [v for v in args.variants.split(",") if v]
    unknown = set(variants) - set(VARIANTS)
    if unknown or "paper" not in variants:
        parser.error(f"--variants: choose among {', '.join(VARIANTS)}, 'paper' included")
    budgets = [int(b) for b in args.evolution_budgets.split(",") if b]
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    machine = f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, no GPU"
    print(f"# bench/lissnas.py on {machine}; seeds {seeds.start}-{seeds.stop - 1}\n")
    results = {}
    for spec in labels:
        table = load_table(spec)
        ds = lissnas.cost_dataset_for(nb201.SPACE, spec)
        base = lissnas.LissnasConfig(
            samples=args.samples, top_seeds=args.top_seeds, cost_dataset=ds
        )
        rows: dict[str, list[dict]] = {v: [] for v in variants}
        evo, cpu, iters = [], {v: [] for v in variants}, {v: [] for v in variants}
        for seed in seeds:
            for v in variants:
                cfg = replace(base, **VARIANTS[v], baselines=v == "paper")
                c0 = time.process_time()
                run = lissnas.run(nb201.SPACE, TableScorer(table), cfg, seed=seed)
                cpu[v].append(time.process_time() - c0)
                iters[v].append(run.stats["iterations"])
                rows[v].append(flat(run.stats))
                if v == "paper":
                    for name, b in run.stats["baselines"].items():
                        rows.setdefault(f"baseline {name}", []).append(flat(b))
            small = replace(base, samples=args.evolution_samples, baselines=False)
            res = lissnas.shrink(nb201.SPACE, TableScorer(table), small, seed)
            evo.append(downstream(table, res, budgets, seed))
            p = rows["paper"][-1]
            print(f"<!-- {portable(spec)} seed {seed}: size {p['size']} mean "
                  f"{p['mean_accuracy']:.2f} regret {p['regret']:.2f} -->", flush=True)  # fmt: skip
        results[portable(spec)] = {
            "runs": rows,
            "evolution": evo,
            "cpu_s": cpu,
            "iterations": iters,
        }

        column = spec.rsplit(":", 1)[-1]
        print(f"\n### `{column}` ({len(seeds)} seeds, mean ± 95% interval)\n")
        head = ["space", "size (classes)", "cells", "mean acc.", "max acc.", "regret", "SI top 1%",
                "SI top 5%", "SI top 10%", "KS vs compl.", "EDF area", "edit div.", "FLOPs cov.",
                "labels", "pred. queries"]  # fmt: skip
        print("| " + " | ".join(head) + " |")
        print("|" + "---|" * len(head))
        for name, rs in rows.items():
            col = {k: [r[k] for r in rs] for k in rs[0]}
            cells = [
                fmt(col["size"], 0), fmt(col["size_cells"], 0), fmt(col["mean_accuracy"]),
                fmt(col["max_accuracy"]), fmt(col["regret"]), fmt(col["si_top_1%"], 3),
                fmt(col["si_top_5%"], 3), fmt(col["si_top_10%"], 3), fmt(col["ks_statistic"], 3),
                fmt(col["edf_area"], 2), fmt(col["diversity_edit_distance"], 2),
                fmt(col["flops_coverage"], 2), fmt(col["queries"], 0), fmt(col["predictor_queries"], 0),
            ]  # fmt: skip
            label = f"**LISSNAS {name}**" if name in variants else name
            print(f"| {label} | " + " | ".join(cells) + " |")
        print("\nLISSNAS (paper) better than the row, in runs of " + str(len(seeds)) + ":\n")
        print("| against | mean acc. | regret (lower) | SI top 1% | edit diversity |")
        print("|---|---|---|---|---|")
        paper = rows["paper"]
        for name, rs in rows.items():
            if name == "paper":
                continue
            wins = []
            for k, higher in HIGHER.items():
                n = sum((a[k] > b[k]) if higher else (a[k] < b[k]) for a, b in zip(paper, rs))
                ties = sum(a[k] == b[k] for a, b in zip(paper, rs))
                wins.append(f"{n}" + (f" (+{ties} ties)" if ties else ""))
            print(f"| {name} | " + " | ".join(wins) + " |")
        print("\n| LISSNAS variant | iterations kept | CPU s per run |")
        print("|---|---|---|")
        for v in variants:
            print(f"| {v} | {fmt(iters[v], 1)} | {fmt(cpu[v], 1)} |")
        print("\nEvolution at equal total oracle queries (best accuracy among every arch queried; "
              f"LISSNAS with {args.evolution_samples} uniform labels plus refits, then evolution "
              "inside its space with the rest of the budget):\n")  # fmt: skip
        print("| total queries | plain evolution | LISSNAS labels + evolution in the shrunk space "
              "| shrunk better / equal / worse |")  # fmt: skip
        print("|---|---|---|---|")
        for budget in budgets:
            plain = [e[str(budget)]["plain"] for e in evo]
            shrunk = [e[str(budget)]["shrunk"] for e in evo]
            better = sum(s > p for s, p in zip(shrunk, plain))
            equal = sum(s == p for s, p in zip(shrunk, plain))
            print(f"| {budget} | {fmt(plain, 3)} | {fmt(shrunk, 3)} | {better} / {equal} / "
                  f"{len(plain) - better - equal} |")  # fmt: skip
    write_json(args.out, {"machine": machine, "labels": [portable(s) for s in labels],
                          "seeds": list(seeds), "variants": variants, "results": results})  # fmt: skip
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
