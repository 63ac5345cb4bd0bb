"""The search figures: progress per generation, FLOPs against score, proxy against the benchmark."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from naslid.report.plots.canvas import PathLike, cmap, floats, save, star, subplots


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
    s = floats(score)
    if len(gen) != len(s) or not len(s):
        raise ValueError("evolution_progress: need one generation per score, and some scores")
    gens = np.unique(gen)
    mean = np.array([s[gen == g].mean() for g in gens])
    std = np.array([s[gen == g].std() for g in gens])
    best = np.maximum.accumulate(np.array([s[gen == g].max() for g in gens]))
    fig, ax = subplots((6.4, 4.2))
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
    return save(fig, path)


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
    f, s = floats(flops), floats(score)
    if len(f) != len(s) or not len(s):
        raise ValueError("flops_vs_score: need as many FLOPs as scores, and some")
    fig, ax = subplots((6.4, 4.2))
    if generation is not None:
        gen = np.asarray(generation, dtype=np.int64).reshape(-1)
        if len(gen) != len(s):
            raise ValueError("flops_vs_score: need one generation per score")
        lo, hi = int(gen.min()), int(gen.max())
        colours = cmap("viridis", hi - lo + 1)  # one colour per generation
        points = ax.scatter(
            f, s, c=gen, cmap=colours, s=16, alpha=0.85, vmin=lo - 0.5, vmax=hi + 0.5
        )
        bar = fig.colorbar(points, ax=ax, label="generation")
        step = max(1, (hi - lo + 1) // 10)
        bar.set_ticks(range(lo, hi + 1, step))
    else:
        ax.scatter(f, s, s=16, alpha=0.85)
    if best is not None:
        star(ax, f[best], s[best], f"best ({s[best]:.2f} at {f[best]:.1f} MFLOPs)")
        ax.legend(fontsize=8, loc="lower right")
    ax.set_xlabel("FLOPs (M)")
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    return save(fig, path)


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
    x, y = floats(proxy), floats(truth)
    if len(x) != len(y) or not len(x):
        raise ValueError("ranking_scatter: need paired, non-empty scores")
    fig, ax = subplots((6.0, 4.4))
    ax.scatter(x, y, s=14, alpha=0.7)
    if best is not None:
        star(ax, x[best], y[best], "best proxy score")
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
    return save(fig, path)
