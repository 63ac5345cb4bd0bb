"""Training curves: loss and accuracy against the epoch."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from naslid.report.plots.canvas import PathLike, cmap, save, subplots

KEY_LABELS = {
    "loss": "loss",
    "accuracy": "accuracy",
    "train_loss": "train loss",
    "top1": "top-1",
    "top5": "top-5",
}


def training_curves(
    curves: Mapping[str, Sequence[Mapping[str, float]]],
    path: PathLike,
    *,
    loss_keys: Sequence[str] = ("loss",),
    accuracy_keys: Sequence[str] = ("accuracy",),
    key_labels: Mapping[str, str] | None = None,
    title: str = "Training",
) -> Path:
    """Two panels, loss and accuracy against the epoch, one line per (curve, key). Each curve
    is a list of per-epoch dicts (``epoch`` plus the keys); missing keys are skipped. Curves
    are told apart by colour, keys by line style; ``key_labels`` names the keys in the legend."""
    if not curves:
        raise ValueError("training_curves: nothing to plot")
    names = {**KEY_LABELS, **(key_labels or {})}
    fig, (ax_l, ax_a) = subplots((10.5, 3.9), 1, 2)
    palette = cmap("tab10")
    drawn = [0, 0]
    last_epoch = 1.0
    for c_i, (name, rows) in enumerate(curves.items()):
        if not rows:
            continue
        epochs = [float(r.get("epoch", i + 1)) for i, r in enumerate(rows)]
        last_epoch = max(last_epoch, max(epochs))
        for ax, keys, slot in ((ax_l, loss_keys, 0), (ax_a, accuracy_keys, 1)):
            for k_i, key in enumerate(keys):
                ys = [r.get(key) for r in rows]
                if all(v is None for v in ys):
                    continue
                what = names.get(key, key)
                label = name if len(keys) == 1 and name else (f"{name}: {what}" if name else what)
                ax.plot(
                    epochs,
                    [np.nan if v is None else float(v) for v in ys],
                    marker="o",
                    markersize=4,
                    color=palette((c_i + k_i) % 10) if len(curves) == 1 else palette(c_i % 10),
                    linestyle=("-", "--", ":")[k_i % 3],
                    label=label,
                )
                drawn[slot] += 1
    for ax, ylabel, n in ((ax_l, "loss", drawn[0]), (ax_a, "accuracy (%)", drawn[1])):
        ax.set_xlabel("epoch")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        ax.set_xlim(0.5, last_epoch + 0.5)
        step = max(1, int(math.ceil(last_epoch / 10)))
        ax.set_xticks(np.arange(1, int(last_epoch) + 1, step))
        if n:
            ax.legend(fontsize=7, ncol=1 if n <= 5 else 2)
        else:
            ax.text(0.5, 0.5, "not recorded", ha="center", va="center", transform=ax.transAxes)
    fig.suptitle(title, fontsize=10)
    return save(fig, path)
