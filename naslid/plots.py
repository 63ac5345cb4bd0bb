"""Figures, one small function each: data and an output path in, a PNG written atomically out.

Matplotlib runs on the Agg backend (no display). Every function returns the written path.
"""

from __future__ import annotations

import io
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from scipy import stats as sps  # noqa: E402

from naslid.io import atomic_write_bytes  # noqa: E402


def _save(fig: plt.Figure, path: str | os.PathLike, dpi: int = 120) -> Path:
    buf = io.BytesIO()
    try:
        fig.tight_layout()
        fig.savefig(buf, format="png", dpi=dpi)
    finally:
        plt.close(fig)
    return atomic_write_bytes(path, buf.getvalue())


def error_edf(
    accuracies: Mapping[str, Sequence[float]],
    path: str | os.PathLike,
    title: str = "Error EDF",
    xmax_quantile: float = 0.99,
) -> Path:
    """EDF of the error (100 - accuracy) of several spaces; the first is the reference, and
    the title gives each other space's two-sample KS statistic against it. The x axis stops at
    the ``xmax_quantile`` of all errors, so a few broken archs do not squash the curves."""
    if not accuracies:
        raise ValueError("error_edf: no space to plot")
    names = list(accuracies)
    errs = {k: np.sort(100.0 - np.asarray(v, dtype=np.float64)) for k, v in accuracies.items()}
    fig, ax = plt.subplots(figsize=(6, 4))
    for name in names:
        e = errs[name]
        if len(e):
            ax.step(
                e, np.arange(1, len(e) + 1) / len(e), where="post", label=f"{name} (n={len(e)})"
            )
    ref = names[0]
    ks = [
        f"{k} {sps.ks_2samp(errs[k], errs[ref]).statistic:.2f}" for k in names[1:] if len(errs[k])
    ]
    ax.set_title(title + (f"\nKS vs {ref}: " + ", ".join(ks) if ks else ""), fontsize=9)
    ax.set_xlabel("error (%)")
    ax.set_ylabel("fraction of archs with error <= x")
    everything = np.concatenate([e for e in errs.values() if len(e)] or [np.zeros(1)])
    lo, hi = float(everything.min()), float(np.quantile(everything, xmax_quantile))
    if hi > lo:
        ax.set_xlim(lo - 0.02 * (hi - lo), hi)
    ax.set_ylim(0, 1.01)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)


def flops_vs_accuracy(
    spaces: Mapping[str, tuple[Sequence[float], Sequence[float]]],
    path: str | os.PathLike,
    title: str = "FLOPs vs accuracy",
) -> Path:
    """Scatter of (FLOPs, accuracy) for several spaces, drawn in order (later on top)."""
    if not spaces:
        raise ValueError("flops_vs_accuracy: no space to plot")
    fig, ax = plt.subplots(figsize=(6, 4))
    for i, (name, (flops, acc)) in enumerate(spaces.items()):
        ax.scatter(
            np.asarray(flops, dtype=np.float64),
            np.asarray(acc, dtype=np.float64),
            s=4 if i == 0 else 8,
            alpha=0.3 if i == 0 else 0.7,
            label=f"{name} (n={len(acc)})",
        )
    ax.set_title(title, fontsize=9)
    ax.set_xlabel("FLOPs (M)")
    ax.set_ylabel("accuracy (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)
