"""``naslid lissnas``: shrink a search space with LISSNAS and write the space and its statistics."""

from __future__ import annotations

import argparse
import sys

from naslid.cli._options import add_budget_options, add_space_option, budget_of

_OPTIONS = {
    "samples": "uniform labelled samples training the predictor",
    "refit_labels": "members of each kept space labelled to refit the predictor",
    "seed_pool": "archs scored by the predictor per seed search",
    "top_seeds": "seeds per iteration",
    "max_iterations": "iterations at most, at least 1",
}
"""The integer options that set the ``LissnasConfig`` field of their name (and its default)."""


def register(subparsers: argparse._SubParsersAction) -> None:
    from naslid.benchmarks import LABEL_KINDS
    from naslid.lissnas import SEED_RULES, LissnasConfig

    d = LissnasConfig()
    p = subparsers.add_parser(
        "lissnas",
        help="shrink a search space (LISSNAS): DIR/space.csv, DIR/stats.json, plots",
        description=(
            "LISSNAS (IJCAI 2023): label --samples uniform archs, fit an XGBoost predictor, choose "
            "the seeds by predicted accuracy, add every neighbour within a third of the largest edit "
            "distance of every member of each seed's isomorphism class, label --refit-labels members "
            "and refit, and repeat while the mean predicted accuracy rises. Writes DIR/space.csv "
            "(+ .parquet), DIR/stats.json (sizes in classes and cells, mean/max accuracy, regret, shrink "
            "index at several thresholds, one-sided KS against the complement, EDF area, diversity, "
            "FLOPs/params coverage, label and predictor queries, baselines at equal labels and size) "
            "and PNG plots."
        ),
    )
    add_space_option(p)
    p.add_argument(
        "--labels",
        required=True,
        help="labeller: table:CSV:COLUMN, nb201api:FILE:DATASET:SETTING, or python:MODULE:ATTR",
    )
    p.add_argument(
        "--labels-kind",
        choices=LABEL_KINDS,
        default="accuracy",
        help="accuracy (default): table values must lie in [0, 100]; score: any finite value",
    )
    for name, what in _OPTIONS.items():
        default = getattr(d, name)
        p.add_argument(
            f"--{name.replace('_', '-')}",
            type=int,
            default=default,
            help=f"{what} (default {'samples/10' if default is None else default})",
        )
    p.add_argument(
        "--seed-rule",
        choices=SEED_RULES,
        default=d.seed_rule,
        help="predicted (the paper) or ensemble_lcb (bootstrap-ensemble mean minus its spread)",
    )
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument(
        "--isomorphism",
        default=None,
        help="isomorphism rule: nb201 standard (default, 6,466 classes), functional, none",
    )
    p.add_argument(
        "--cost-dataset",
        default=None,
        help="FLOPs/params cost model: cifar10, cifar100, ImageNet16-120 (default: from the label "
        "column's name, else cifar10)",
    )
    p.add_argument(
        "--no-baselines", action="store_true", help="skip the baselines (they label extra archs)"
    )
    add_budget_options(p)
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    p.set_defaults(func=_lissnas)


def _lissnas(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from naslid import lissnas
    from naslid.budget import Feasible
    from naslid.report import plots
    from naslid.scorer import load_scorer
    from naslid.spaces import get

    space = get(args.space).SPACE
    cost_dataset = args.cost_dataset or lissnas.cost_dataset_for(space, args.labels)
    cfg = lissnas.LissnasConfig(
        **{name: getattr(args, name) for name in (*_OPTIONS, "seed_rule", "isomorphism")},
        cost_dataset=cost_dataset,
        baselines=not args.no_baselines,
    )
    limits, latency = budget_of(args, space)
    feasible = Feasible(space, limits, latency=latency) if limits else None
    if feasible is not None:
        feasible.check()  # a budget nothing meets: before the labels are loaded
    labeller = load_scorer(args.labels, args.labels_kind)
    cfg = lissnas.check_inputs(space, labeller, cfg)
    classes = space.num_classes(cfg.rule(space))
    if args.seed_pool > classes:
        print(
            f"naslid lissnas: warning: --seed-pool {args.seed_pool} exceeds the space's "
            f"{classes} classes: every class is scored",
            file=sys.stderr,
        )
    with tqdm(total=cfg.max_iterations, desc="lissnas", unit="it") as bar:

        def progress(entry: dict) -> None:
            bar.set_postfix(size=entry["size"], mean=f"{entry['mean_accuracy']:.2f}")
            bar.update(1)

        run = lissnas.run(
            space, labeller, cfg, seed=args.seed, progress=progress, feasible=feasible
        )
    paths = lissnas.write_outputs(run, args.out)
    paths.update(plots.lissnas_figures(lissnas.figure_data(run), args.out))
    s = run.stats
    si = ", ".join(f"{k} {v['shrink_index']:.3f}" for k, v in s["shrink_indices"].items())
    print(
        f"{space.name}: {s['size']} of {s['original_size']} classes ({s['size_cells']} of "
        f"{s['original_cells']} cells), mean accuracy {s['original_mean_accuracy']:.2f} -> "
        f"{s['mean_accuracy']:.2f}, max {s['max_accuracy']:.2f} (regret {s['regret']:.2f}), "
        f"shrink index (n={s['shrink_n']}, k={s['shrink_k']}) {si}, one-sided KS vs complement "
        f"{s['ks_statistic']:.3f} (p={s['ks_pvalue']:.2g}), {s['queries']} labels, "
        f"{s['predictor_queries']} predictor queries, {s['iterations']} iterations kept "
        f"({s['accuracy_source']})"
    )
    for key, path in paths.items():
        print(f"  {key}: {path}")
    return 0
