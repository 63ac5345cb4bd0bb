"""How stable is one split decision? Agreement across batch draws as profiling batches grow.

NAS-LID profiles each candidate operation's layer-wise LID on random batches (section 3.2);
GM-NAS averages gradient cosines over 100 repeats. One batch is a noisy estimate, so the
decision -- which never-partitioned edge splits, into which two groups -- can change with the
draw. This benchmark trains the smoke supernet (the ``smoke`` profile: digits at 16 px, NB201
C=8, N=1) for each supernet seed, then, per criterion and per number of batches B, profiles
the root on ``--draws`` independent batch draws and reports how often the decision agrees
with the most common one (edge and groups; edge alone), and by how much the chosen edge's
score leads the runner-up's (near 0: a tie the draw decides). It names the smallest B whose
decision agrees in >= 90 % of the draws, averaged over the seeds, if any; under the paper's
edge rule none does, and ``LIDConfig.num_batches`` says what was chosen instead.

CPU:  python bench/split_stability.py            (about 10 minutes on 2 cores)
"""

from __future__ import annotations

import argparse
import collections
import json
import math
import statistics
import time
from dataclasses import replace
from pathlib import Path

import torch

from naslid import config, split, supernets
from naslid import data as datasets
from naslid.lid import sample_batches
from naslid.split import decide_split
from naslid.steps.prepare import resize
from naslid.supernets.base import MaskedSupernet
from naslid.train import train

GOAL = 0.9


def smoke_supernet(seed: int, train_data) -> MaskedSupernet:
    prof = config.get("smoke")
    torch.manual_seed(seed)
    net = supernets.from_profile(prof, train_data.num_classes)
    train(net, train_data, replace(prof.train, seed=seed), device="cpu", progress=False)
    return net


def decision(criterion, net, train_data, num_batches, draw, prof) -> tuple:
    configs = split.MeasureConfigs(
        replace(prof.lid, num_batches=num_batches),
        replace(prof.gradmatch, num_batches=num_batches),
        prof.split,
    )
    measure = split.criterion(criterion).batch_config(configs)
    batches = sample_batches(train_data, measure.batch_size, num_batches, seed=1000 + draw)
    node = split.similarity_for_node(
        criterion,
        net,
        None,
        batches,
        configs=configs,
        seed=draw,
    )
    d = decide_split(node)
    return (d.edge, tuple(sorted(d.groups))), margin(d.scores)


def margin(scores: dict[int, float]) -> float:
    """How far the chosen edge's score is ahead of the runner-up's, relative to the chosen
    one's: near 0, two edges tie and the batch draw decides between them."""
    first, second = sorted(filter(math.isfinite, scores.values()), reverse=True)[:2]
    return (first - second) / abs(first) if first else 0.0


def agreement(decisions: list[tuple]) -> tuple[float, float, tuple]:
    full = collections.Counter(decisions).most_common(1)[0]
    edge = collections.Counter(e for e, _ in decisions).most_common(1)[0]
    return full[1] / len(decisions), edge[1] / len(decisions), full[0]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--criteria", nargs="+", default=["lid", "gradient"])
    p.add_argument("--batches", nargs="+", type=int, default=[1, 2, 4, 8, 16])
    p.add_argument("--draws", type=int, default=10)
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    p.add_argument("--out", default="bench/results/split_stability.json")
    args = p.parse_args()
    torch.set_num_threads(1)
    prof = config.get("smoke")
    train_data = resize(datasets.load(prof.dataset, split="train"), prof.image_size)
    rows = []
    t0 = time.perf_counter()
    for seed in args.seeds:
        net = smoke_supernet(seed, train_data)
        for criterion in args.criteria:
            for nb in args.batches:
                t = time.perf_counter()
                ds, margins = zip(
                    *(
                        decision(criterion, net, train_data, nb, draw, prof)
                        for draw in range(args.draws)
                    )
                )
                full, edge, mode = agreement(list(ds))
                rows.append(
                    {
                        "seed": seed,
                        "criterion": criterion,
                        "batches": nb,
                        "agreement": full,
                        "edge_agreement": edge,
                        "modal_decision": [mode[0], [list(g) for g in mode[1]]],
                        "median_margin": float(statistics.median(margins)),
                        "seconds_per_decision": (time.perf_counter() - t) / args.draws,
                    }
                )
                print(
                    f"seed {seed} {criterion:8s} B={nb:3d}: decision agreement {full:.0%}, "
                    f"edge {edge:.0%} (mode: edge {mode[0]}, groups {mode[1]}; median margin "
                    f"over the runner-up edge {statistics.median(margins):.1%})",
                    flush=True,
                )
    pick, means = {}, {}
    for criterion in args.criteria:
        mean = means[criterion] = {}
        for nb in args.batches:
            got = [
                r["agreement"] for r in rows if r["criterion"] == criterion and r["batches"] == nb
            ]
            mean[nb] = sum(got) / len(got)
        pick[criterion] = min((nb for nb in args.batches if mean[nb] >= GOAL), default=None)
        print(
            f"{criterion}: agreement averaged over the seeds "
            f"{ {nb: round(v, 2) for nb, v in mean.items()} }; smallest batch count reaching "
            f"{GOAL:.0%}: {pick[criterion]}"
        )
    report = {
        "benchmark": "split_stability",
        "device": "cpu",
        "profile": "smoke",
        "batch_size": {c: split.criterion(c).batch_config(prof).batch_size for c in args.criteria},
        "draws": args.draws,
        "seeds": args.seeds,
        "rows": rows,
        "smallest_batches_reaching_goal_on_average": pick,
        "mean_agreement": {c: {str(nb): v for nb, v in m.items()} for c, m in means.items()},
        "goal": GOAL,
        "seconds": time.perf_counter() - t0,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
