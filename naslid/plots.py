"""Figures, one small function each: data and an output path in, a PNG written atomically out.

Matplotlib runs on the Agg backend (no display). Every function returns the written path.
The run report (:mod:`naslid.report`) assembles them; LISSNAS writes :func:`error_edf` and
:func:`flops_vs_accuracy` into its own artifact.
"""

from __future__ import annotations

import io
import math
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from scipy import stats as sps  # noqa: E402

from naslid.io import atomic_write_bytes  # noqa: E402

PathLike = str | os.PathLike

GROUP_COLOURS = ("tab:blue", "tab:orange")
"""Colours of the two groups of the balanced cut (group A holds the edge's lowest option)."""

OP_SHORT = {
    "none": "none",
    "skip_connect": "skip",
    "nor_conv_1x1": "conv1x1",
    "nor_conv_3x3": "conv3x3",
    "avg_pool_3x3": "pool3x3",
}
"""Short names of the NAS-Bench-201 operations for crowded labels; others print as they are."""


def short_op(name: str) -> str:
    """A short label for an operation name (NAS-Bench-201 names shortened, others kept)."""
    return OP_SHORT.get(name, name)


def op_colour(name: str, index: int = 0):
    """A colour per operation, the same in every figure for the NAS-Bench-201 operations
    (their position in :data:`OP_SHORT`); other operations take ``index``'s colour."""
    keys = list(OP_SHORT)
    return plt.get_cmap("tab10")((keys.index(name) if name in keys else index) % 10)


def _save(fig: plt.Figure, path: PathLike, dpi: int = 120) -> Path:
    buf = io.BytesIO()
    try:
        fig.tight_layout()
        fig.savefig(buf, format="png", dpi=dpi)
    finally:
        plt.close(fig)
    return atomic_write_bytes(path, buf.getvalue())


def _star(ax, x: float, y: float, label: str) -> None:
    """Mark the best point of a scatter with a red star."""
    ax.scatter(
        [x], [y], marker="*", s=220, color="tab:red", edgecolor="black", zorder=3, label=label
    )


def _floats(values: Sequence[float]) -> np.ndarray:
    return np.asarray(values, dtype=np.float64).reshape(-1)


# --------------------------------------------------------------------------- LISSNAS
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
    errs = {k: np.sort(100.0 - _floats(v)) for k, v in accuracies.items()}
    ref = names[0]
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for name in names:
        e = errs[name]
        if not len(e):
            continue
        label = f"{name} (n={len(e)})"
        if name != ref and len(errs[ref]):
            label = f"{name} (n={len(e)}, KS {sps.ks_2samp(e, errs[ref]).statistic:.2f})"
        ax.step(e, np.arange(1, len(e) + 1) / len(e), where="post", label=label)
    ax.set_title(f"{title}\nKS: two-sample statistic against {ref}", fontsize=9)
    ax.set_xlabel("error (%)")
    ax.set_ylabel("fraction of archs with error <= x")
    everything = np.concatenate([e for e in errs.values() if len(e)] or [np.zeros(1)])
    lo, hi = float(everything.min()), float(np.quantile(everything, xmax_quantile))
    if hi > lo:
        ax.set_xlim(lo - 0.02 * (hi - lo), hi)
    ax.set_ylim(0, 1.01)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    return _save(fig, path)


def edf_curves(
    error: Sequence[float],
    curves: Mapping[str, Sequence[float]],
    path: PathLike,
    title: str = "Error EDF",
) -> Path:
    """Error EDFs already evaluated on a common grid of errors (LISSNAS ``stats.json["edf"]``):
    one step curve per named space."""
    grid = _floats(error)
    if not len(grid) or not curves:
        raise ValueError("edf_curves: no grid or no curve to plot")
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for name, values in curves.items():
        v = _floats(values)
        if v.shape != grid.shape:
            raise ValueError(f"edf_curves: curve {name!r} has {len(v)} points, grid {len(grid)}")
        ax.step(grid, v, where="post", label=name)
    ax.set_title(title, fontsize=9)
    ax.set_xlabel("error (%)")
    ax.set_ylabel("fraction of archs with error <= x")
    ax.set_ylim(0, 1.01)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    return _save(fig, path)


