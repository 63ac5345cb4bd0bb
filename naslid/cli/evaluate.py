"""``naslid evaluate``: rank correlation of proxy scores against a benchmark table."""

from __future__ import annotations

import argparse


def _sizes(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(t) for t in text.split(",") if t.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--subsets: expected integers like 50,100,150, got {text!r}"
        ) from None
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"--subsets: expected positive integers, got {text!r}")
    return sizes


def register(subparsers: argparse._SubParsersAction) -> None:
    from naslid.evaluate import DEFAULT_SUBSETS

    p = subparsers.add_parser(
        "evaluate",
        help="Kendall tau / Spearman rho of proxy scores against a benchmark table",
        description="Rank correlation of proxy scores (a CSV/parquet with arch_str or arch, and "
        "a score column) against a benchmark table, over the table's top-k archs among the "
        "scored ones, all scored archs and a random sample; plus the table accuracy of the "
        "arch with the best proxy score. Writes a JSON file.",
    )
    p.add_argument("--scores", required=True, metavar="FILE", help="CSV or parquet of proxy scores")
    p.add_argument("--table", required=True, metavar="TABLE", help="table:CSV:COLUMN")
    p.add_argument("--out", required=True, metavar="FILE.json", help="output JSON")
    p.add_argument("--column", default="score", help="score column of --scores (default score)")
    p.add_argument(
        "--subsets",
        type=_sizes,
        default=DEFAULT_SUBSETS,
        help=f"top-k sizes (default {','.join(map(str, DEFAULT_SUBSETS))})",
    )
    p.add_argument("--sample", type=int, default=1000, help="random sample size (default 1000)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random sample (default 0)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from naslid.benchmarks import load_table
    from naslid.evaluate import evaluate_scores, load_scores
    from naslid.io import write_json

    report = evaluate_scores(
        load_scores(args.scores, args.column),
        load_table(args.table),
        subsets=args.subsets,
        sample=args.sample,
        rng=args.seed,
    )
    write_json(args.out, report)
    for name, c in report["correlations"].items():
        tau = "undefined" if c["kendall_tau"] is None else f"{c['kendall_tau']:.3f}"
        rho = "undefined" if c["spearman_rho"] is None else f"{c['spearman_rho']:.3f}"
        print(f"{name:>12}: n={c['n']:<6} kendall_tau={tau:<9} spearman_rho={rho}")
    best = report["best"]
    print(
        f"best proxy arch {best['arch']}: accuracy {best['accuracy']:.2f} (rank {best['table_rank']})"
    )
    return 0
