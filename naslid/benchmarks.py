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


LABEL_KINDS = ("accuracy", "score")
"""``accuracy``: percentages, every value must lie in [0, 100]; ``score``: any finite number."""


def _row(frame: pd.DataFrame, i: int) -> str:
    """Where data row ``i`` lies: its line in the file (the header is line 1) and its arch."""
    return f"line {i + 2} (arch_str {frame['arch_str'].iloc[i]!r})"


def _read_csv(path: Path, column: str, name: str, kind: str = "accuracy") -> Table:
    """Read and check one column: every problem is one line naming the file, column and row."""
    if kind not in LABEL_KINDS:
        raise ValueError(f"{name}: labels kind {kind!r}: expected one of {', '.join(LABEL_KINDS)}")
    if not path.is_file():
        raise FileNotFoundError(f"{name}: table file {path} not found")
    try:
        header = pd.read_csv(path, nrows=0).columns
    except pd.errors.EmptyDataError:
        raise ValueError(f"{name}: table file {path} is empty (no header, no rows)") from None
    except (UnicodeDecodeError, pd.errors.ParserError) as exc:  # a parquet, a PNG, ...
        why = "not UTF-8 text" if isinstance(exc, UnicodeDecodeError) else "not a CSV"
        raise ValueError(f"{name}: table file {path} is {why} (a CSV is expected)") from None
    if "arch_str" not in header:
        raise ValueError(f"{name}: {path} has no 'arch_str' column")
    if column not in header:
        raise ValueError(f"{name}: {path} has no column {column!r} (columns: {', '.join(header)})")
    try:
        frame = pd.read_csv(path, usecols=["arch_str", column])
    except (UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise ValueError(
            f"{name}: table file {path} is not a readable CSV ({type(exc).__name__})"
        ) from None
    if frame.empty:
        raise ValueError(f"{name}: table file {path} has a header but no rows")
    values = pd.to_numeric(frame[column], errors="coerce")
    bad = frame[column].notna() & values.isna()
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise ValueError(
            f"{name}: {path} column {column!r}, {_row(frame, i)}: "
            f"{frame[column].iloc[i]!r} is not a number"
        )
    checks = [
        (values.isna(), "is empty (no value)"),
        (np.isinf(values), "is infinite"),
        (frame["arch_str"].isna(), "has no arch_str"),
    ]
    if kind == "accuracy":
        checks.append(
            (
                (values < 0) | (values > 100),
                "lies outside [0, 100] (not a percentage; "
                "use --labels-kind score for other scores)",
            )  # fmt: skip
        )
    for mask, what in checks:
        mask = np.asarray(mask, dtype=bool)
        if mask.any():
            i = int(np.flatnonzero(mask)[0])
            raise ValueError(
                f"{name}: {path} column {column!r}, {_row(frame, i)}: value "
                f"{float(values.iloc[i]):g} {what}"
                + (f" ({int(mask.sum())} rows)" if mask.sum() > 1 else "")
            )
    keys = frame["arch_str"].astype(str).str.strip()
    first: dict[str, int] = {}
    for i, key in enumerate(keys):
        j = first.setdefault(key, i)
        if j != i and values.iloc[j] != values.iloc[i]:
            raise ValueError(
                f"{name}: {path} column {column!r}: arch_str {key!r} appears on line {j + 2} "
                f"({float(values.iloc[j]):g}) and line {i + 2} ({float(values.iloc[i]):g}) with different "
                "values"
            )
    return Table(name, column, dict(zip(keys, values.astype(float))))


def check_covers(table: Table, space) -> None:
    """A table that labels a space must hold archs of that space (checked on its first rows,
    before any work) and have a row for every cell of it (enumerable spaces)."""
    for key in list(table.accuracy)[:5]:
        try:
            space.from_str(key)
        except ValueError:
            raise ValueError(
                f"{table.name}: the table does not fit space {space.name} (arch_str {key!r} is "
                f"not an arch of it); give a table of {space.name} archs or another --space"
            ) from None
    if space.mask_size() > 200_000:
        return
    missing = [a for a in space.all_archs() if a not in table]
    if missing:
        raise ValueError(
            f"{table.name}: partial table, {len(missing)} of {space.mask_size()} archs of space "
            f"{space.name} have no row in column {table.column!r}, e.g. arch_str {str(missing[0])!r}"
        )


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


def load_table(spec: str, kind: str = "accuracy") -> Table:
    """Open ``table:CSV:COLUMN`` or ``nb201api:FILE:DATASET:SETTING``; ``kind`` (see
    :data:`LABEL_KINDS`) says whether the values must be percentages."""
    source, _, rest = spec.partition(":")
    if source == "table":
        path, sep, column = rest.rpartition(":")
        if not sep or not path or not column:
            raise ValueError(f"labels/oracle {spec!r}: expected table:CSV:COLUMN")
        return _read_csv(Path(path), column, spec, kind)
    if source == "nb201api":
        parts = rest.rsplit(":", 2)
        if len(parts) != 3:
            raise ValueError(f"labels/oracle {spec!r}: expected nb201api:FILE:DATASET:SETTING")
        return _read_nb201_api(Path(parts[0]), parts[1], parts[2], spec)
    raise ValueError(
        f"labels/oracle {spec!r}: unknown kind {source!r} (expected 'table:' or 'nb201api:')"
    )
