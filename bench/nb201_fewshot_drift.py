"""How far do the few-shot benchmark's sub-supernets move from the supernet they split from?

``bench/nb201_fewshot.py`` found that no split criterion ranks cells measurably better than
one-shot at its CPU scale. One explanation: with 5 + 5 fine-tuning epochs continuing the
parent's schedule at its last learning rate, the sub-supernets hardly move, so every
criterion inherits the parent's ranking. This benchmark measures it on the models that run
left in ``--work`` (it trains nothing): per seed, the proxy of the pretrained supernet, of
one-shot (trained on 10 epochs) and of every finished criterion's sub-supernets scores the
same uniformly drawn connected cells (those of the benchmark's ``uniform{N}``), and it
reports Kendall tau between each criterion's scores and the pretrained supernet's, and
one-shot's. Against the table, each criterion's tau is recomputed and checked against the
run's own ``result.json`` (the same proxy, the same cells: they must agree).

Near 1 against the pretrained supernet: the fine-tuning left the ranking where it was, so
no split could change it. Per seed the figures are kept in ``--work/seed{S}/drift.json``, so
seeds run as separate processes and a later call with every seed only summarises.

CPU (after the few-shot benchmark; one process per seed, then all seeds to summarise):
    python bench/nb201_fewshot_drift.py --data ../shared/data/cifar10-packed --seeds 0 1 2
Quick (the quick benchmark's models):  python bench/nb201_fewshot_drift.py --quick --seeds 0
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

from nb201_fewshot import (  # the benchmark's own models, probes and proxy (bench/ on sys.path)
    CRITERIA,
    DEFAULT_CRITERIA,
    Models,
    apply_scale,
    criteria_of,
    finished,
    interval,
    load_data,
    probes,
    proxy,
    split_and_train,
)

from naslid.benchmarks import DEFAULT_NB201_CSV, load_table
from naslid.distributed import resolve_device
from naslid.evaluate import correlations
from naslid.io import write_json
from naslid.spaces import nb201

REFERENCES = ("table", "pretrained", "oneshot")


def tau(a: list[float], b: list[float]) -> float:
    return correlations(a, b)["kendall_tau"]


def seed_drift(args, seed: int, train_data, valid, table, device) -> dict:
    """One seed's taus: every finished criterion's proxy against the table, the pretrained
    supernet's proxy and one-shot's, on the benchmark's uniform cells."""
    models = Models(args, seed, train_data, device)
    _, uniform = probes(table, seed, args.sample)
    truth = table.lookup([str(a) for a in uniform]).tolist()
    root = models.root / "supernet"
    if not (root / "meta.json").is_file():
        raise SystemExit(f"--work: {models.root} holds no pretrained supernet (run the benchmark)")
    t = time.process_time()
    whole = [(nb201.SPACE.full_mask(), root)]
    scores = {"pretrained": list(map(float, proxy(args, models, whole, valid)(uniform)))}
    out: dict = {"cells": len(uniform), "pretrained": {"table": tau(scores["pretrained"], truth)}}
    for name in ["oneshot", *(n for n in criteria_of(args) if n != "oneshot")]:
        done = finished(models, name)
        if done is None:  # not finished: its models may not exist, and nothing is trained here
            if name == "oneshot":
                raise SystemExit(f"--work: one-shot is not finished for seed {seed}")
            continue
        leaves, _ = split_and_train(name, args, models, {})
        scores[name] = list(map(float, proxy(args, models, leaves, valid)(uniform)))
        uni = next(k for k in done["correlations"] if k.startswith("uniform"))
        row = {
            "table": tau(scores[name], truth),
            "recorded": done["correlations"][uni]["kendall_tau"],
        }
        if not math.isclose(row["table"], row["recorded"], abs_tol=1e-9):
            raise SystemExit(
                f"seed {seed} {name}: tau against the table {row['table']:.6f} here, "
                f"{row['recorded']:.6f} in its result.json: the proxy is not the run's"
            )
        out[name] = row | {ref: tau(scores[name], scores[ref]) for ref in REFERENCES[1:]}
        print(f"seed {seed} {name}: {out[name]}", flush=True)
    out["cpu_s"] = time.process_time() - t
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", help="the CIFAR-10 folder the benchmark ran on")
    p.add_argument("--quick", dest="scale", action="store_const", const="quick", default="cpu")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument(
        "--criteria", nargs="+", default=DEFAULT_CRITERIA, choices=[*CRITERIA, "random", "oneshot"]
    )
    p.add_argument("--table", default=f"table:{DEFAULT_NB201_CSV}:c10_test_acc_200")
    p.add_argument("--work", default="bench/results/nb201_fewshot")
    p.add_argument("--out", default="bench/results/nb201_fewshot_drift.json")
    args = apply_scale(p.parse_args())
    if args.scale != "quick" and not args.data:
        p.error("--data: the CIFAR-10 folder the benchmark ran on is needed")
    args.progress = False
    device = resolve_device("auto")
    table = load_table(args.table)
    train_data, valid = load_data(args)
    per_seed = {}
    for seed in args.seeds:
        path = Path(args.work) / f"seed{seed}" / "drift.json"
        if not path.is_file():
            write_json(path, seed_drift(args, seed, train_data, valid, table, device))
        per_seed[seed] = json.loads(path.read_text())
        print(f"seed {seed}: " + json.dumps(per_seed[seed]), flush=True)
    names = [n for n in criteria_of(args) if all(n in r for r in per_seed.values())]
    summary = {
        "pretrained": {"table": interval([r["pretrained"]["table"] for r in per_seed.values()])},
        **{
            n: {ref: interval([r[n][ref] for r in per_seed.values()]) for ref in REFERENCES}
            for n in names
        },
    }
    report = {
        "benchmark": "nb201_fewshot_drift",
        "seeds": args.seeds,
        "summary": summary,
        "per_seed": per_seed,
    }
    write_json(Path(args.out), report)
    for n, row in summary.items():
        print(f"{n:17s} " + "  ".join(f"{ref} {v['mean']:+.3f}" for ref, v in row.items()))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
