"""The partition tree drawn as boxes and lines."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from naslid.report.plots.canvas import PathLike, save, subplots


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
    fig, ax = subplots((max(5.0, 2.5 * n_leaves), 0.8 + 1.5 * (max_depth + 1)))
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
    return save(fig, path)
