"""``naslid lissnas``: shrink a search space with LISSNAS and write the space and its statistics."""

from __future__ import annotations

import argparse
import sys

from naslid.spaces import SPACES


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
    p.add_argument("--space", choices=SPACES, default="nb201", help="search space (default: nb201)")
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
    p.add_argument(
        "--samples",
        type=int,
        default=d.samples,
        help=f"uniform labelled samples training the predictor (default {d.samples})",
    )
    p.add_argument(
        "--refit-labels",
        type=int,
        default=None,
        help="members of each kept space labelled to refit the predictor (default samples/10)",
    )
    p.add_argument(
        "--seed-pool",
        type=int,
        default=d.seed_pool,
        help=f"archs scored by the predictor per seed search (default {d.seed_pool})",
    )
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument(
        "--top-seeds",
        type=int,
        default=d.top_seeds,
        help=f"seeds per iteration (default {d.top_seeds})",
    )
    p.add_argument(
        "--seed-rule",
        choices=SEED_RULES,
        default=d.seed_rule,
        help="predicted (the paper) or ensemble_lcb (bootstrap-ensemble mean minus its spread)",
    )
    p.add_argument(
        "--max-iterations",
        type=int,
        default=d.max_iterations,
        help=f"at least 1 (default {d.max_iterations})",
    )
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
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    p.set_defaults(func=_lissnas)


def _lissnas(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from naslid import lissnas
    from naslid.benchmarks import check_covers
    from naslid.spaces import get

    space = get(args.space).SPACE
    cost_dataset = args.cost_dataset or lissnas.cost_dataset_for(space, args.labels)
    cfg = lissnas.LissnasConfig(
        samples=args.samples,
        refit_labels=args.refit_labels,
        seed_pool=args.seed_pool,
        top_seeds=args.top_seeds,
        seed_rule=args.seed_rule,
        max_iterations=args.max_iterations,
        isomorphism=args.isomorphism,
        cost_dataset=cost_dataset,
        baselines=not args.no_baselines,
    ).check()
    rule = cfg.rule(space)
    if args.samples > space.num_classes(rule):
        raise ValueError(
            f"samples: {args.samples} exceeds the {space.num_classes(rule)} distinct archs of "
            f"space {space.name} (isomorphism {rule!r})"
        )
    labeller = lissnas.load_labeller(args.labels, args.labels_kind)
    if hasattr(labeller, "table"):
        check_covers(labeller.table, space)
    if args.seed_pool > space.num_classes(rule):
        print(
            f"naslid lissnas: warning: --seed-pool {args.seed_pool} exceeds the space's "
            f"{space.num_classes(rule)} classes: every class is scored",
            file=sys.stderr,
        )
    with tqdm(total=cfg.max_iterations, desc="lissnas", unit="it") as bar:

        def progress(entry: dict) -> None:
            bar.set_postfix(size=entry["size"], mean=f"{entry['mean_accuracy']:.2f}")
            bar.update(1)

        run = lissnas.run(space, labeller, cfg, seed=args.seed, progress=progress)
    paths = lissnas.write_outputs(run, args.out)
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