def flops_vs_accuracy(
    spaces: Mapping[str, tuple[Sequence[float], Sequence[float]]],
    path: PathLike,
    title: str = "FLOPs vs accuracy",
) -> Path:
    """Scatter of (FLOPs, accuracy) for several spaces, drawn in order (later on top)."""
    if not spaces:
        raise ValueError("flops_vs_accuracy: no space to plot")
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for i, (name, (flops, acc)) in enumerate(spaces.items()):
        ax.scatter(
            _floats(flops),
            _floats(acc),
            s=4 if i == 0 and len(spaces) > 1 else 8,  # the reference, drawn first, in the back
            alpha=0.3 if i == 0 and len(spaces) > 1 else 0.7,
            label=f"{name} (n={len(acc)})",
        )
    ax.set_title(title, fontsize=9)
    ax.set_xlabel("FLOPs (M)")
    ax.set_ylabel("accuracy (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)


# --------------------------------------------------------------------------- splitting
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


def _draw_lid(ax, ops, lid, groups) -> None:
    vectors = np.asarray(lid, dtype=np.float64)
    if vectors.ndim != 2 or vectors.shape[0] != len(ops):
        raise ValueError(f"lid: expected one vector per op ({len(ops)}), got shape {vectors.shape}")
    depth = np.arange(1, vectors.shape[1] + 1) / vectors.shape[1]
    order, member = _ordered_by_group(ops, groups)
    group_of = dict(zip(order, member))
    for i, name in enumerate(ops):
        g = group_of[i]
        tag = f" ({'AB'[g]})" if groups else ""
        ax.plot(
            depth,
            vectors[i],
            marker="o",
            markersize=3,
            linestyle="-" if g == 0 else "--",
            color=op_colour(name, i),
            label=short_op(name) + tag,
        )
    ax.set_xlabel("relative depth (layer index / L)")
    ax.set_ylabel("LID")
    ax.set_xlim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=1 if len(ops) <= 6 else 2)


def _draw_similarity(ax, ops, similarity, groups) -> None:
    sim = np.asarray(similarity, dtype=np.float64)
    if sim.shape != (len(ops), len(ops)):
        raise ValueError(f"similarity: expected a {len(ops)}x{len(ops)} matrix, got {sim.shape}")
    order, member = _ordered_by_group(ops, groups)
    shown = sim[np.ix_(order, order)].copy()
    np.fill_diagonal(shown, np.nan)  # self-similarity (1/eps for Eq. 5) would swamp the scale
    cmap = plt.get_cmap("viridis").with_extremes(bad="0.85")
    off = shown[np.isfinite(shown)]
    vmin, vmax = (float(off.min()), float(off.max())) if off.size else (0.0, 1.0)
    if vmax <= vmin:
        vmin, vmax = vmin - 0.5, vmax + 0.5
    image = ax.imshow(shown, cmap=cmap, vmin=vmin, vmax=vmax)
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
) -> Path:
    """One split edge: the LID of each candidate op against relative depth (NAS-LID Fig. 1;
    left, when ``lid`` is given) and the ops' similarity heatmap (right), ops reordered by
    group of the balanced cut, the cut drawn in red and the groups' names coloured (A blue, B orange)."""
    if len(ops) < 1:
        raise ValueError("split_view: no op to plot")
    panels = 2 if lid is not None else 1
    fig, axes = plt.subplots(1, panels, figsize=(5.2 * panels + 0.6, 4.2), squeeze=False)
    if lid is not None:
        _draw_lid(axes[0, 0], ops, lid, groups)
        axes[0, 0].set_title("LID of each layer's output", fontsize=9)
    _draw_similarity(axes[0, -1], ops, similarity, groups)
    cut = ""
    if groups:
        cut = " | ".join(",".join(short_op(o) for o in g) for g in groups)
        cut = f"\nbalanced cut: A = {{{cut.split(' | ')[0]}}}, B = {{{cut.split(' | ')[1]}}}"
    axes[0, -1].set_title("similarity (diagonal hidden)" + cut, fontsize=9)
    if title:
        fig.suptitle(title, fontsize=10)
    return _save(fig, path)


