"""``naslid data list | stage | verify``: the dataset catalogue (data/catalogue.json)."""

from __future__ import annotations

import argparse
import json


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "data",
        help="the dataset catalogue: list, stage (fetch or copy, then check), verify",
        description="Data sets naslid reads, from data/catalogue.json ($NASLID_CATALOGUE in the image): source, "
        "layout, size, checksums. `stage` puts one under DEST/<path> (DEST: $NASLID_DATA; on a cluster the "
        "dataset PVC at /data, see data/stage-job.yaml) and refuses it when a checksum differs.",
    )
    sub = p.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    ls = sub.add_parser("list", help="every data set, as JSON lines")
    ls.set_defaults(func=cmd_list)
    for name, func, text in (
        ("stage", cmd_stage, "fetch or copy a data set into DEST and check it"),
        ("verify", cmd_verify, "check a staged data set's checksums"),
    ):
        q = sub.add_parser(name, help=text)
        q.add_argument("name", help="data set (naslid data list)")
        q.add_argument("--dest", required=True, help="data root, e.g. /data (the PVC)")
        if name == "stage":
            q.add_argument(
                "--from",
                dest="source",
                help="a folder, file or minio:// / s3:// prefix holding the data set (else the "
                "catalogue's public download, where it has one)",
            )
        q.add_argument("--debug", action="store_true", help="show tracebacks")
        q.set_defaults(func=func)


def cmd_list(args: argparse.Namespace) -> int:
    from naslid import catalogue

    for item in catalogue.load().values():
        print(json.dumps(catalogue.describe(item)))
    return 0


def cmd_stage(args: argparse.Namespace) -> int:
    from naslid import catalogue

    item = catalogue.entry(args.name)
    where = catalogue.stage(item, args.dest, args.source)
    print(f"naslid data: {args.name} at {where} ({len(item.get('checksums', []))} checksums agree)")
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    from naslid import catalogue

    item = catalogue.entry(args.name)
    problems = catalogue.verify(item, args.dest)
    if problems:
        raise ValueError(f"data set {args.name!r}: {problems[0]}")
    print(
        f"naslid data: {args.name} under {args.dest}: {len(item.get('checksums', []))} checksums agree"
    )
    return 0
