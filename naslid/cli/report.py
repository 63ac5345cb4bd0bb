"""``naslid report``: the pictures and tables of one run, as HTML and Markdown."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "report",
        help="HTML + Markdown report of a run: partition tree, LID, search, LISSNAS, transfer",
        description="Find a run's artifacts under --run by their meta.json kinds (the newest of "
        "each; every naslid.node_profile for the split-criteria comparison) and write "
        "OUT/report.html (self-contained: figures embedded), OUT/report.md and the figures as "
        "OUT/figures/*.png (linked from the Markdown).",
    )
    p.add_argument("--run", required=True, metavar="DIR", help="a run's directory of artifacts")
    p.add_argument("--out", required=True, metavar="DIR", help="output directory")
    p.add_argument(
        "--table",
        metavar="TABLE",
        default=None,
        help="benchmark table:CSV:COLUMN for the ranking section (default: the one the run "
        "named, e.g. LISSNAS labels)",
    )
    p.add_argument(
        "--no-profiles",
        action="store_true",
        help="leave out the node-profile artifacts (criteria comparison, profiling times)",
    )
    p.add_argument(
        "--no-figure-files",
        action="store_true",
        help="figures only inside the HTML (no OUT/figures/, no image links in the Markdown)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from naslid import rerun
    from naslid.artifacts import NODE_PROFILE
    from naslid.report import build_report
    from naslid.steps import STEPS

    if args.table:  # the column and file are checked before any work
        from naslid.benchmarks import load_table

        load_table(args.table)
    root = Path(args.run)
    if not root.is_dir():
        raise FileNotFoundError(f"--run: no such directory {root}")
    found = rerun.find_artifacts(root)
    if not found:
        raise FileNotFoundError(
            f"--run: no artifact (meta.json with an 'artifact' field) under {root}"
        )
    inputs = rerun.select_inputs(STEPS["report"], found)
    profiles = [] if args.no_profiles else [d for d, m in found if m["artifact"] == NODE_PROFILE]
    out = Path(args.out)
    result = build_report(
        out / "report.html",
        out / "report.md",
        **inputs,
        profiles=profiles,
        table=args.table,
        figures_dir=None if args.no_figure_files else out / "figures",
        step_order=list(STEPS),
        progress=True,
    )
    for line in result["errors"]:
        print(f"warning: {line}")
    print(f"best architecture: {result['best_arch']}")
    print(f"report: {result['html']} and {result['markdown']} ({len(result['figures'])} figures)")
    return 0