def partition_tree(
    nodes: Sequence[Mapping],
    path: PathLike,
    title: str = "Partition tree",
) -> Path:
    """Draw a tree of boxes. Each node: ``id``, ``parent`` (None at the root), ``lines`` (the
    text of its box), optional ``edge_label`` (on the line from its parent) and ``highlight``.
    Leaves are spread evenly in depth-first order; a parent sits above its children's centre."""
    if not nodes:
        raise ValueError("partition_tree: no node to draw")
    by_id = {str(n["id"]): n for n in nodes}
    children: dict[str, list[str]] = {k: [] for k in by_id}
    roots = []
    for k, n in by_id.items():
        parent = n.get("parent")
        if parent is None:
            roots.append(k)
        elif parent not in by_id:
            raise ValueError(f"partition_tree: node {k!r} has an unknown parent {parent!r}")
        else:
            children[parent].append(k)
    if len(roots) != 1:
        raise ValueError(f"partition_tree: expected one root, got {roots}")
    pos: dict[str, tuple[float, int]] = {}
    next_leaf = [0]

    def place(k: str, depth: int) -> float:
        kids = sorted(children[k])
        if not kids:
            x = float(next_leaf[0])
            next_leaf[0] += 1
        else:
            x = float(np.mean([place(c, depth + 1) for c in kids]))
        pos[k] = (x, depth)
        return x

    place(roots[0], 0)
    n_leaves, max_depth = next_leaf[0], max(d for _, d in pos.values())
    fig, ax = plt.subplots(figsize=(max(5.0, 2.5 * n_leaves), 0.8 + 1.5 * (max_depth + 1)))
    for k, (x, d) in pos.items():
        parent = by_id[k].get("parent")
        if parent is None:
            continue
        px, pd_ = pos[parent]
        ax.plot([px, x], [-pd_, -d], color="0.5", linewidth=1.2, zorder=1)
        label = by_id[k].get("edge_label")
        if label:
            ax.text(
                (px + x) / 2,
                -(pd_ + d) / 2,
                label,
                ha="center",
                va="center",
                fontsize=7,
                color="0.2",
                zorder=2,
                bbox={"boxstyle": "round,pad=0.2", "fc": "white", "ec": "none", "alpha": 0.9},
            )
    for k, (x, d) in pos.items():
        n = by_id[k]
        leaf = not children[k]
        fc = "#ffe08a" if n.get("highlight") else ("#e8f1fb" if leaf else "#f2f2f2")
        ax.text(
            x,
            -d,
            "\n".join(n.get("lines", [k])),
            ha="center",
            va="center",
            fontsize=8,
            zorder=3,
            bbox={"boxstyle": "round,pad=0.4", "fc": fc, "ec": "0.3"},
        )
    ax.set_xlim(-0.7, n_leaves - 0.3)
    ax.set_ylim(-max_depth - 0.35, 0.35)
    ax.axis("off")
    ax.set_title(title, fontsize=10)
    return _save(fig, path)


def _grouped_bars(ax, values, highlight=None, ylabel=""):
    """Bars per category (x) and series (colour); ``highlight[series]`` = the category whose
    bar is hatched and outlined (the chosen edge)."""
    series = list(values)
    categories = sorted({c for v in values.values() for c in v}, key=_natural)
    width = 0.8 / max(1, len(series))
    palette = plt.get_cmap("tab10")
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
    fig, ax = plt.subplots(figsize=(max(6.4, 1.1 * max(len(v) for v in values.values())), 4.0))
    _grouped_bars(ax, values, chosen, ylabel)
    ax.set_xlabel("edge")
    ax.set_title(title, fontsize=9)
    return _save(fig, path)


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
    fig, axes = plt.subplots(
        1,
        1 + len(costs),
        figsize=(6.4 + 3.0 * len(costs), 4.0),
        squeeze=False,
        gridspec_kw={"width_ratios": [2.2] + [1] * len(costs)},
    )
    _grouped_bars(axes[0, 0], separability, chosen, "separability (normalised dispersion)")
    axes[0, 0].set_xlabel("edge")
    axes[0, 0].set_title("separability per edge (hatched: the edge split)", fontsize=9)
    palette = plt.get_cmap("tab10")
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
    return _save(fig, path)


