"""The Pareto front figure: score against one cost for every scored arch, the front, the
budget, and reference networks or a reference front (issue 24)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from naslid.report.plots.canvas import PathLike, floats, save, subplots

REFERENCE_COLOUR = "tab:green"


@dataclass(frozen=True)
class Reference:
    """What a front is set against: named networks (``names``, drawn as labelled diamonds)
    or another front (``curve``, drawn as a staircase). ``axis``: the label of a right-hand
    axis of their own, for values that are not the run's score (ImageNet accuracy against
    a proxy); None to share the score's axis."""

    label: str
    x: Sequence[float]
    y: Sequence[float]
    names: Sequence[str] = ()
    axis: str | None = None
    curve: bool = False


def _staircase(ax, x: np.ndarray, y: np.ndarray, **kw) -> None:
    """A front drawn as the score it attains up to each cost (a step after each point)."""
    order = np.argsort(x, kind="stable")
    ax.step(x[order], y[order], where="post", **kw)


def pareto_front(
    cost: Sequence[float],
    score: Sequence[float],
    path: PathLike,
    *,
    front: Sequence[int],
    plane_front: Sequence[int] | None = None,
    xlabel: str = "FLOPs (M)",
    ylabel: str = "proxy accuracy (%)",
    budget: float | None = None,
    reference: Reference | None = None,
    title: str = "Pareto front of the search",
) -> Path:
    """Every scored arch (grey), the archs of the front (``front``: indices, blue markers),
    the staircase of the archs non-dominated in this plane (``plane_front``, default
    ``front``), the budget as a vertical red line, and ``reference`` in green."""
    x, y = floats(cost), floats(score)
    if len(x) != len(y) or not len(x):
        raise ValueError("pareto_front: need as many costs as scores, and some")
    front = np.asarray(front, dtype=np.int64)
    plane = front if plane_front is None else np.asarray(plane_front, dtype=np.int64)
    if len(front) and (front.min() < 0 or front.max() >= len(x)):
        raise ValueError("pareto_front: a front index lies outside the scored archs")
    fig, ax = subplots((6.8, 5.0))
    ax.scatter(x, y, s=10, color="0.65", alpha=0.6, label="scored archs", zorder=1)
    if len(plane):
        _staircase(ax, x[plane], y[plane], color="tab:blue", lw=1.2, zorder=2)
    ax.scatter(
        x[front],
        y[front],
        s=34,
        color="tab:blue",
        edgecolor="black",
        lw=0.5,
        label=f"Pareto front ({len(front)})",
        zorder=3,
    )
    if budget is not None:
        ax.axvline(budget, color="tab:red", ls="--", lw=1.2, label=f"budget ({budget:.4g})")
    handles, labels = ax.get_legend_handles_labels()
    if reference is not None:
        target = ax
        if reference.axis:
            target = ax.twinx()
            target.set_ylabel(reference.axis, color=REFERENCE_COLOUR)
            target.tick_params(axis="y", colors=REFERENCE_COLOUR)
        rx, ry = floats(reference.x), floats(reference.y)
        if reference.curve:
            _staircase(target, rx, ry, color=REFERENCE_COLOUR, lw=1.4, label=reference.label)
        else:
            target.scatter(
                rx,
                ry,
                marker="D",
                s=40,
                color=REFERENCE_COLOUR,
                edgecolor="black",
                lw=0.5,
                label=reference.label,
                zorder=4,
            )
        for name, px, py in zip(reference.names, rx, ry):
            target.annotate(name, (px, py), textcoords="offset points", xytext=(4, 4), fontsize=7)
        if target is not ax:
            more = target.get_legend_handles_labels()
            handles, labels = handles + more[0], labels + more[1]
        else:
            handles, labels = ax.get_legend_handles_labels()
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(  # below the axes: the front and the references fill every corner
        handles, labels, fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2
    )
    return save(fig, path)
