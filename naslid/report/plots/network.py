"""The found mobile network, layer by layer: kernel, expansion and depth of each stage."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from naslid.report.plots.canvas import PathLike, cmap, save, subplots


def mobile_network(
    layers: Sequence[tuple[str, int, int] | None], path: PathLike, title: str = ""
) -> Path:
    """One column per searched layer (``(group, kernel, expansion)``, None for a layer that
    is not there): a bar as tall as the kernel, as wide as the expansion allows, coloured by
    the expansion; absent layers drawn as a grey dash; a line and a label per group with its
    depth (the layers it keeps)."""
    fig, ax = subplots((max(6.0, 0.42 * len(layers)), 3.2))
    expansions = sorted({c[2] for c in layers if c})
    palette = cmap("viridis", max(2, len(expansions)))
    groups: dict[str, list[int]] = {}
    for i, choice in enumerate(layers):
        if choice is None:
            ax.plot([i - 0.3, i + 0.3], [0.5, 0.5], color="0.6", lw=2)
            continue
        group, kernel, expand = choice
        groups.setdefault(group, []).append(i)
        colour = palette(expansions.index(expand) / max(1, len(expansions) - 1))
        ax.bar(i, kernel, 0.8, color=colour, edgecolor="black", lw=0.5)
        ax.text(i, kernel + 0.15, f"e{expand}", ha="center", va="bottom", fontsize=7)
    owner = _group_of(layers)
    for i in range(1, len(layers)):
        if owner[i] != owner[i - 1]:
            ax.axvline(i - 0.5, color="0.3", lw=0.8, ls=":")
    for g in dict.fromkeys(owner):
        cols = [i for i, o in enumerate(owner) if o == g]
        depth = len(groups.get(g, []))
        ax.text(np.mean(cols), 8.6, f"{g}\ndepth {depth}", ha="center", va="bottom", fontsize=7)
    ax.set_xlim(-0.6, len(layers) - 0.4)
    ax.set_ylim(0, 10.2)
    ax.set_yticks([3, 5, 7])
    ax.set_ylabel("kernel")
    ax.set_xticks(range(len(layers)))
    ax.set_xticklabels([str(i + 1) for i in range(len(layers))], fontsize=7)
    ax.set_xlabel("searched layer (bar label: expansion; grey dash: layer not there)")
    if title:
        ax.set_title(title, fontsize=9)
    return save(fig, path)


def _group_of(layers: Sequence[tuple[str, int, int] | None]) -> list[str]:
    """Each column's group; an absent layer belongs to the group of the layer before it."""
    out, current = [], ""
    for choice in layers:
        current = choice[0] if choice else current
        out.append(current)
    return out
