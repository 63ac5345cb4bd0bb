"""``naslid evolve``: the evolutionary search of NAS-LID (or the random-search baseline)."""

from __future__ import annotations

import argparse
import math
from dataclasses import asdict

from naslid import __version__
from naslid.cli._options import add_budget_options, add_space_option, budget_of

_CONFIG = ("population", "generations", "budget")
"""The options that set the ``EvolutionConfig`` field of their name."""


def register(subparsers: argparse._SubParsersAction) -> None:
    from naslid.evolution import EvolutionConfig

    defaults = EvolutionConfig()
    p = subparsers.add_parser(
        "evolve",
        help="evolutionary architecture search (NAS-LID section 4)",
        description="Evolutionary search (population, top-20% parents, mutation, uniform "
        "crossover, random fill) in a search space; no arch is scored twice; every arch within "
        "the hardware budget. Writes OUT/top.json, OUT/front.json (the Pareto front of what "
        "was scored), OUT/history.parquet, OUT/history.csv and OUT/meta.json.",
    )
    add_space_option(p)
    scorer = p.add_mutually_exclusive_group(required=True)
    scorer.add_argument(
        "--oracle",
        metavar="TABLE",
        help="score archs by lookup in a benchmark table: table:CSV:COLUMN",
    )
    scorer.add_argument(
        "--proxy",
        metavar="TREE",
        help="score archs with inherited weights: a partition tree JSON whose leaves' "
        "sub-supernets lie in --models/<node id>/ (BN recalibrated per path)",
    )
    p.add_argument(
        "--models",
        metavar="DIR",
        help="with --proxy: folder of the leaves' supernet.pt + meta.json (default TREE's folder/leaves)",
    )
    p.add_argument(
        "--dataset", default="digits", help="with --proxy: data for calibration/validation"
    )
    p.add_argument("--data-root", help="with --proxy: data folder")
    p.add_argument(
        "--no-recalibrate",
        action="store_true",
        help="with --proxy: keep the supernet's BN statistics (the reference code's behaviour)",
    )
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p.add_argument(
        "--budget", type=int, help="stop after this many distinct scored archs (default: none)"
    )
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--out", required=True, metavar="DIR", help="output directory")
    p.add_argument(
        "--population", type=int, default=defaults.population, help="default %(default)s (paper)"
    )
    p.add_argument(
        "--generations", type=int, default=defaults.generations, help="default %(default)s (paper)"
    )
    add_budget_options(p)
    p.add_argument(
        "--restrict",
        metavar="CSV",
        help="search only these archs: a file with an arch_str column (e.g. LISSNAS space.csv)",
    )
    p.add_argument(
        "--mask",
        metavar="JSON",
        help="search inside a mask: JSON list of allowed op names per slot",
    )
    p.add_argument(
        "--top", type=int, default=defaults.top_k, help="archs in top.json (default %(default)s)"
    )
    p.add_argument(
        "--method",
        choices=("evolution", "random"),
        default="evolution",
        help="evolution (default) or the random-search baseline (needs --budget)",
    )
    p.set_defaults(func=run)


def _evaluator(args: argparse.Namespace):
    from naslid import spaces
    from naslid.benchmarks import check_covers, load_table
    from naslid.scorer import TableScorer

    if args.oracle:
        table = load_table(args.oracle)
        check_covers(table, spaces.get(args.space).SPACE)  # before any work
        return TableScorer(table)
    from pathlib import Path

    from naslid import data
    from naslid.io import inside
    from naslid.scoring import ProxyEvaluator, ScoringConfig
    from naslid.split import PartitionTree

    tree = PartitionTree.load(args.proxy)
    if tree.space.name != args.space:
        raise ValueError(
            f"{args.proxy}: tree of space {tree.space.name!r}, but --space is {args.space!r}"
        )
    models = Path(args.models) if args.models else Path(args.proxy).parent / "leaves"
    leaves = [(leaf.mask, inside(models, leaf.id)) for leaf in tree.leaves()]
    missing = [str(d) for _, d in leaves if not (d / "meta.json").is_file()]
    if missing:
        raise FileNotFoundError(f"--models: no sub-supernet in {', '.join(missing)}")
    valid = "valid" if "valid" in data.DATASETS[args.dataset] else "test"
    return ProxyEvaluator(
        leaves,
        data.load(args.dataset, args.data_root, "train"),
        data.load(args.dataset, args.data_root, valid),
        ScoringConfig(recalibrate_bn=not args.no_recalibrate, seed=args.seed),
        device=args.device,
        space=tree.space,
    )


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from naslid import spaces
    from naslid.budget import Feasible
    from naslid.evolution import (
        EvolutionConfig,
        check_budget,
        evolve,
        load_archs,
        random_search,
        write_result,
    )
    from naslid.io import read_json
    from naslid.pareto import write_front

    space = spaces.get(args.space).SPACE
    config = EvolutionConfig(**{name: getattr(args, name) for name in _CONFIG}, top_k=args.top)
    if args.method == "evolution":
        check_budget(config)  # before the oracle or any supernet is loaded
    limits, latency = budget_of(args, space)

    mask = space.mask_from_json(read_json(args.mask)) if args.mask else None
    restrict = load_archs(space, args.restrict) if args.restrict else None
    feasible = Feasible(space, limits, latency=latency, mask=mask)
    if restrict is None:
        feasible.check()  # a budget nothing meets: before the oracle or any supernet is loaded
    else:
        held = [a for a in restrict if feasible.inside(a)]
        if not held:
            raise ValueError("--restrict: no arch of the set lies inside --mask")
        feasible.check(held, what=f"the {len(held)} archs of --restrict inside the mask")
    evaluator = _evaluator(args)

    if args.method == "random":
        if args.budget is None:
            raise ValueError("budget: --method random needs --budget")
        steps = math.ceil(args.budget / config.population)
    else:
        steps = config.generations
        if args.budget is not None:
            steps = min(steps, math.ceil(args.budget / config.population))
    with tqdm(total=steps, desc=f"{args.method} {args.space}", unit="gen") as bar:

        def progress(generation: int, best: float) -> None:
            bar.update(1)
            bar.set_postfix(best=f"{best:.4g}")

        if args.method == "random":
            result = random_search(
                space,
                evaluator,
                args.budget,
                args.seed,
                mask=mask,
                restrict=restrict,
                limits=limits,
                latency=latency,
                batch_size=config.population,
                top_k=args.top,
                progress=progress,
            )
        else:
            result = evolve(
                space,
                evaluator,
                config,
                args.seed,
                mask=mask,
                restrict=restrict,
                limits=limits,
                latency=latency,
                progress=progress,
            )
    meta = {
        "step": "evolve",
        "method": args.method,
        "space": args.space,
        "evaluator": {"oracle": args.oracle}
        if args.oracle
        else {
            "proxy": args.proxy,
            "dataset": args.dataset,
            "recalibrate_bn": not args.no_recalibrate,
        },
        "seed": args.seed,
        "config": asdict(config),
        "mask": args.mask,
        "restrict": args.restrict,
        "budget": limits.as_dict(),
        "latency_table": args.latency_table,
        "num_scored": len(result.history),
        "version": __version__,
    }
    write_front(result.history, args.out, limits.limits())
    write_result(result, args.out, meta)
    best = result.best
    print(
        f"best {best['arch']} score {best['score']:.4f} ({len(result.history)} archs scored) -> {args.out}"
    )
    return 0
