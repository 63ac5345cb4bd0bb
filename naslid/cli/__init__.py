"""The ``naslid`` command. Each module of this package adds its sub-commands.

A module here defines ``register(subparsers)``, which adds one or more sub-commands whose
``func(args) -> int`` does the work by calling the library; the CLI holds no algorithm.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from pathlib import Path

from naslid import __version__

# Commands whose --out is one file (locked through a lock file beside it), not a folder;
# compile writes the committed YAML in one atomic rename and takes no lock.
_FILE_OUTPUT = {"evaluate", "profile-lid", "split"}
_NO_LOCK = {"compile"}


def hold_output(args: argparse.Namespace):
    """Check ``--out`` and take its one-writer lock before any work (naslid.lock); returns
    the function that releases it."""
    from naslid.lock import LOCK_FILE, lock_dir, unlock_dir
    from naslid.store import is_remote

    out = getattr(args, "out", None)
    if not out or args.command in _NO_LOCK or is_remote(out):
        return lambda: None
    path = Path(out)
    if args.command in _FILE_OUTPUT:
        if path.is_dir():
            raise IsADirectoryError(f"--out {path}: is a folder; a file name is expected")
        folder, name = path.parent, f".{path.name}.lock"
    else:
        folder, name = path, LOCK_FILE
    lock_dir(folder, "--out", name=name)
    return lambda: unlock_dir(folder, name)


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
    release = None
    try:
        release = hold_output(args)
        return int(args.func(args) or 0)
    except (ValueError, OSError, KeyError, RuntimeError, ImportError) as exc:
        if getattr(args, "debug", False):
            raise
        print(f"naslid {args.command}: error: {exc}", file=sys.stderr)
        return 1
    finally:
        if release is not None:
            release()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
