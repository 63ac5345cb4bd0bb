"""Grouped bars of a value per edge: partition scores and the split criteria side by side."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from naslid.report.plots.canvas import PathLike, cmap, save, subplots


def _grouped_bars(ax, values, highlight=None, ylabel=""):
    """Bars per category (x) and series (colour); ``highlight[series]`` = the category whose
    bar is hatched and outlined (the chosen edge)."""
    series = list(values)
    categories = sorted({c for v in values.values() for c in v}, key=_natural)
    width = 0.8 / max(1, len(series))
    palette = cmap("tab10")
    for s_i, s in enumerate(series):
        xs = np.arange(len(categories)) + (s_i - (len(series) - 1) / 2) * width
        heights = [values[s].get(c, np.nan) for c in categories]
        heights = [np.nan if h is None else float(h) for h in heights]
        bars = ax.bar(
            xs, np.nan_to_num(heights, nan=0.0), width * 0.95, label=s, color=palette(s_i % 10)
        )
        chosen = (highlight or {}).get(s)
        for c, bar, h in zip(categories, bars, heights):
            if not math.isfinite(h):
                ax.text(
                    bar.get_x() + bar.get_width() / 2,
                    0,
                    "n/a",
                    ha="center",
                    va="bottom",
                    fontsize=6,
                    rotation=90,
                )
            if chosen is not None and str(c) == str(chosen):
                bar.set_hatch("//")
                bar.set_edgecolor("black")
                bar.set_linewidth(1.5)
    ax.set_xticks(range(len(categories)), [str(c) for c in categories], fontsize=8)
    ax.set_ylabel(ylabel)
    ax.grid(axis="y", alpha=0.3)
    top = ax.get_ylim()[1]
    ax.set_ylim(top=top * 1.18)  # headroom for the legend above the bars
    if len(series) > 1 or series[0]:
        ax.legend(fontsize=7, ncol=min(6, len(series)), loc="upper center")


def _natural(text: str) -> tuple:
    """Sort key: the first integer in the label (``e10`` after ``e9``), then the label."""
    found = re.search(r"\d+", str(text))
    return (int(found.group()) if found else math.inf, str(text))


def edge_scores(
    values: Mapping[str, Mapping[str, float]],
    path: PathLike,
    *,
    chosen: Mapping[str, str] | None = None,
    ylabel: str = "partition score",
    title: str = "",
) -> Path:
    """Grouped bars: a value per edge (x) for each series (a node or a criterion); the edge
    each series chose is hatched and outlined."""
    if not values:
        raise ValueError("edge_scores: nothing to plot")
    fig, ax = subplots((max(6.4, 1.1 * max(len(v) for v in values.values())), 4.0))
    _grouped_bars(ax, values, chosen, ylabel)
    ax.set_xlabel("edge")
    ax.set_title(title, fontsize=9)
    return save(fig, path)


def criteria_comparison(
    separability: Mapping[str, Mapping[str, float]],
    path: PathLike,
    *,
    chosen: Mapping[str, str] | None = None,
    seconds: Mapping[str, float] | None = None,
    memory_mb: Mapping[str, float] | None = None,
    title: str = "",
) -> Path:
    """Split criteria side by side: separability per edge (grouped bars, the chosen edge
    hatched) and, where recorded, the profiling time and peak memory of each criterion."""
    if not separability:
        raise ValueError("criteria_comparison: nothing to plot")
    costs = [
        (name, v, unit)
        for name, v, unit in (("time", seconds, "seconds"), ("peak memory", memory_mb, "MB"))
        if v
    ]
    fig, axes = subplots(
        (6.4 + 3.0 * len(costs), 4.0),
        1,
        1 + len(costs),
        squeeze=False,
        gridspec_kw={"width_ratios": [2.2] + [1] * len(costs)},
    )
    _grouped_bars(axes[0, 0], separability, chosen, "separability (normalised dispersion)")
    axes[0, 0].set_xlabel("edge")
    axes[0, 0].set_title("separability per edge (hatched: the edge split)", fontsize=9)
    palette = cmap("tab10")
    order = list(separability)
    for ax, (name, v, unit) in zip(axes[0, 1:], costs):
        keys = [k for k in order if k in v] + [k for k in v if k not in order]
        bars = ax.bar(
            range(len(keys)),
            [float(v[k]) for k in keys],
            color=[palette(order.index(k) % 10) if k in order else "0.5" for k in keys],
        )
        ax.bar_label(bars, fmt="%.3g", fontsize=7)
        ax.set_xticks(range(len(keys)), keys, rotation=20, fontsize=8)
        ax.set_ylabel(unit)
        ax.set_title(f"{name} of profiling", fontsize=9)
        ax.grid(axis="y", alpha=0.3)
    if title:
        fig.suptitle(title, fontsize=10)
    return save(fig, path)
