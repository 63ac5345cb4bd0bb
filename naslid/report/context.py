"""What a section of the report needs: the run, the document, where figures go, the config."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from naslid.report.config import ReportConfig
from naslid.report.document import Document
from naslid.report.format import slug
from naslid.report.load import RunArtifacts


class SectionContext:
    """A section draws into ``doc`` from ``run``; what it leaves out it names in ``absent``."""

    def __init__(
        self,
        run: RunArtifacts,
        doc: Document,
        figdir: Path,
        cfg: ReportConfig,
        step_order: Sequence[str] = (),
    ):
        self.run, self.doc, self.figdir, self.cfg = run, doc, figdir, cfg
        self.step_order = tuple(step_order)
        self.absent: list[str] = []

    def fig_path(self, name: str) -> Path:
        """The next figure's file: numbered in the document's order, named after ``name``."""
        return self.figdir / f"{len(self.doc.figures) + 1:02d}_{slug(name)}.png"
