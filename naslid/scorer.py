"""What scores an architecture: one protocol for a benchmark table, the inherited-weight proxy
(:class:`naslid.scoring.ProxyEvaluator`), the LISSNAS predictor and any importable callable.

A scorer takes a batch of archs and returns one float per arch, in order (higher is better;
accuracies in percent for the tables and the proxy). The evolutionary search (its evaluator)
and LISSNAS (its labeller) take any scorer.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np

from naslid.benchmarks import Table, load_table
from naslid.spaces.base import Arch


@runtime_checkable
class Scorer(Protocol):
    """``scorer(archs) -> scores``: one float per arch, in order."""

    def __call__(self, archs: Sequence[Arch]) -> np.ndarray: ...


class TableScorer:
    """A :class:`Scorer` reading a benchmark table (``table[arch]``, by the arch's string).

    A table is exhaustive and free to read, so statistics may use it for every member of a
    space; a search still counts each arch it asks about as a query.
    """

    exhaustive = True

    def __init__(self, table: Table):
        self.table = table

    def __call__(self, archs: Sequence[Arch]) -> np.ndarray:
        return self.table.lookup(archs)


def scores_of(scorer: Scorer, archs: Sequence[Arch]) -> np.ndarray:
    """``scorer(archs)`` as floats, refused unless there is one finite score per arch."""
    archs = list(archs)
    out = np.asarray(scorer(archs), dtype=np.float64).reshape(-1)
    if out.shape[0] != len(archs):
        raise ValueError(f"scorer: returned {out.shape[0]} scores for {len(archs)} archs")
    bad = np.flatnonzero(~np.isfinite(out))
    if bad.size:
        raise ValueError(f"scorer: non-finite score {out[bad[0]]} for arch {archs[bad[0]]}")
    return out


class CountingScorer:
    """Wraps a scorer, checks its output (:func:`scores_of`) and counts the archs it was asked
    about (the query budget)."""

    def __init__(self, scorer: Scorer):
        self.scorer = scorer
        self.queries = 0

    def __call__(self, archs: Sequence[Arch]) -> np.ndarray:
        out = scores_of(self.scorer, archs)
        self.queries += len(out)
        return out


def _import_callable(spec: str, rest: str) -> Scorer:
    """The callable ``MODULE:ATTR`` of a ``python:MODULE:ATTR`` spec."""
    import importlib

    module, _, attr = rest.rpartition(":")
    if not module or not attr:
        raise ValueError(f"labels {spec!r}: expected python:MODULE:ATTR")
    try:
        fn = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"labels {spec!r}: cannot import {module}.{attr} ({exc})") from None
    if not callable(fn):
        raise ValueError(f"labels {spec!r}: {module}.{attr} is not callable")

    def scorer(archs: Sequence[Arch]) -> np.ndarray:
        """``fn(archs)``, any failure or a reply that is not one number per arch as one line
        naming the spec (``python:os:getcwd`` gave a TypeError traceback)."""
        try:
            out = np.asarray(fn(list(archs)), dtype=np.float64)
        except Exception as exc:  # the user's callable: whatever it raises
            raise ValueError(
                f"labels {spec!r}: {module}.{attr}(archs) failed "
                f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}); "
                "expected a callable taking a list of archs and returning one number each"
            ) from None
        if out.shape != (len(archs),):
            raise ValueError(
                f"labels {spec!r}: {module}.{attr} returned shape {out.shape} for "
                f"{len(archs)} archs; expected one number per arch"
            )
        return out

    return scorer


def load_scorer(spec: str, kind: str = "accuracy") -> Scorer:
    """A scorer from its name: ``table:CSV:COLUMN`` / ``nb201api:...`` (a benchmark table) or
    ``python:MODULE:ATTR`` (any importable callable taking a list of archs). ``kind``: whether a
    table's values must be percentages (``naslid.benchmarks.LABEL_KINDS``)."""
    source, _, rest = spec.partition(":")
    if source == "python":
        return _import_callable(spec, rest)
    return TableScorer(load_table(spec, kind))
