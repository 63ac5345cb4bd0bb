"""The ``naslid`` command. Each module of this package adds its sub-commands.

A module here defines ``register(subparsers)``, which adds one or more sub-commands whose
``func(args) -> int`` does the work by calling the library; the CLI holds no algorithm.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

from naslid import __version__


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="naslid",
        description="Few-shot NAS (NAS-LID supernet splitting, LISSNAS space shrinkage) on Kubeflow Pipelines.",
    )
    parser.add_argument("--version", action="version", version=f"naslid {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except (ValueError, FileNotFoundError, KeyError, RuntimeError, ImportError) as exc:
        if getattr(args, "debug", False):
            raise
        print(f"naslid {args.command}: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
