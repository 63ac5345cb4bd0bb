"""What the report shows."""

from __future__ import annotations

from dataclasses import dataclass

from naslid.evaluate import DEFAULT_SUBSETS


@dataclass
class ReportConfig:
    """What the report shows."""

    top_k: int = 10
    """Rows of the top-architectures table."""
    max_split_views: int = 15
    """Split edges drawn at most (R = 4 rounds split 15 nodes)."""
    max_comparisons: int = 4
    """Nodes at most whose criteria are compared side by side."""
    ranking_subsets: tuple[int, ...] = DEFAULT_SUBSETS
    """Top-k subsets of the ranking correlation (naslid.evaluate)."""
