"""One split edge: the LID of each candidate op against depth and the ops' similarity."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from naslid.report.plots.canvas import GROUP_COLOURS, PathLike, cmap, save, subplots


def _ordered_by_group(
    ops: Sequence[str], groups: Sequence[Sequence[str]] | None
) -> tuple[list[int], list[int]]:
    """Indices of ``ops`` reordered group by group, and each position's group (0 / 1; 0 for
    all without groups). Ops named in no group keep their order at the end, as group 0."""
    if not groups:
        return list(range(len(ops))), [0] * len(ops)
    order, member = [], []
    for g, names in enumerate(groups):
        for name in names:
            if name not in ops:
                raise ValueError(f"groups: {name!r} is not one of the ops {list(ops)}")
            order.append(list(ops).index(name))
            member.append(g)
    rest = [i for i in range(len(ops)) if i not in order]
    return order + rest, member + [0] * len(rest)


def _draw_lid(ax, ops, lid, groups, short_op) -> None:
    vectors = np.asarray(lid, dtype=np.float64)
    if vectors.ndim != 2 or vectors.shape[0] != len(ops):
        raise ValueError(f"lid: expected one vector per op ({len(ops)}), got shape {vectors.shape}")
    depth = np.arange(1, vectors.shape[1] + 1) / vectors.shape[1]
    order, member = _ordered_by_group(ops, groups)
    group_of = dict(zip(order, member))
    palette = cmap("tab10")
    for i, name in enumerate(ops):
        g = group_of[i]
        tag = f" ({'AB'[g]})" if groups else ""
        ax.plot(
            depth,
            vectors[i],
            marker="o",
            markersize=3,
            linestyle="-" if g == 0 else "--",
            color=palette(i % 10),
            label=short_op(name) + tag,
        )
    ax.set_xlabel("relative depth (layer index / L)")
    ax.set_ylabel("LID")
    ax.set_xlim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=1 if len(ops) <= 6 else 2)


def _draw_similarity(ax, ops, similarity, groups, short_op) -> None:
    sim = np.asarray(similarity, dtype=np.float64)
    if sim.shape != (len(ops), len(ops)):
        raise ValueError(f"similarity: expected a {len(ops)}x{len(ops)} matrix, got {sim.shape}")
    order, member = _ordered_by_group(ops, groups)
    shown = sim[np.ix_(order, order)].copy()
    np.fill_diagonal(shown, np.nan)  # self-similarity (1/eps for Eq. 5) would swamp the scale
    off = shown[np.isfinite(shown)]
    vmin, vmax = (float(off.min()), float(off.max())) if off.size else (0.0, 1.0)
    if vmax <= vmin:
        vmin, vmax = vmin - 0.5, vmax + 0.5
    image = ax.imshow(shown, cmap=cmap("viridis").with_extremes(bad="0.85"), vmin=vmin, vmax=vmax)
    n = len(order)
    for i in range(n):
        for j in range(n):
            if i == j:
                continue
            v = shown[i, j]
            light = (v - vmin) / (vmax - vmin) > 0.6
            ax.text(
                j,
                i,
                f"{v:.3g}",
                ha="center",
                va="center",
                fontsize=7,
                color="black" if light else "white",
            )
    labels = [short_op(ops[i]) for i in order]
    ax.set_xticks(range(n), labels, rotation=35, ha="right", fontsize=8)
    ax.set_yticks(range(n), labels, fontsize=8)
    if groups:
        for ticks in (ax.get_xticklabels(), ax.get_yticklabels()):
            for tick, g in zip(ticks, member):
                tick.set_color(GROUP_COLOURS[g])
                tick.set_fontweight("bold")
        cut = member.count(0) - 0.5
        if 0 < cut + 0.5 < n:
            ax.axhline(cut, color="red", linewidth=2)
            ax.axvline(cut, color="red", linewidth=2)
    ax.figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="similarity")


def split_view(
    ops: Sequence[str],
    similarity: Sequence[Sequence[float]],
    path: PathLike,
    *,
    lid: Sequence[Sequence[float]] | None = None,
    groups: Sequence[Sequence[str]] | None = None,
    title: str = "",
    short_op: Callable[[str], str] = str,
) -> Path:
    """One split edge: the LID of each candidate op against relative depth (NAS-LID Fig. 1;
    left, when ``lid`` is given) and the ops' similarity heatmap (right), ops reordered by
    group of the balanced cut, the cut drawn in red and the groups' names coloured (A blue, B orange).

    Each op keeps the colour of its position in ``ops`` (a slot's options in the space's
    order, so an op has the same colour in every split view); ``short_op`` labels the ops
    (the space's :meth:`~naslid.spaces.base.SlotSpace.short_op`)."""
    if len(ops) < 1:
        raise ValueError("split_view: no op to plot")
    panels = 2 if lid is not None else 1
    fig, axes = subplots((5.2 * panels + 0.6, 4.2), 1, panels, squeeze=False)
    if lid is not None:
        _draw_lid(axes[0, 0], ops, lid, groups, short_op)
        axes[0, 0].set_title("LID of each layer's output", fontsize=9)
    _draw_similarity(axes[0, -1], ops, similarity, groups, short_op)
    cut = ""
    if groups:
        a, b = (",".join(short_op(o) for o in g) for g in groups)
        cut = f"\nbalanced cut: A = {{{a}}}, B = {{{b}}}"
    axes[0, -1].set_title("similarity (diagonal hidden)" + cut, fontsize=9)
    if title:
        fig.suptitle(title, fontsize=10)
    return save(fig, path)
