"""Benchmark tables: ground-truth accuracy of architectures, looked up by arch string.

A table is named ``table:CSV:COLUMN``: a CSV with an ``arch_str`` column and the accuracy
column to use, e.g. ``table:../shared/data/nb201/nb201_cifar10.csv:c10_test_acc_200``.
With the ``nas-bench-201`` package installed, ``nb201api:FILE:DATASET:SETTING`` reads the
official API file instead (``SETTING`` is ``x-valid`` or ``ori-test``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

DEFAULT_NB201_CSV = (
    Path(__file__).resolve().parents[1].parent / "shared" / "data" / "nb201" / "nb201_cifar10.csv"
)
"""Where the shared NAS-Bench-201 table lies beside a checkout (``../shared/data/nb201``)."""


@dataclass(frozen=True)
class Table:
    """Accuracy per canonical arch string, from one column of a benchmark table."""

    name: str
    column: str
    accuracy: dict[str, float]

    def __len__(self) -> int:
        return len(self.accuracy)

    def __contains__(self, arch: object) -> bool:
        return str(arch) in self.accuracy

    def __getitem__(self, arch: object) -> float:
        key = str(arch)
        try:
            return self.accuracy[key]
        except KeyError:
            raise KeyError(f"{self.name}: no row for arch {key!r}") from None

    def lookup(self, archs: Iterable[object]) -> np.ndarray:
        return np.array([self[a] for a in archs], dtype=np.float64)

    def top(self, k: int) -> list[str]:
        """The ``k`` most accurate arch strings, best first (ties by string)."""
        return sorted(self.accuracy, key=lambda a: (-self.accuracy[a], a))[:k]


def _read_csv(path: Path, column: str, name: str) -> Table:
    if not path.is_file():
        raise FileNotFoundError(f"{name}: table file {path} not found")
    header = pd.read_csv(path, nrows=0).columns
    if "arch_str" not in header:
        raise ValueError(f"{name}: {path} has no 'arch_str' column")
    if column not in header:
        raise ValueError(f"{name}: {path} has no column {column!r} (columns: {', '.join(header)})")
    frame = pd.read_csv(path, usecols=["arch_str", column])
    if frame[column].isna().any():
        raise ValueError(f"{name}: column {column!r} of {path} has empty cells")
    return Table(name, column, dict(zip(frame["arch_str"], frame[column].astype(float))))


def _read_nb201_api(path: Path, dataset: str, setting: str, name: str) -> Table:
    try:
        from nas_201_api import NASBench201API  # type: ignore[import-not-found]
    except ImportError as exc:  # pragma: no cover - optional package
        raise ImportError(f"{name}: the 'nas-bench-201' package is not installed") from exc
    api = NASBench201API(str(path), verbose=False)  # pragma: no cover - needs the 2 GB file
    acc = {}  # pragma: no cover
    for i in range(len(api)):  # pragma: no cover
        info = api.get_more_info(i, dataset, None, hp="200", is_random=False)
        key = "test-accuracy" if setting == "ori-test" else "valid-accuracy"
        acc[api.arch(i)] = float(info[key])
    return Table(name, f"{dataset}:{setting}", acc)  # pragma: no cover


def load_table(spec: str) -> Table:
    """Open ``table:CSV:COLUMN`` or ``nb201api:FILE:DATASET:SETTING``."""
    kind, _, rest = spec.partition(":")
    if kind == "table":
        path, sep, column = rest.rpartition(":")
        if not sep or not path or not column:
            raise ValueError(f"labels/oracle {spec!r}: expected table:CSV:COLUMN")
        return _read_csv(Path(path), column, spec)
    if kind == "nb201api":
        parts = rest.rsplit(":", 2)
        if len(parts) != 3:
            raise ValueError(f"labels/oracle {spec!r}: expected nb201api:FILE:DATASET:SETTING")
        return _read_nb201_api(Path(parts[0]), parts[1], parts[2], spec)
    raise ValueError(
        f"labels/oracle {spec!r}: unknown kind {kind!r} (expected 'table:' or 'nb201api:')"
    )
