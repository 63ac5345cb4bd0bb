"""The report as a document: headings, paragraphs, lists, tables and figures, rendered to
Markdown (figures linked) or to one self-contained HTML page (figures embedded)."""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class _Block:
    kind: str
    text: str = ""
    level: int = 0
    anchor: str = ""
    header: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)
    path: Path | None = None


class Document:
    """Headings, paragraphs, bullet lists, tables and figures, rendered to Markdown or HTML.

    Text uses two inline marks, the same in both outputs: ```code``` and ``**bold**``.
    """

    def __init__(self) -> None:
        self.blocks: list[_Block] = []

    def heading(self, level: int, text: str, anchor: str = "") -> None:
        self.blocks.append(_Block("heading", text, level, anchor))

    def para(self, text: str) -> None:
        self.blocks.append(_Block("para", text))

    def bullets(self, items: Sequence[str]) -> None:
        if items:
            self.blocks.append(_Block("bullets", rows=[[i] for i in items]))

    def table(self, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            self.blocks.append(
                _Block("table", header=list(header), rows=[[str(c) for c in r] for r in rows])
            )

    def figure(self, path: Path, caption: str) -> None:
        self.blocks.append(_Block("figure", caption, path=Path(path)))

    @property
    def figures(self) -> list[Path]:
        return [b.path for b in self.blocks if b.kind == "figure" and b.path is not None]

    # ----------------------------------------------------------------- markdown
    def to_markdown(self, link: Callable[[Path], str | None]) -> str:
        """Markdown; ``link(path)`` gives a figure's relative link, or None for no image."""
        out: list[str] = []
        for b in self.blocks:
            if b.kind == "heading":
                out += ["#" * b.level + " " + b.text, ""]
            elif b.kind == "para":
                out += [b.text, ""]
            elif b.kind == "bullets":
                out += [f"- {r[0]}" for r in b.rows] + [""]
            elif b.kind == "table":
                out.append("| " + " | ".join(_md_cell(h) for h in b.header) + " |")
                out.append("|" + "---|" * len(b.header))
                out += ["| " + " | ".join(_md_cell(c) for c in r) + " |" for r in b.rows]
                out.append("")
            elif b.kind == "figure":
                target = link(b.path)
                if target is None:
                    out += [f"*Figure (in the HTML report): {b.text}*", ""]
                else:
                    out += [f"![{_md_alt(b.path.stem)}]({target})", "", f"*{b.text}*", ""]
        return "\n".join(out).rstrip() + "\n"

    # ----------------------------------------------------------------- html
    def to_html(self, title: str) -> str:
        """One self-contained page: figures as base64 data URIs, links only to anchors."""
        body: list[str] = []
        toc = [
            f"<li><a href='#{b.anchor}'>{_inline_html(b.text)}</a></li>"
            for b in self.blocks
            if b.kind == "heading" and b.level == 2 and b.anchor
        ]
        for b in self.blocks:
            if b.kind == "heading":
                anchor = f" id='{b.anchor}'" if b.anchor else ""
                body.append(f"<h{b.level}{anchor}>{_inline_html(b.text)}</h{b.level}>")
                if b.level == 1 and toc:
                    body.append("<nav><ul>" + "".join(toc) + "</ul></nav>")
            elif b.kind == "para":
                body.append(f"<p>{_inline_html(b.text)}</p>")
            elif b.kind == "bullets":
                body.append(
                    "<ul>" + "".join(f"<li>{_inline_html(r[0])}</li>" for r in b.rows) + "</ul>"
                )
            elif b.kind == "table":
                head = "".join(f"<th>{_inline_html(h)}</th>" for h in b.header)
                rows = "".join(
                    "<tr>" + "".join(f"<td>{_inline_html(c)}</td>" for c in r) + "</tr>"
                    for r in b.rows
                )
                body.append(f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")
            elif b.kind == "figure":
                data = base64.b64encode(b.path.read_bytes()).decode("ascii")
                alt = html.escape(b.text, quote=True)
                body.append(
                    f"<figure><img alt='{alt}' src='data:image/png;base64,{data}'>"
                    f"<figcaption>{_inline_html(b.text)}</figcaption></figure>"
                )
        return (
            "<!doctype html>\n<html lang='en'><head><meta charset='utf-8'>"
            f"<title>{html.escape(title)}</title><style>{_CSS}</style></head>\n<body>\n"
            + "\n".join(body)
            + "\n</body></html>\n"
        )


_CSS = (
    "body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;"
    "color:#222;line-height:1.45}h1{border-bottom:2px solid #ddd}h2{border-bottom:1px solid #eee;"
    "margin-top:2em}table{border-collapse:collapse;margin:1em 0;font-size:.9em}"
    "td,th{border:1px solid #ccc;padding:.25em .6em;text-align:left}th{background:#f4f4f4}"
    "code{background:#f6f6f6;padding:0 .2em;font-size:.88em;word-break:break-all}"
    "figure{margin:1.2em 0}img{max-width:100%;height:auto;border:1px solid #eee}"
    "figcaption{color:#555;font-size:.9em}nav ul{columns:2}"
)


def _inline_html(text: str) -> str:
    out = html.escape(str(text), quote=False)
    out = re.sub(r"`([^`]+)`", r"<code>\1</code>", out)
    return re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", out)


def _md_cell(text: str) -> str:
    """A Markdown table cell: pipes escaped (NB201 arch strings are full of them)."""
    return str(text).replace("|", "\\|").replace("\n", " ")


def _md_alt(text: str) -> str:
    return re.sub(r"[\[\]`*]", "", text)