# --------------------------------------------------------------------------- search
def evolution_progress(
    generation: Sequence[int],
    score: Sequence[float],
    path: PathLike,
    title: str = "Evolutionary search",
    ylabel: str = "score",
) -> Path:
    """Per generation: every scored arch (dots), the population's mean +- standard deviation
    (NAS-LID Fig. 5) and the best score found so far."""
    gen = np.asarray(generation, dtype=np.int64).reshape(-1)
    s = _floats(score)
    if len(gen) != len(s) or not len(s):
        raise ValueError("evolution_progress: need one generation per score, and some scores")
    gens = np.unique(gen)
    mean = np.array([s[gen == g].mean() for g in gens])
    std = np.array([s[gen == g].std() for g in gens])
    best = np.maximum.accumulate(np.array([s[gen == g].max() for g in gens]))
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    jitter = np.random.default_rng(0).uniform(-0.12, 0.12, len(gen))
    ax.scatter(gen + jitter, s, s=9, color="0.6", alpha=0.6, label="scored archs", zorder=1)
    if len(gens) > 1:
        ax.fill_between(gens, mean - std, mean + std, color="tab:blue", alpha=0.15, zorder=1)
    ax.errorbar(
        gens,
        mean,
        yerr=std,
        marker="o",
        capsize=4,
        color="tab:blue",
        label="population mean ± std",
        zorder=2,
    )
    ax.plot(gens, best, marker="^", color="tab:red", label="best so far", zorder=3)
    ax.set_xlabel("generation")
    ax.set_ylabel(ylabel)
    step = max(1, int(math.ceil(len(gens) / 12)))
    ax.set_xticks(gens[::step])
    ax.set_xlim(gens.min() - 0.5, gens.max() + 0.5)
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    return _save(fig, path)


def flops_vs_score(
    flops: Sequence[float],
    score: Sequence[float],
    path: PathLike,
    *,
    generation: Sequence[int] | None = None,
    best: int | None = None,
    title: str = "FLOPs vs score of every visited arch",
    ylabel: str = "score",
) -> Path:
    """Scatter of every visited arch's FLOPs and score, coloured by generation; the arch at
    index ``best`` is starred."""
    f, s = _floats(flops), _floats(score)
    if len(f) != len(s) or not len(s):
        raise ValueError("flops_vs_score: need as many FLOPs as scores, and some")
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    if generation is not None:
        gen = np.asarray(generation, dtype=np.int64).reshape(-1)
        if len(gen) != len(s):
            raise ValueError("flops_vs_score: need one generation per score")
        lo, hi = int(gen.min()), int(gen.max())
        cmap = plt.get_cmap("viridis", hi - lo + 1)  # one colour per generation
        points = ax.scatter(f, s, c=gen, cmap=cmap, s=16, alpha=0.85, vmin=lo - 0.5, vmax=hi + 0.5)
        bar = fig.colorbar(points, ax=ax, label="generation")
        step = max(1, (hi - lo + 1) // 10)
        bar.set_ticks(range(lo, hi + 1, step))
    else:
        ax.scatter(f, s, s=16, alpha=0.85)
    if best is not None:
        _star(ax, f[best], s[best], f"best ({s[best]:.2f} at {f[best]:.1f} MFLOPs)")
        ax.legend(fontsize=8, loc="lower right")
    ax.set_xlabel("FLOPs (M)")
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    return _save(fig, path)


def ranking_scatter(
    proxy: Sequence[float],
    truth: Sequence[float],
    path: PathLike,
    *,
    kendall_tau: float | None = None,
    spearman_rho: float | None = None,
    best: int | None = None,
    xlabel: str = "proxy score",
    ylabel: str = "benchmark accuracy (%)",
    title: str = "Proxy score against the benchmark",
) -> Path:
    """Proxy score (x) against the table's accuracy (y) of the same archs, with Kendall's tau
    and Spearman's rho in the title; the arch at index ``best`` is starred."""
    x, y = _floats(proxy), _floats(truth)
    if len(x) != len(y) or not len(x):
        raise ValueError("ranking_scatter: need paired, non-empty scores")
    fig, ax = plt.subplots(figsize=(6.0, 4.4))
    ax.scatter(x, y, s=14, alpha=0.7)
    if best is not None:
        _star(ax, x[best], y[best], "best proxy score")
        ax.legend(fontsize=8, loc="lower right")

    def fmt(v: float | None) -> str:
        return "undefined" if v is None else f"{v:.3f}"

    ax.set_title(
        f"{title}\nn={len(x)}, Kendall tau {fmt(kendall_tau)}, Spearman rho {fmt(spearman_rho)}",
        fontsize=9,
    )
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    return _save(fig, path)


# --------------------------------------------------------------------------- training
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
    fig, (ax_l, ax_a) = plt.subplots(1, 2, figsize=(10.5, 3.9))
    palette = plt.get_cmap("tab10")
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
    return _save(fig, path)
