"""The report's sections, in the report's order: each draws itself into the document when
the run has what it needs, and otherwise names itself in the context's ``absent``."""

from __future__ import annotations

from collections.abc import Callable

from naslid.report.context import SectionContext
from naslid.report.sections import (
    criteria,
    front,
    lid,
    lissnas,
    network,
    ranking,
    search,
    summary,
    transfer,
    tree,
)

SECTIONS: tuple[tuple[str, Callable[[SectionContext], None]], ...] = (
    ("summary", summary.draw),
    ("partition tree", tree.draw),
    ("LID profiles", lid.draw),
    ("split criteria", criteria.draw),
    ("evolutionary search", search.draw),
    ("Pareto front", front.draw),
    ("LISSNAS", lissnas.draw),
    ("ranking", ranking.draw),
    ("transfer", transfer.draw),
    ("found network", network.draw),
)
