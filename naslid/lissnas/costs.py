"""FLOPs and parameters of LISSNAS's spaces under a data set's cost model (NAS-Bench-201 has one
per data set), and which cost model a label spec implies."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from naslid.spaces.base import Arch, SlotSpace


def infer_cost_dataset(spec: str) -> str | None:
    """The NAS-Bench-201 data set a label spec names -- the COLUMN of ``table:CSV:COLUMN``,
    the DATASET of ``nb201api:FILE:DATASET:SETTING`` (``c10_...``/``cifar10`` -> cifar10,
    ``c100``/``cifar100`` -> cifar100, ``ImageNet16``/``in16`` -> ImageNet16-120) -- else None."""
    parts = spec.split(":")
    column = (parts[-2] if parts[0] == "nb201api" and len(parts) >= 4 else parts[-1]).lower()
    if column.startswith(("c100", "cifar100")):
        return "cifar100"
    if column.startswith(("c10", "cifar10")):
        return "cifar10"
    if column.startswith(("imagenet16", "in16", "im16")):
        return "ImageNet16-120"
    return None


def cost_dataset_for(space: SlotSpace, spec: str) -> str | None:
    """The cost model a label spec implies for ``space``: the data set its column names when
    the space has per-data-set cost models (NAS-Bench-201), else None (the space's only one)."""
    return infer_cost_dataset(spec) if space.cost_datasets else None


def check_cost_dataset(space: SlotSpace, dataset: str | None) -> None:
    """Refuse a cost model the space does not have, before any label is spent."""
    if dataset is not None and dataset not in space.cost_datasets:
        known = ", ".join(space.cost_datasets) or "none: it has one cost model"
        raise ValueError(f"cost_dataset: {space.name} has no {dataset!r} cost model ({known})")


def cost(space: SlotSpace, archs: Sequence[Arch], kind: str, dataset: str | None) -> np.ndarray:
    """FLOPs or params (millions) of ``archs`` under the data set's cost model."""
    fn = space.flops if kind == "flops" else space.params
    if dataset is None:
        return np.array([fn(a) for a in archs], dtype=np.float64)
    return np.array([fn(a, dataset) for a in archs], dtype=np.float64)  # type: ignore[call-arg]
