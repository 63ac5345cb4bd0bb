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
# Options naming what a command reads (a file, a folder, or a table:CSV:COLUMN spec): --out
# may not be one of them, lie inside one, or hold one (an output replaced its own input).
_INPUTS = (
    "scores", "parent", "model", "tree", "proxy", "models", "supernet", "arch_from",
    "data", "data_root", "profiles", "labels", "oracle", "table", "mask", "restrict",
)  # fmt: skip


# Ranges of the numeric options, by destination name, for every command that has one:
# (lowest allowed, highest allowed or None); checked before any work.
_RANGES: dict[str, tuple[float, float | None]] = {
    "N": (1, None),
    "C": (1, None),
    "epochs": (1, None),
    "batch_size": (1, None),
    "batches": (1, None),
    "limit": (1, None),
    "eval_paths": (0, None),
    "k": (1, None),
    "rounds": (0, None),
    "sample": (1, None),
    "budget": (1, None),
    "population": (2, None),  # EvolutionConfig: a population of one has no parents to cross
    "generations": (1, None),
    "top": (1, None),
    "samples": (10, None),  # LissnasConfig: fewer labels than this fit no predictor
    "max_iterations": (1, None),
    "train_per_class": (1, None),
    "val_per_class": (1, None),
    "size": (8, None),
    "image_size": (32, None),  # MobileNet downsamples 32x: smaller inputs vanish
    "workers": (0, None),
    "warmup_epochs": (0, None),
    "lr": (0, None),
    "weight_decay": (0, None),
    "label_smoothing": (0, 0.999),
    "dropout": (0, 0.999),
    "width_mult": (0.01, None),
    "flops_max": (0, None),
    "stop_after": (1, None),  # transfer: epochs of this run
    "params_max": (0, None),
    "latency_max": (0, None),
    "warmup": (0, None),
    "repeats": (1, None),
    "resolution": (4, None),
    "threads": (1, None),
}


def check_ranges(args: argparse.Namespace) -> None:
    """One line naming the option when a number is out of range, NaN or infinite."""
    import math

    for name, (low, high) in _RANGES.items():
        value = getattr(args, name, None)
        if value is None or isinstance(value, bool) or not isinstance(value, int | float):
            continue
        flag = f"--{name.replace('_', '-')}"
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"{flag}: must be a finite number, got {value}")
        if value < low or (high is not None and value > high):
            want = f"between {low} and {high}" if high is not None else f">= {low}"
            raise ValueError(f"{flag}: must be {want}, got {value}")


def _input_paths(args: argparse.Namespace) -> list[tuple[str, Path]]:
    from naslid.store import is_remote

    found = []
    for name in _INPUTS:
        values = getattr(args, name, None)
        for value in values if isinstance(values, list | tuple) else [values]:
            if not isinstance(value, str) or not value or is_remote(value):
                continue
            if value.startswith("table:"):  # table:CSV:COLUMN
                value = value[len("table:") :].rsplit(":", 1)[0]
            if value.lstrip().startswith(("[", "{", "python:")):  # inline JSON, not a path
                continue
            found.append((f"--{name.replace('_', '-')}", Path(value)))
    return found


def check_not_an_input(args: argparse.Namespace, out: Path) -> None:
    """Refuse an ``--out`` that is, lies inside, or holds an input folder of the command (one line
    naming both): ``evaluate --out`` equal to ``--scores`` replaced the scores, ``finetune
    --out`` equal to ``--parent`` overwrote the parent supernet."""
    target = out.resolve()
    for flag, path in _input_paths(args):
        src = path.resolve()
        if target == src or target.is_relative_to(src) and src.is_dir():
            raise ValueError(f"--out {out}: is or lies inside {flag} {path}; choose another output")
        if src.is_relative_to(target) and src.is_dir() and args.command not in _FILE_OUTPUT:
            raise ValueError(f"--out {out}: holds {flag} {path}; choose another output")


def hold_output(args: argparse.Namespace):
    """Check ``--out`` and take its one-writer lock before any work (naslid.lock); returns
    the function that releases it."""
    from naslid.lock import LOCK_FILE, lock_dir, unlock_dir
    from naslid.store import is_remote

    out = getattr(args, "out", None)
    if out is not None and not str(out).strip():
        raise ValueError("--out: empty; give the output's path")  # "" meant the current folder
    if not out or args.command in _NO_LOCK or is_remote(out):
        return lambda: None
    path = Path(out)
    check_not_an_input(args, path)
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


def network_error(exc: BaseException) -> str | None:
    """One line for a urllib3 / HTTP client error (e.g. an unreachable KFP or S3 host), naming
    the host and the cause; None for anything else."""
    try:
        from urllib3.exceptions import HTTPError, MaxRetryError
    except ImportError:  # pragma: no cover
        return None
    if not isinstance(exc, HTTPError):
        return None
    pool = getattr(exc, "pool", None)
    host = f"{pool.host}:{pool.port}" if pool is not None else "the server"
    reason = exc.reason if isinstance(exc, MaxRetryError) and exc.reason else exc
    text = str(reason)
    if "): " in text:  # urllib3 repeats the connection object before the cause
        text = text.split("): ", 1)[1]
    return f"cannot reach {host}: {type(reason).__name__}: {text}".rstrip(": ")


def one_line(exc: BaseException) -> str:
    """The message of ``exc`` as one line. An error raised in a DataLoader worker comes back
    with the worker's traceback inside its message ("Caught X in DataLoader worker process
    N. Original Traceback ..."): its last line is the original error."""
    text = str(exc)
    if "Original Traceback" in text:
        lines = [line for line in text.splitlines() if line.strip()]
        text = lines[-1].split(": ", 1)[-1] if lines else text
    return text


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    release = None
    try:
        check_ranges(args)
        release = hold_output(args)
        return int(args.func(args) or 0)
    except (ValueError, OSError, KeyError, RuntimeError, ImportError) as exc:
        if getattr(args, "debug", False):
            raise
        print(f"naslid {args.command}: error: {one_line(exc)}", file=sys.stderr)
        return 1
    except Exception as exc:
        line = network_error(exc)
        if line is None or getattr(args, "debug", False):
            raise
        print(f"naslid {args.command}: error: {line} (--debug for the traceback)", file=sys.stderr)
        return 1
    finally:
        if release is not None:
            release()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
