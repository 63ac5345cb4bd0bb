"""The LISSNAS figures: error EDFs of several spaces and FLOPs against accuracy."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from scipy import stats as sps

from naslid.lissnas import stats as lissnas_stats
from naslid.report.plots.canvas import PathLike, floats, save, subplots


def _edf_axes(ax, title: str) -> None:
    ax.set_title(title, fontsize=9)
    ax.set_xlabel("error (%)")
    ax.set_ylabel("fraction of archs with error <= x")
    ax.set_ylim(0, 1.01)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")


def error_edf(
    accuracies: Mapping[str, Sequence[float]],
    path: PathLike,
    title: str = "Error EDF",
    xmax_quantile: float = 0.99,
) -> Path:
    """EDF of the error (100 - accuracy) of several spaces; the first is the reference, and
    each other space's legend entry gives its two-sample KS statistic against it. The x axis
    stops at the ``xmax_quantile`` of all errors, so a few broken archs do not squash the curves."""
    if not accuracies:
        raise ValueError("error_edf: no space to plot")
    names = list(accuracies)
    accs = {k: floats(v) for k, v in accuracies.items()}
    errs = {k: 100.0 - a for k, a in accs.items()}
    ref = names[0]
    fig, ax = subplots((6.4, 4.2))
    for name in names:
        e = errs[name]
        if not len(e):
            continue
        label = f"{name} (n={len(e)})"
        if name != ref and len(errs[ref]):
            label = f"{name} (n={len(e)}, KS {sps.ks_2samp(e, errs[ref]).statistic:.2f})"
        ax.step(*lissnas_stats.error_edf(accs[name]), where="post", label=label)
    everything = np.concatenate([e for e in errs.values() if len(e)] or [np.zeros(1)])
    lo, hi = float(everything.min()), float(np.quantile(everything, xmax_quantile))
    if hi > lo:
        ax.set_xlim(lo - 0.02 * (hi - lo), hi)
    _edf_axes(ax, f"{title}\nKS: two-sample statistic against {ref}")
    return save(fig, path)


def edf_curves(
    error: Sequence[float],
    curves: Mapping[str, Sequence[float]],
    path: PathLike,
    title: str = "Error EDF",
) -> Path:
    """Error EDFs already evaluated on a common grid of errors (LISSNAS ``stats.json["edf"]``):
    one step curve per named space."""
    grid = floats(error)
    if not len(grid) or not curves:
        raise ValueError("edf_curves: no grid or no curve to plot")
    fig, ax = subplots((6.4, 4.2))
    for name, values in curves.items():
        v = floats(values)
        if v.shape != grid.shape:
            raise ValueError(f"edf_curves: curve {name!r} has {len(v)} points, grid {len(grid)}")
        ax.step(grid, v, where="post", label=name)
    _edf_axes(ax, title)
    return save(fig, path)


def flops_vs_accuracy(
    spaces: Mapping[str, tuple[Sequence[float], Sequence[float]]],
    path: PathLike,
    title: str = "FLOPs vs accuracy",
) -> Path:
    """Scatter of (FLOPs, accuracy) for several spaces, drawn in order (later on top)."""
    if not spaces:
        raise ValueError("flops_vs_accuracy: no space to plot")
    fig, ax = subplots((6.4, 4.2))
    for i, (name, (flops, acc)) in enumerate(spaces.items()):
        ax.scatter(
            floats(flops),
            floats(acc),
            s=4 if i == 0 and len(spaces) > 1 else 8,  # the reference, drawn first, in the back
            alpha=0.3 if i == 0 and len(spaces) > 1 else 0.7,
            label=f"{name} (n={len(acc)})",
        )
    ax.set_title(title, fontsize=9)
    ax.set_xlabel("FLOPs (M)")
    ax.set_ylabel("accuracy (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return save(fig, path)


def lissnas_figures(figures: Mapping[str, dict], out: PathLike) -> dict[str, str]:
    """``OUT/edf.png`` and ``OUT/flops_accuracy.png`` of a LISSNAS run, drawn from
    :func:`naslid.lissnas.figure_data`; their paths by name."""
    out = Path(out)
    edf, flops = figures["edf"], figures["flops"]
    return {
        "edf_png": str(error_edf(edf["accuracy"], out / "edf.png", title=edf["title"])),
        "flops_png": str(
            flops_vs_accuracy(flops["points"], out / "flops_accuracy.png", title=flops["title"])
        ),
    }
