"""What every figure shares: a figure of its own (no pyplot, so no global backend), the
colours, and the PNG written atomically."""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib import colormaps
from matplotlib.colors import Colormap
from matplotlib.figure import Figure

from naslid.io import atomic_write_bytes

PathLike = str | os.PathLike

GROUP_COLOURS = ("tab:blue", "tab:orange")
"""Colours of the two groups of the balanced cut (group A holds the edge's lowest option)."""


def subplots(figsize: tuple[float, float], nrows: int = 1, ncols: int = 1, **kw: Any):
    """A new figure and its axes (``Figure.subplots``): the figure belongs to no pyplot state
    and is written by the Agg canvas ``savefig`` picks for PNG."""
    fig = Figure(figsize=figsize)
    return fig, fig.subplots(nrows, ncols, **kw)


def cmap(name: str, colours: int | None = None) -> Colormap:
    """The registered colour map ``name``, resampled to ``colours`` colours when given."""
    found = colormaps[name]
    return found if colours is None else found.resampled(colours)


def save(fig: Figure, path: PathLike, dpi: int = 120) -> Path:
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=dpi)
    return atomic_write_bytes(path, buf.getvalue())


def star(ax, x: float, y: float, label: str) -> None:
    """Mark the best point of a scatter with a red star."""
    ax.scatter(
        [x], [y], marker="*", s=220, color="tab:red", edgecolor="black", zorder=3, label=label
    )


def floats(values: Sequence[float]) -> np.ndarray:
    return np.asarray(values, dtype=np.float64).reshape(-1)
