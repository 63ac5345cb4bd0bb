"""The report's entry point: load the run, draw every section, write HTML and Markdown."""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from naslid.io import atomic_write_bytes
from naslid.report.config import ReportConfig
from naslid.report.context import SectionContext
from naslid.report.document import Document
from naslid.report.format import slug
from naslid.report.load import PathLike, load_run
from naslid.report.sections import SECTIONS

MARKDOWN_LIMIT = 400_000
"""Characters of Markdown the KFP UI renders (MarkdownViewer's MAX_MARKDOWN_STR_LENGTH)."""


def build_report(
    html_out: PathLike,
    markdown_out: PathLike,
    *,
    figures_dir: PathLike | None = None,
    config: ReportConfig | None = None,
    step_order: Sequence[str] = (),
    progress: bool = False,
    **artifacts: PathLike | Sequence[PathLike] | None,
) -> dict:
    """Write the run's report as one self-contained HTML page and as Markdown.

    ``artifacts``: the run's artifacts and table, as :func:`~naslid.report.load.load_run`
    takes them (``data``, ``supernet``, ``partition``, ``space``, ``search``, optional
    ``transfer``, ``profiles`` and ``table``); ``figures_dir``: also keep the figures there as
    PNG files, linked from the Markdown by relative path (default: figures only inside the
    HTML); ``step_order``: the pipeline's steps in DAG order, the order of the time table
    (default: the order the artifacts were created). A section that cannot be drawn is
    replaced by one line saying why, and listed under ``errors``.

    Returns ``best_arch``, ``markdown``, ``html`` (the paths), ``figures`` (PNG file names),
    ``sections`` (titles present), ``absent`` (sections left out and why) and ``errors``.
    """
    cfg = config or ReportConfig()
    t0 = time.perf_counter()
    run = load_run(**artifacts)
    html_out, markdown_out = Path(html_out), Path(markdown_out)
    with tempfile.TemporaryDirectory(prefix="naslid-report-") as tmp:
        figdir = Path(figures_dir) if figures_dir is not None else Path(tmp)
        doc = Document()
        ctx = SectionContext(run, doc, figdir, cfg, step_order)
        errors: list[str] = []
        sections = SECTIONS
        if progress:
            from tqdm import tqdm

            sections = tqdm(SECTIONS, desc="report", unit="section")
        for name, draw in sections:
            before = len(doc.blocks)
            try:
                draw(ctx)
            except Exception as exc:  # noqa: BLE001 - one broken section must not lose the report
                del doc.blocks[before:]
                doc.heading(2, f"{name[0].upper()}{name[1:]}", slug(name))
                doc.para(f"This section could not be drawn: {type(exc).__name__}: {exc}")
                errors.append(f"{name}: {type(exc).__name__}: {exc}")
        if ctx.absent:
            doc.heading(2, "Not in this run", "absent")
            doc.bullets(ctx.absent)
        title = next((b.text for b in doc.blocks if b.kind == "heading"), "naslid run report")

        def link(path: Path) -> str | None:
            if figures_dir is None:
                return None
            return Path(os.path.relpath(path, markdown_out.parent)).as_posix()

        md = doc.to_markdown(link)
        atomic_write_bytes(markdown_out, md.encode())
        atomic_write_bytes(html_out, doc.to_html(title).encode())
        figures = [p.name for p in doc.figures]
    if len(md) > MARKDOWN_LIMIT:
        errors.append(f"markdown: {len(md)} characters, the KFP UI shows {MARKDOWN_LIMIT}")
    present = [b.text for b in doc.blocks if b.kind == "heading" and b.level == 2]
    print(
        f"[naslid] report: {len(figures)} figures, {len(present)} sections in "
        f"{time.perf_counter() - t0:.1f}s -> {html_out}",
        flush=True,
    )
    return {
        "best_arch": run.best["arch"],
        "markdown": str(markdown_out),
        "html": str(html_out),
        "figures": figures,
        "sections": present,
        "absent": list(ctx.absent),
        "errors": errors,
    }
