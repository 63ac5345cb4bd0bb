"""``naslid lissnas``: shrink a search space with LISSNAS and write the space and its statistics."""

from __future__ import annotations

import argparse

from naslid.spaces import SPACES


def register(subparsers: argparse._SubParsersAction) -> None:
    from naslid.lissnas import LissnasConfig

    d = LissnasConfig()
    p = subparsers.add_parser(
        "lissnas",
        help="shrink a search space (LISSNAS): DIR/space.csv, DIR/stats.json, plots",
        description=(
            "LISSNAS (IJCAI 2023): label --samples uniform archs, fit an XGBoost predictor, keep the "
            "top seeds and their neighbours within a third of the largest edit distance, repeat while "
            "the mean accuracy rises. Writes DIR/space.csv (+ .parquet), DIR/stats.json (size, mean and "
            "max accuracy, shrink index, KS test, diversity, FLOPs coverage, baselines) and PNG plots."
        ),
    )
    p.add_argument("--space", choices=SPACES, default="nb201", help="search space (default: nb201)")
    p.add_argument(
        "--labels",
        required=True,
        help="labeller: table:CSV:COLUMN, nb201api:FILE:DATASET:SETTING, or python:MODULE:ATTR",
    )
    p.add_argument(
        "--samples",
        type=int,
        default=d.samples,
        help=f"labelled samples = queries (default {d.samples})",
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
        "--max-iterations", type=int, default=d.max_iterations, help=f"default {d.max_iterations}"
    )
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    p.set_defaults(func=_lissnas)


def _lissnas(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from naslid import lissnas
    from naslid.spaces import get

    space = get(args.space).SPACE
    labeller = lissnas.load_labeller(args.labels)
    cfg = lissnas.LissnasConfig(
        samples=args.samples, top_seeds=args.top_seeds, max_iterations=args.max_iterations
    ).check()
    with tqdm(total=cfg.max_iterations, desc="lissnas", unit="it") as bar:

        def progress(entry: dict) -> None:
            bar.set_postfix(size=entry["size"], mean=f"{entry['mean_accuracy']:.2f}")
            bar.update(1)

        run = lissnas.run(space, labeller, cfg, seed=args.seed, progress=progress)
    paths = lissnas.write_outputs(run, args.out)
    s = run.stats
    print(
        f"{space.name}: {s['size']} of {s['original_size']} archs (x{s['reduction_factor']:.1f} smaller), "
        f"mean accuracy {s['original_mean_accuracy']:.2f} -> {s['mean_accuracy']:.2f}, "
        f"max {s['max_accuracy']:.2f}, shrink index {s['shrink_index']:.4f}, "
        f"KS {s['ks_statistic']:.3f} (p={s['ks_pvalue']:.2g}), {s['queries']} queries, "
        f"{s['iterations']} iterations ({s['accuracy_source']})"
    )
    for key, path in paths.items():
        print(f"  {key}: {path}")
    return 0
