"""``naslid latency``: time every option of every layer of a space on this machine and write
the lookup table; or predict an arch's latency from a table."""

from __future__ import annotations

import argparse

from naslid.cli._options import add_config_options, add_space_option

_HELPS = {
    "batch_size": "images per forward",
    "warmup": "untimed calls of each entry before its timings",
    "repeats": "timed calls of each entry (median and interquartile range kept)",
}


def register(subparsers: argparse._SubParsersAction) -> None:
    from naslid.latency import LatencyConfig

    p = subparsers.add_parser(
        "latency",
        help="measure a latency lookup table on this machine, or predict an arch's latency",
        description="Time each candidate operation of each layer of the space's cost-model "
        "network (NB201: C=16, N=5, 32 px; mobile spaces: ImageNet 224 px, width 1.0) and its "
        "fixed parts on --device, and write a naslid.latency artifact to --out. With --predict "
        "ARCH and --table DIR, print the arch's predicted latency from that table instead.",
    )
    add_space_option(p)
    defaults = LatencyConfig()
    add_config_options(p, defaults, _HELPS)
    p.add_argument(
        "--resolution",
        type=int,
        help="input side (default: the space's cost model's, 32 for nb201, 224 otherwise)",
    )
    p.add_argument(
        "--device",
        default="cpu",
        choices=("cpu", "cuda", "auto"),
        help="where to time (default %(default)s; auto: a GPU when one is visible)",
    )
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's)")
    p.add_argument("--out", metavar="DIR", help="output artifact folder (measuring)")
    p.add_argument("--predict", metavar="ARCH", help="an arch string to predict from --table")
    p.add_argument("--table", metavar="DIR", help="a naslid.latency artifact (with --predict)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    p.set_defaults(func=run)


def _predict(args: argparse.Namespace) -> int:
    from naslid import latency

    if not args.table:
        raise ValueError("--predict: give --table DIR, the latency table to predict from")
    table = latency.load_table(args.table).check(args.space)
    print(f"{table.predict(args.predict):.3f} ms  ({table.space} on {table.device['name']}, "
          f"batch {table.batch_size}, {table.resolution} px)")  # fmt: skip
    return 0


def run(args: argparse.Namespace) -> int:
    from naslid import latency

    if args.predict is not None:
        return _predict(args)
    if not args.out:
        raise ValueError("--out: give the output folder of the table (or --predict with --table)")
    if args.threads is not None:
        if args.threads < 1:
            raise ValueError(f"--threads: must be >= 1, got {args.threads}")
        import torch

        torch.set_num_threads(args.threads)
    config = latency.LatencyConfig(args.batch_size, args.warmup, args.repeats, args.resolution)
    from tqdm import tqdm

    with tqdm(total=config.repeats, desc="latency", unit="round", disable=args.no_progress) as bar:
        table = latency.measure(
            args.space,
            batch_size=config.batch_size,
            warmup=config.warmup,
            repeats=config.repeats,
            device=args.device,
            resolution=config.resolution,
            progress=lambda done: bar.update(done - bar.n),
        )
    path = latency.write_table(table, args.out)
    numbers = latency.summary(table)
    print(f"{table.space}: {numbers['entries']} entries on {table.device['name']} "
          f"({table.device['threads']} threads), batch {table.batch_size}, {table.resolution} px")  # fmt: skip
    print(f"fixed parts {numbers['fixed_ms']:.3f} ms; an arch costs {numbers['min_ms']:.3f} to "
          f"{numbers['max_ms']:.3f} ms")  # fmt: skip
    print(f"wrote {path}")
    return 0
