"""Numbers and names as the report's tables and file names print them."""

from __future__ import annotations

import math
import re
from typing import Any


def fixed(value: Any, digits: int = 2) -> str:
    """A number for a table: fixed digits, ``-`` for missing / NaN."""
    if value is None:
        return "-"
    try:
        v = float(value)
    except (TypeError, ValueError):
        return str(value)
    if not math.isfinite(v):
        return "-"
    return f"{v:.{digits}f}"


def sig(value: Any, digits: int = 3) -> str:
    """A number to ``digits`` significant digits, ``-`` for missing / NaN."""
    if value is None:
        return "-"
    v = float(value)
    return "-" if not math.isfinite(v) else f"{v:.{digits}g}"


def duration(value: float | None) -> str:
    """Seconds as seconds, minutes or hours, whichever reads best."""
    if value is None or not math.isfinite(value):
        return "-"
    if value < 120:
        return f"{value:.1f} s"
    if value < 7200:
        return f"{value / 60:.1f} min"
    return f"{value / 3600:.2f} h"


def arch_count(n: int) -> str:
    """An architecture count: ``15,625``; ``5.6e+17`` past a billion (mobile-space masks)."""
    return f"{n:,}" if n < 10**9 else f"{n:.2g}"


def slug(text: str) -> str:
    """A file-name-safe, lower-case form of ``text`` (at most 40 characters)."""
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")[:40] or "figure"
