"""The run report: what a NAS run did, in pictures and tables, as HTML and as Markdown.

:func:`build_report` reads the artifacts of one run (the directories the pipeline's steps
write, recognised by their ``meta.json``) and writes

- one self-contained HTML page: every figure embedded as a ``data:image/png;base64`` URI,
  so the page is a single file (a KFP ``HTML`` artifact) that references nothing else;
- the same content as Markdown (the KFP ``Markdown`` artifact). The KFP UI truncates
  Markdown beyond 400,000 characters, so figures are never embedded there: with
  ``figures_dir`` the PNG files are written there and the Markdown links them by relative
  path; without it the Markdown names each figure and points to the HTML page.

Sections, each present only when the run has what it needs:

1. Summary: data, supernet, best architecture (and its benchmark accuracy when a table is
   known), time per step, supernet training curves.
2. Partition tree (rounds >= 1): the drawn tree, the split decisions, partition score per edge.
3. LID profiles and similarity (rounds >= 1): per split edge, the LID of each candidate op
   against relative depth (NAS-LID Fig. 1) and the similarity heatmap with the balanced-cut groups.
4. Split criteria: separability per edge, side by side when several criteria profiled the
   same node (extra ``naslid.node_profile`` artifacts), with profiling time and memory.
5. Evolutionary search: population mean +- std and best so far per generation (NAS-LID
   Fig. 5), FLOPs vs score of every visited arch, the top architectures.
6. LISSNAS (shrinkage on): error EDFs with the KS statistic, FLOPs vs accuracy, shrink
   statistics and baselines.
7. Ranking (a benchmark table known): proxy score against table accuracy, Kendall / Spearman.
8. Transfer (transfer on): training curves, top-1 / top-5, parameters, FLOPs.
"""

from __future__ import annotations

import base64
import html
import math
import os
import re
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from naslid.artifacts import DATA, NODE_PROFILE, PARTITION, SEARCH, SPACE, TRANSFER, read_meta
from naslid.io import atomic_write_bytes, read_json

PathLike = str | os.PathLike

MARKDOWN_LIMIT = 400_000
"""Characters of Markdown the KFP UI renders (MarkdownViewer's MAX_MARKDOWN_STR_LENGTH)."""


@dataclass
class ReportConfig:
    """What the report shows."""

    top_k: int = 10
    """Rows of the top-architectures table."""
    max_split_views: int = 15
    """Split edges drawn at most (R = 4 rounds split 15 nodes)."""
    max_comparisons: int = 4
    """Nodes at most whose criteria are compared side by side."""
    ranking_subsets: tuple[int, ...] = (50, 100, 150)
    """Top-k subsets of the ranking correlation (naslid.evaluate)."""


# =========================================================================== the document
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


# =========================================================================== formatting
def _f(value: Any, digits: int = 2) -> str:
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


def _g(value: Any, digits: int = 3) -> str:
    if value is None:
        return "-"
    v = float(value)
    return "-" if not math.isfinite(v) else f"{v:.{digits}g}"


def _seconds(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return "-"
    if value < 120:
        return f"{value:.1f} s"
    if value < 7200:
        return f"{value / 60:.1f} min"
    return f"{value / 3600:.2f} h"


def _count(n: int) -> str:
    """An architecture count: ``15,625``; ``5.6e+17`` past a billion (mobile-space masks)."""
    return f"{n:,}" if n < 10**9 else f"{n:.2g}"


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")[:40] or "figure"


# =========================================================================== the run's facts
@dataclass
class RunArtifacts:
    """Everything the report reads from one run's artifacts."""

    data: dict
    supernet: dict
    partition: dict
    partition_dir: Path
    space_meta: dict
    space_dir: Path
    search_meta: dict
    search_dir: Path
    best: dict
    top: list[dict]
    history: Any  # pandas.DataFrame of the search (generation, arch, score, flops, params, origin)
    space: Any  # the SlotSpace
    tree: dict | None = None
    stats: dict | None = None
    transfer_meta: dict | None = None
    transfer_dir: Path | None = None
    profiles: list[tuple[dict, Any]] = field(default_factory=list)
    """(meta, NodeProfile) of extra naslid.node_profile artifacts, newest first."""
    table: Any = None
    table_spec: str | None = None
    table_note: str = ""


def _meta(directory: PathLike, kind: str, expected: dict | None = None) -> dict:
    # seals are verified; a bad tree costs its sections, not the whole report
    return read_meta(directory, kind, expected, cross_check=False)


def _history(search: Path):
    import pandas as pd

    if (search / "history.parquet").is_file():
        return pd.read_parquet(search / "history.parquet")
    if (search / "history.csv").is_file():
        return pd.read_csv(search / "history.csv")
    raise FileNotFoundError(f"{search}: no history.parquet or history.csv")


def table_spec_of(table: str | None, search_meta: dict, space_meta: dict) -> tuple[str | None, str]:
    """The benchmark table of a run and where it was named: ``table`` (an argument) first,
    then the search's oracle, then LISSNAS's labels when they were a table."""
    if table:
        return table, "given"
    evaluator = search_meta.get("evaluator") or {}
    for spec, where in (
        (search_meta.get("table"), "search"),
        (evaluator.get("oracle") if isinstance(evaluator, dict) else None, "search oracle"),
        (space_meta.get("labels"), "LISSNAS labels"),
    ):
        if isinstance(spec, str) and spec.startswith(("table:", "nb201api:")):
            return spec, where
    return None, ""


def load_run(
    *,
    data: PathLike,
    supernet: PathLike,
    partition: PathLike,
    space: PathLike,
    search: PathLike,
    transfer: PathLike | None = None,
    profiles: Sequence[PathLike] = (),
    table: str | None = None,
) -> RunArtifacts:
    """Read and check the artifacts (each by its ``meta.json`` kind)."""
    from naslid import spaces
    from naslid.split import NodeProfile

    dmeta = _meta(data, DATA)
    smeta0 = _meta(supernet, PARTITION, {"round": 0})
    pmeta = _meta(partition, PARTITION)
    space_meta = _meta(space, SPACE, {"space": pmeta["space"]})
    search_meta = _meta(search, SEARCH)
    sp = spaces.get(pmeta["space"]).SPACE
    run = RunArtifacts(
        data=dmeta,
        supernet=smeta0,
        partition=pmeta,
        partition_dir=Path(partition),
        space_meta=space_meta,
        space_dir=Path(space),
        search_meta=search_meta,
        search_dir=Path(search),
        best=read_json(Path(search) / "best.json"),
        top=read_json(Path(search) / "top.json"),
        history=_history(Path(search)),
        space=sp,
    )
    if int(pmeta.get("round", 0)) > 0 and (Path(partition) / "tree.json").is_file():
        run.tree = read_json(Path(partition) / "tree.json")
    if (Path(space) / "stats.json").is_file():
        run.stats = read_json(Path(space) / "stats.json")
    if transfer is not None:
        run.transfer_meta = _meta(transfer, TRANSFER)
        run.transfer_dir = Path(transfer)
    seen = set()
    for p in profiles:
        meta = _meta(p, NODE_PROFILE, {"space": sp.name})
        key = (meta.get("node"), meta.get("round"), meta.get("criterion"))
        if key in seen:  # a re-run of the same profile: keep the first (newest) given
            continue
        seen.add(key)
        run.profiles.append((meta, NodeProfile.load(Path(p) / "profile.json", sp)))
    spec, where = table_spec_of(table, search_meta, space_meta)
    if spec:
        from naslid.benchmarks import load_table

        try:
            run.table = load_table(spec)
            run.table_spec = spec
            run.table_note = f"table `{spec}` ({where})"
        except (FileNotFoundError, ValueError, ImportError) as exc:
            run.table_note = f"the table named by the {where} cannot be read here: {exc}"
    return run


# =========================================================================== derived numbers
def slot_label(space_name: str, slot: int) -> str:
    """``e3 (0→3)`` for an NB201 edge, ``layer 7`` for a mobile-space layer."""
    from naslid import spaces

    edges = getattr(spaces.get(space_name), "EDGES", None)
    if edges and space_name == "nb201":
        to, src = edges[slot]
        return f"e{slot} ({src}→{to})"
    return f"layer {slot}"


def generation_stats(history) -> list[dict]:
    """Per generation of a search history: count, mean, std (population), max, best so far."""
    rows, best = [], -math.inf
    for gen, group in history.groupby("generation", sort=True):
        scores = group["score"].astype(float)
        best = max(best, float(scores.max()))
        rows.append(
            {
                "generation": int(gen),
                "count": int(len(scores)),
                "mean": float(scores.mean()),
                "std": float(scores.std(ddof=0)),
                "max": float(scores.max()),
                "best_so_far": best,
            }
        )
    return rows


def leaf_of(run: RunArtifacts, arch_str: str) -> str | None:
    """The sub-supernet (leaf id) whose mask holds ``arch_str``."""
    arch = run.space.from_str(arch_str)
    for node, mask in sorted(run.partition["leaves"].items()):
        if run.space.contains(run.space.mask_from_json(mask), arch):
            return node
    return None


def step_timings(run: RunArtifacts) -> list[dict]:
    """Time (and peak memory) per step, from what the artifacts record.

    Read: a ``seconds`` / ``peak_memory_MB`` field of each artifact's ``meta.json``; a
    ``timings`` list in any of them (``{"step", "node"?, "round"?, "criterion"?, "seconds",
    "peak_memory_MB"?}``); the ``seconds`` of node-profile artifacts; failing those, the sum of
    the per-epoch ``seconds`` of the training histories (pretraining, the last round's
    fine-tuning), marked "epochs only".
    """
    rows: list[dict] = []
    keys: set = set()

    def add(step: str, detail: str, seconds: Any, memory: Any = None, source: str = "") -> None:
        key = (step, detail)
        if key in keys or seconds is None:
            return
        keys.add(key)
        rows.append(
            {
                "step": step,
                "detail": detail,
                "seconds": float(seconds),
                "peak_memory_MB": None if memory is None else float(memory),
                "source": source,
            }
        )

    metas = [
        ("prepare-data", run.data),
        ("pretrain-supernet", run.supernet),
        (
            "gather-subsupernets" if int(run.partition.get("round", 0)) else "pretrain-supernet",
            run.partition,
        ),
        ("lissnas-shrink", run.space_meta),
        ("evolutionary-search", run.search_meta),
        ("imagenet-transfer", run.transfer_meta or {}),
    ]
    for step, meta in metas:
        for t in meta.get("timings") or []:
            detail = ", ".join(
                str(x)
                for x in (
                    t.get("node"),
                    t.get("criterion"),
                    f"round {t['round']}" if t.get("round") is not None else None,
                )
                if x is not None
            )
            add(t.get("step", step), detail, t.get("seconds"), t.get("peak_memory_MB"), "timings")
        if meta.get("seconds") is not None:
            add(step, "", meta["seconds"], meta.get("peak_memory_MB"), "meta.json")
    for meta, _ in run.profiles:
        add(
            "profile-lid",
            f"{meta.get('node')}, {meta.get('criterion')}, round {meta.get('round')}",
            meta.get("seconds"),
            meta.get("peak_memory_MB"),
            "meta.json",
        )
    if not any(r["step"] == "pretrain-supernet" for r in rows):
        hist = run.supernet.get("history") or []
        if hist and all("seconds" in h for h in hist):
            add(
                "pretrain-supernet", "epochs only", sum(h["seconds"] for h in hist), None, "history"
            )
    if int(run.partition.get("round", 0)) > 0 and not any(
        r["step"] == "finetune-subsupernet" for r in rows
    ):
        for node in sorted(run.partition["leaves"]):
            path = run.partition_dir / "leaves" / node / "meta.json"
            if not path.is_file():
                continue
            hist = read_json(path).get("history") or []
            if hist and all("seconds" in h for h in hist):
                add(
                    "finetune-subsupernet",
                    f"{node}, round {run.partition['round']}, epochs only",
                    sum(h["seconds"] for h in hist),
                    None,
                    "history",
                )
    order = {s: i for i, s in enumerate(STEP_ORDER)}
    return sorted(rows, key=lambda r: (order.get(r["step"], len(order)), r["detail"]))


STEP_ORDER = (
    "validate-params",
    "prepare-data",
    "pretrain-supernet",
    "profile-lid",
    "split-round",
    "finetune-subsupernet",
    "gather-subsupernets",
    "lissnas-shrink",
    "evolutionary-search",
    "imagenet-transfer",
    "report",
)
"""The pipeline's steps in DAG order (the order of the time table)."""


# =========================================================================== sections
class _Ctx:
    """What a section needs: the run, the document, where figures go, the config."""

    def __init__(self, run: RunArtifacts, doc: Document, figdir: Path, cfg: ReportConfig):
        self.run, self.doc, self.figdir, self.cfg = run, doc, figdir, cfg
        self.absent: list[str] = []

    def fig_path(self, name: str) -> Path:
        return self.figdir / f"{len(self.doc.figures) + 1:02d}_{_slug(name)}.png"


def _best_accuracy(run: RunArtifacts) -> tuple[float | None, int | None]:
    """The benchmark accuracy of the best arch and its rank in the table (1 = best)."""
    if run.table is None or run.best["arch"] not in run.table:
        return None, None
    acc = run.table[run.best["arch"]]
    rank = 1 + sum(1 for v in run.table.accuracy.values() if v > acc)
    return acc, rank


def _section_summary(ctx: _Ctx) -> None:
    run, doc = ctx.run, ctx.doc
    d, sn, b = run.data, run.supernet.get("supernet", {}), run.best
    rounds = int(run.partition.get("round", 0))
    title = f"naslid run report: {d.get('dataset')}, {run.space.name}"
    doc.heading(1, title)
    hist = run.supernet.get("history") or [{}]
    items = [
        f"data set **{d.get('dataset')}**: train {d.get('sizes', {}).get('train')}, "
        f"valid ({d.get('valid_split', 'valid')}) {d.get('sizes', {}).get('valid')}, "
        f"{d.get('num_classes')} classes, {'x'.join(map(str, d.get('image_size', [])))} px",
        f"supernet: {sn.get('space', run.space.name)}"
        + (f" C={sn['C']} N={sn['N']}" if "C" in sn else "")
        + f", pretrained {len(run.supernet.get('history') or [])} epoch(s), last train loss "
        f"{_f(hist[-1].get('loss'), 3)}, accuracy {_f(hist[-1].get('accuracy'))}%",
        (
            f"splitting: {rounds} round(s) by {run.partition.get('criterion')}, "
            f"{len(run.partition['leaves'])} sub-supernet(s)"
            if rounds
            else "splitting: none (rounds=0, plain one-shot NAS: one supernet)"
        ),
        (
            f"space shrinkage (LISSNAS): {run.stats.get('size')} of "
            f"{run.stats.get('original_size')} architectures kept"
            if run.space_meta.get("shrink") and run.stats
            else "space shrinkage: Shrinkage off, the search ran in the whole space"
        ),
        f"evolutionary search: {len(run.history)} architectures scored in "
        f"{run.history['generation'].nunique()} generation(s)",
        "transfer: "
        + (
            f"{run.transfer_meta.get('dataset', 'ImageNet-format data')}"
            if run.transfer_meta
            else "off"
        ),
    ]
    if run.table_note:
        items.append(f"benchmark: {run.table_note}")
    items.append(f"best architecture: `{b['arch']}`, proxy score {_f(b.get('score'))}")
    doc.bullets(items)

    doc.heading(2, "Best architecture", "best")
    acc, rank = _best_accuracy(run)
    rows = [
        ["architecture", f"`{b['arch']}`"],
        ["proxy score (inherited-weight accuracy, %)", _f(b.get("score"))],
        ["sub-supernet", b.get("node") or "-"],
        ["FLOPs (M)", _f(b.get("flops_M"), 1)],
        ["parameters (M)", _f(b.get("params_M"), 3)],
    ]
    if run.table is not None:
        column = getattr(run.table, "column", "accuracy")
        rows.append(
            [
                f"benchmark accuracy ({column}, %)",
                f"{_f(acc)} (rank {rank} of {len(run.table)}, table best "
                f"{_f(max(run.table.accuracy.values()))})"
                if acc is not None
                else "not in the table",
            ]
        )
    else:
        rows.append(["benchmark accuracy", "no benchmark table known"])
    if run.transfer_dir is not None and (run.transfer_dir / "arch.json").is_file():
        t = read_json(run.transfer_dir / "arch.json")
        rows.append(["transfer top-1 / top-5 (%)", f"{_f(t.get('top1'))} / {_f(t.get('top5'))}"])
    doc.table(["property", "value"], rows)

    doc.heading(2, "Time per step", "time")
    timings = step_timings(run)
    if timings:
        doc.table(
            ["step", "detail", "time", "peak memory (MB)", "from"],
            [
                [
                    t["step"],
                    t["detail"] or "-",
                    _seconds(t["seconds"]),
                    _f(t["peak_memory_MB"], 0),
                    t["source"],
                ]
                for t in timings
            ],
        )
    missing = [
        step
        for step, meta in (
            ("prepare-data", run.data),
            ("lissnas-shrink", run.space_meta),
            ("evolutionary-search", run.search_meta),
            ("imagenet-transfer", run.transfer_meta),
        )
        if meta is not None and meta.get("seconds") is None
    ]
    if missing:
        doc.para(
            "Not recorded by the artifacts: the duration of " + ", ".join(missing) + "; the "
            "times marked 'epochs only' sum the training epochs and leave out data loading "
            "and evaluation."
        )

    curves = {"pretrain": run.supernet.get("history") or []}
    if rounds:
        for node in sorted(run.partition["leaves"]):
            path = run.partition_dir / "leaves" / node / "meta.json"
            if path.is_file():
                curves[f"fine-tune {node}"] = read_json(path).get("history") or []
    if any(curves.values()):
        from naslid import plots

        path = plots.training_curves(
            curves,
            ctx.fig_path("supernet training"),
            title="Supernet training (single-path sampling): pretraining"
            + (
                " and the last round's fine-tuning, epochs counted within each step"
                if rounds
                else ""
            ),
        )
        doc.figure(
            path,
            "Supernet training: train loss and train accuracy of sampled paths per epoch, for "
            "the pretraining"
            + (" and each sub-supernet's fine-tuning of the last round." if rounds else "."),
        )


def _tree_nodes(run: RunArtifacts) -> dict[str, dict]:
    return dict(run.tree["nodes"]) if run.tree else {}


def _section_tree(ctx: _Ctx) -> None:
    from naslid import plots

    run, doc = ctx.run, ctx.doc
    if not run.tree:
        ctx.absent.append("partition tree (rounds=0)")
        return
    nodes = _tree_nodes(run)
    sp = run.space
    hist = run.history
    leaf_scores: dict[str, list[float]] = {}
    for arch, score in zip(hist["arch"], hist["score"]):
        node = leaf_of(run, str(arch)) if run.partition.get("leaves") else None
        if node is not None:
            leaf_scores.setdefault(node, []).append(float(score))
    drawn = []
    for nid, n in sorted(nodes.items()):
        size = sp.mask_size(sp.mask_from_json(n["mask"]))
        lines = [f"{nid} · {_count(size)} archs"]
        if n.get("split_edge") is not None:
            e = int(n["split_edge"])
            lines += [f"split {slot_label(sp.name, e)}", f"score {_g(n['scores'].get(str(e)))}"]
        elif nid in leaf_scores:
            s = leaf_scores[nid]
            lines.append(f"searched {len(s)}, best {max(s):.2f}")
        else:
            lines.append("not searched")
        label = None
        parent = n.get("parent")
        if parent is not None:
            p = nodes[parent]
            g = p["groups"][int(nid[-1])] if p.get("groups") else []
            ops = [plots.short_op(o) for o in g]
            label = "\n".join(",".join(ops[i : i + 2]) for i in range(0, len(ops), 2))
        drawn.append(
            {
                "id": nid,
                "parent": parent,
                "lines": lines,
                "edge_label": label,
                "highlight": nid == run.best.get("node"),
            }
        )
    doc.heading(2, "Partition tree", "tree")
    doc.para(
        f"Each round splits every sub-supernet on one edge that no earlier split touched: the "
        f"candidate operations of each such edge are cut into two balanced groups (both at least "
        f"half the operations) keeping the most similarity inside ({run.tree.get('criterion')} "
        f"criterion; NAS-LID Eq. 6), and the edge whose cut scores best is chosen (LID: the "
        f"highest ratio of similarity inside to across the groups; gradient: GM-NAS's largest "
        f"cross-group distance). Child `x0` keeps the group with the edge's first operation."
    )
    path = plots.partition_tree(
        drawn,
        ctx.fig_path("partition tree"),
        title=f"Partition tree: {len(run.tree['leaves'])} sub-supernets after "
        f"{run.partition['round']} round(s); highlighted: the best arch's sub-supernet",
    )
    doc.figure(
        path,
        "Partition tree: each box gives the node, its number of architectures and, for a split "
        "node, the edge split and its partition score; each line is labelled with the "
        "operations the child keeps on that edge; leaves give the searched archs and best proxy "
        "score.",
    )
    rows, scores, chosen = [], {}, {}
    for nid, n in sorted(nodes.items(), key=lambda kv: (len(kv[0]), kv[0])):
        if n.get("split_edge") is None:
            continue
        e = str(n["split_edge"])
        groups = n.get("groups") or [[], []]
        rows.append(
            [
                nid,
                _count(sp.mask_size(sp.mask_from_json(n["mask"]))),
                slot_label(sp.name, int(e)),
                ", ".join(groups[0]),
                ", ".join(groups[1]),
                _g(n["scores"].get(e)),
                _g(n["separability"].get(e)),
            ]
        )
        scores[f"node {nid}"] = {slot_label(sp.name, int(k)): v for k, v in n["scores"].items()}
        chosen[f"node {nid}"] = slot_label(sp.name, int(e))
    doc.table(
        [
            "node",
            "archs",
            "edge split",
            "group A (child x0)",
            "group B (child x1)",
            "edge score",
            "separability",
        ],
        rows,
    )
    if scores:
        path = plots.edge_scores(
            scores,
            ctx.fig_path("partition scores"),
            chosen=chosen,
            ylabel="edge score (criterion's rule over the Eq. 6 cut)",
            title="Edge score of every candidate edge, per split node (hatched: chosen)",
        )
        doc.figure(
            path,
            "Edge score of every never-partitioned edge of each split node (LID: mean "
            "similarity inside the two balanced groups over the mean across them; gradient: "
            "cross-group gradient distance); the hatched bar is the edge the node was split on "
            "(n/a: the edge was partitioned by an ancestor, or holds a single operation).",
        )


def _section_lid(ctx: _Ctx) -> None:
    from naslid import plots

    run, doc = ctx.run, ctx.doc
    nodes = [
        (nid, n)
        for nid, n in sorted(_tree_nodes(run).items(), key=lambda kv: (len(kv[0]), kv[0]))
        if n.get("split_edge") is not None and n.get("similarity")
    ]
    if not nodes:
        return
    criterion = run.tree.get("criterion")
    doc.heading(
        2, "LID profiles and similarity" if criterion == "lid" else "Similarity per split", "lid"
    )
    if criterion == "lid":
        doc.para(
            "For the edge each node was split on: the local intrinsic dimension (LID) of every "
            "layer's output when only that operation is enabled on the edge, against relative "
            "depth (NAS-LID Fig. 1), profiled with BatchNorm on batch statistics, and the "
            "similarity of the operations' LID vectors (Eq. 5, eps scaled to the LIDs) with the "
            "balanced Eq. 6 cut (both groups >= half the operations): operations are reordered "
            "by group, the red line separates group A (blue names) from group B (orange names). "
            "Each node splits on a never-partitioned edge, the one whose cut keeps the most "
            "similarity inside the groups relative to across them."
        )
    else:
        doc.para(
            f"Similarity of the split edge's operations by the {criterion} criterion, with the "
            "balanced cut's groups (red line; group A blue, group B orange)."
        )
    for nid, n in nodes[: ctx.cfg.max_split_views]:
        e = str(n["split_edge"])
        lid = (n.get("lid") or {}).get(e)
        edge = slot_label(run.space.name, int(e))
        path = plots.split_view(
            n["ops"][e],
            n["similarity"][e],
            ctx.fig_path(f"split {nid}"),
            lid=lid,
            groups=n.get("groups"),
            title=f"node {nid}: split on edge {edge}, edge score {_g(n['scores'].get(e))}",
        )
        doc.figure(
            path,
            f"Node {nid}, edge {edge}: "
            + ("LID against relative depth (left) and " if lid is not None else "")
            + f"similarity heatmap with the balanced-cut groups "
            f"{{{', '.join(n['groups'][0])}}} | {{{', '.join(n['groups'][1])}}}.",
        )
    if len(nodes) > ctx.cfg.max_split_views:
        doc.para(f"{len(nodes) - ctx.cfg.max_split_views} more split nodes are not drawn.")


def _criterion_results(run: RunArtifacts) -> dict[tuple[str, int], dict[str, dict]]:
    """(node, round) -> criterion -> separability / scores per edge label, chosen edge, time."""
    from naslid.split import CRITERIA, decide_split

    sp = run.space
    out: dict[tuple[str, int], dict[str, dict]] = {}
    seconds = {
        (m.get("node"), int(m.get("round", 0)), m.get("criterion")): (
            m.get("seconds"),
            m.get("peak_memory_MB"),
        )
        for m, _ in run.profiles
    }
    for nid, n in _tree_nodes(run).items():
        if n.get("split_edge") is None:
            continue
        crit = (n.get("measure") or {}).get("criterion") or run.tree.get("criterion")
        key = (nid, int(n["depth"]) + 1)
        sec, mem = seconds.get((nid, key[1], crit), (None, None))
        out.setdefault(key, {})[crit] = {
            "separability": {slot_label(sp.name, int(k)): v for k, v in n["separability"].items()},
            "chosen": slot_label(sp.name, int(n["split_edge"])),
            "seconds": sec,
            "memory": mem,
        }
    for meta, prof in run.profiles:
        key = (str(meta.get("node")), int(meta.get("round", 0)))
        crit = meta.get("criterion") or prof.criterion
        if crit in out.get(key, {}):
            continue
        decision = decide_split(prof)
        if decision is None:
            continue
        out.setdefault(key, {})[crit] = {
            "separability": {
                slot_label(sp.name, e): v for e, v in sorted(decision.separability.items())
            },
            "chosen": slot_label(sp.name, decision.edge),
            "seconds": meta.get("seconds"),
            "memory": meta.get("peak_memory_MB"),
        }
    rank = {c: i for i, c in enumerate(CRITERIA)}
    return {
        key: dict(sorted(v.items(), key=lambda kv: (rank.get(kv[0], len(rank)), kv[0])))
        for key, v in out.items()
    }


def _section_criteria(ctx: _Ctx) -> None:
    from naslid import plots

    run, doc = ctx.run, ctx.doc
    results = _criterion_results(run)
    if not results:
        ctx.absent.append("split criteria (nothing was profiled)")
        return
    compared = {k: v for k, v in results.items() if len(v) > 1}
    doc.heading(2, "Split criteria", "criteria")
    doc.para(
        "Separability of an edge: the spread of its operations' pairwise similarities relative "
        "to their mean (`naslid.split.normalised_dispersion`); a high value means the "
        "operations fall into distinct groups."
    )
    rows = []
    for (node, rnd), by_crit in sorted(results.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        for crit, r in by_crit.items():
            rows.append(
                [
                    node,
                    rnd,
                    crit,
                    r["chosen"],
                    _g(r["separability"].get(r["chosen"])),
                    _seconds(r["seconds"]),
                    _f(r["memory"], 0),
                ]
            )
    if any("random" in v for v in compared.values()):
        doc.para(
            "The random criterion cuts each edge by a random balanced bipartition (similarity 1 "
            "inside a group, 0 across), so its separability is the same on every edge and "
            "carries no information: it is the baseline."
        )
    if compared:
        for (node, rnd), by_crit in sorted(compared.items(), key=lambda kv: (kv[0][1], kv[0][0]))[
            : ctx.cfg.max_comparisons
        ]:
            sec = {c: r["seconds"] for c, r in by_crit.items() if r["seconds"] is not None}
            mem = {c: r["memory"] for c, r in by_crit.items() if r["memory"] is not None}
            path = plots.criteria_comparison(
                {c: r["separability"] for c, r in by_crit.items()},
                ctx.fig_path(f"criteria {node}"),
                chosen={c: r["chosen"] for c, r in by_crit.items()},
                seconds=sec or None,
                memory_mb=mem or None,
                title=f"node {node} (round {rnd}): {', '.join(by_crit)} side by side",
            )
            doc.figure(
                path,
                f"Node {node}, round {rnd}: separability per edge by criterion (hatched: the "
                "edge each criterion would split)"
                + (", profiling time" if sec else "")
                + (" and peak memory" if mem else "")
                + ".",
            )
    else:
        only = sorted({c for v in results.values() for c in v})
        doc.para(
            f"Only {', '.join(only)} profiled this run, so there is nothing to compare; "
            "profile the same node with another criterion (`naslid step profile-lid "
            "--criterion gradient`) to see them side by side. Per split node:"
        )
        sep = {
            f"node {node}": next(iter(v.values()))["separability"]
            for (node, _), v in sorted(results.items(), key=lambda kv: (kv[0][1], kv[0][0]))
        }
        chosen = {
            f"node {node}": next(iter(v.values()))["chosen"]
            for (node, _), v in sorted(results.items(), key=lambda kv: (kv[0][1], kv[0][0]))
        }
        path = plots.edge_scores(
            sep,
            ctx.fig_path("separability"),
            chosen=chosen,
            ylabel="separability",
            title=f"Separability per edge ({', '.join(only)}), per split node (hatched: chosen)",
        )
        doc.figure(path, "Separability of every candidate edge per split node.")
    doc.table(
        [
            "node",
            "round",
            "criterion",
            "edge (would) split",
            "its separability",
            "profiling time",
            "peak memory (MB)",
        ],
        rows,
    )
    if not any(r["memory"] is not None for v in results.values() for r in v.values()):
        doc.para(
            "Peak memory of profiling is not recorded (a `peak_memory_MB` field in the "
            "node-profile meta.json would show it)."
        )


def _section_search(ctx: _Ctx) -> None:
    from naslid import plots

    run, doc = ctx.run, ctx.doc
    h = run.history
    doc.heading(2, "Evolutionary search", "search")
    cfg = run.search_meta.get("config") or {}
    doc.para(
        f"{len(h)} distinct architectures scored by the inherited weights of their "
        f"sub-supernet (proxy accuracy, %), population {cfg.get('population', '-')}, "
        f"{h['generation'].nunique()} generation(s)"
        + (", inside the LISSNAS-shrunk space." if run.search_meta.get("shrink") else ".")
    )
    path = plots.evolution_progress(
        h["generation"].to_numpy(),
        h["score"].to_numpy(),
        ctx.fig_path("evolution"),
        title="Score of each generation: population mean ± std and best so far",
        ylabel="proxy accuracy (%)",
    )
    doc.figure(
        path,
        "Evolution: each generation's scored archs (grey), their mean ± standard deviation "
        "(NAS-LID Fig. 5) and the best score found so far.",
    )
    best_idx = int(h["score"].to_numpy().argmax())
    path = plots.flops_vs_score(
        h["flops"].to_numpy(),
        h["score"].to_numpy(),
        ctx.fig_path("flops vs score"),
        generation=h["generation"].to_numpy(),
        best=best_idx,
        ylabel="proxy accuracy (%)",
    )
    doc.figure(path, "FLOPs against proxy score of every visited architecture, by generation.")
    gens = generation_stats(h)
    doc.table(
        ["generation", "archs", "mean", "std", "max", "best so far"],
        [
            [g["generation"], g["count"], _f(g["mean"]), _f(g["std"]), _f(g["max"])]
            + [_f(g["best_so_far"])]
            for g in gens
        ],
    )
    score_of = dict(zip(h["arch"].astype(str), h["score"].astype(float)))
    info = {
        str(a): (f, p, o) for a, f, p, o in zip(h["arch"], h["flops"], h["params"], h["origin"])
    }
    header = ["rank", "architecture", "proxy", "FLOPs (M)", "params (M)", "sub-supernet", "origin"]
    if run.table is not None:
        header.append("benchmark")
    rows = []
    for i, t in enumerate(run.top[: ctx.cfg.top_k]):
        f, p, o = info.get(t["arch"], (None, None, "-"))
        row = [i + 1, f"`{t['arch']}`", _f(score_of.get(t["arch"], t["score"]))]
        row += [_f(f, 1), _f(p, 3), leaf_of(run, t["arch"]) or "-", o]
        if run.table is not None:
            row.append(_f(run.table.accuracy.get(t["arch"])))
        rows.append(row)
    doc.heading(3, f"Top {len(rows)} architectures")
    doc.table(header, rows)


def _section_lissnas(ctx: _Ctx) -> None:
    from naslid import plots

    run, doc = ctx.run, ctx.doc
    if not run.space_meta.get("shrink") or not run.stats:
        ctx.absent.append("LISSNAS (shrinkage off)")
        return
    s = run.stats
    doc.heading(2, "LISSNAS space shrinkage", "lissnas")
    cells = f" ({s['size_cells']} of {s['original_cells']} cells)" if "size_cells" in s else ""
    sis = s.get("shrink_indices") or {}
    si_text = ", ".join(f"{k.replace('_', ' ')} {_f(v['shrink_index'], 3)}" for k, v in sis.items())
    doc.para(
        f"Kept **{s['size']}** of {s['original_size']} architectures{cells} "
        f"(isomorphism {s.get('isomorphism', '-')}; accuracy source: "
        f"{s.get('accuracy_source', run.space_meta.get('accuracy_source'))}, "
        f"labels {run.space_meta.get('labels', '-')}): mean accuracy "
        f"{_f(s['mean_accuracy'])} (original {_f(s.get('original_mean_accuracy'))}), max "
        f"{_f(s['max_accuracy'])} (original {_f(s.get('original_max_accuracy'))}, regret "
        f"{_f(s.get('regret'))}), shrink index {_f(s['shrink_index'], 3)}"
        + (
            f" (n = {s.get('shrink_n')}, k = {s.get('shrink_k')}; by threshold: {si_text})"
            if sis
            else ""
        )
        + f", one-sided KS against the complement {_f(s['ks_statistic'], 3)} "
        f"(p = {_g(s['ks_pvalue'], 2)}), EDF area {_f(s.get('edf_area'), 3)}, FLOPs coverage "
        f"{_f(s['flops_coverage'])} ({s.get('cost_dataset', 'cifar10')} cost model), diversity "
        f"{_f(s.get('diversity_edit_distance'))} edits (mean pairwise), predictor Kendall tau "
        f"{_f(s.get('predictor_kendall_tau'), 3)} on {s.get('predictor_holdout', '-')} held-out archs, "
        f"{s.get('queries', '-')} labels queried ({s.get('uniform_labels', '-')} uniform, "
        f"{s.get('refit_labels', '-')} for refits), {s.get('predictor_queries', '-')} predictor "
        f"queries, {s.get('iterations', '-')} iterations kept."
    )
    edf = run.space_dir / "edf.png"
    if edf.is_file():
        path = ctx.fig_path("lissnas edf")
        atomic_write_bytes(path, edf.read_bytes())
    elif isinstance(s.get("edf"), dict):
        path = plots.edf_curves(
            s["edf"]["error"],
            {"original": s["edf"]["original"], "LISSNAS": s["edf"]["shrunk"]},
            ctx.fig_path("lissnas edf"),
            title=f"Error EDF, KS {_f(s['ks_statistic'], 3)} (p = {_g(s['ks_pvalue'], 2)})",
        )
    else:
        path = None
    if path is not None:
        doc.figure(
            path,
            "Error EDF (fraction of architectures with error at most x) of the original space, "
            "the LISSNAS space and the baselines; the legend's KS is the descriptive two-sample "
            "statistic against the original (the table's test is against the complement).",
        )
    fa = run.space_dir / "flops_accuracy.png"
    if fa.is_file():
        path = ctx.fig_path("lissnas flops")
        atomic_write_bytes(path, fa.read_bytes())
        doc.figure(path, "FLOPs against accuracy of the original and the LISSNAS space.")
    elif (run.space_dir / "space.csv").is_file():
        import pandas as pd

        frame = pd.read_csv(run.space_dir / "space.csv")
        full = [c for c in ("table_accuracy", "known_accuracy") if c in frame]
        col = next((c for c in full if frame[c].notna().all()), "predicted_accuracy")
        path = plots.flops_vs_accuracy(
            {"LISSNAS": (frame["flops_M"], frame[col])},
            ctx.fig_path("lissnas flops"),
            title=f"FLOPs vs {col.replace('_', ' ')} of the LISSNAS space",
        )
        doc.figure(
            path, "FLOPs against accuracy of the LISSNAS space (the original's is not stored)."
        )
    rows = [["LISSNAS", s]] + [[k, v] for k, v in (s.get("baselines") or {}).items()]

    def si(v: dict, key: str) -> str:
        return _f((v.get("shrink_indices") or {}).get(key, {}).get("shrink_index"), 3)

    doc.table(
        [
            "space",
            "size",
            "cells",
            "mean acc.",
            "max acc.",
            "regret",
            "SI top 1%",
            "SI top 5%",
            "SI top 10%",
            "KS (vs complement)",
            "KS p",
            "EDF area",
            "edit div.",
            "FLOPs cov.",
            "labels",
            "predictor queries",
        ],  # fmt: skip
        [
            [
                name,
                v.get("size"),
                v.get("size_cells", "-"),
                _f(v.get("mean_accuracy")),
                _f(v.get("max_accuracy")),
                _f(v.get("regret")),
                si(v, "top_1%"),
                si(v, "top_5%"),
                si(v, "top_10%"),
                _f(v.get("ks_statistic"), 3),
                _g(v.get("ks_pvalue"), 2),
                _f(v.get("edf_area"), 3),
                _f(v.get("diversity_edit_distance")),
                _f(v.get("flops_coverage")),
                v.get("queries", "-"),
                v.get("predictor_queries", "-"),
            ]
            for name, v in rows
        ],
    )
    if s.get("history"):
        doc.table(
            ["iteration", "size", "mean predicted accuracy", "after refit", "labels added", "rose"],
            [
                [
                    h["iteration"],
                    h["size"],
                    _f(h["mean_accuracy"]),
                    _f(h.get("mean_accuracy_refit")),
                    h.get("labelled", "-"),
                    "yes" if h["rose"] else "no",
                ]
                for h in s["history"]
            ],
        )


def _section_ranking(ctx: _Ctx) -> None:
    from naslid import plots
    from naslid.evaluate import rank_correlation

    run, doc = ctx.run, ctx.doc
    if run.table is None:
        ctx.absent.append(
            "ranking (" + (run.table_note or "no benchmark table known; pass --table") + ")"
        )
        return
    proxy = dict(zip(run.history["arch"].astype(str), run.history["score"].astype(float)))
    common = [a for a in proxy if a in run.table]
    doc.heading(2, "Ranking against the benchmark", "ranking")
    if not common:
        doc.para(f"None of the {len(proxy)} scored architectures is in {run.table_note}.")
        return
    # top-k subsets as large as all the scored archs repeat the "all" row: left out
    subsets = [k for k in ctx.cfg.ranking_subsets if k < len(common)]
    corr = rank_correlation(proxy, run.table, subsets)
    doc.para(
        f"Proxy score of every architecture the search scored against its accuracy in "
        f"{run.table_note}; the top-k subsets are the k most accurate of the scored archs "
        "(`naslid.evaluate`)."
    )
    x = [proxy[a] for a in common]
    y = run.table.lookup(common).tolist()
    best = max(range(len(common)), key=lambda i: (x[i], -i))
    path = plots.ranking_scatter(
        x,
        y,
        ctx.fig_path("ranking"),
        kendall_tau=corr["all"]["kendall_tau"],
        spearman_rho=corr["all"]["spearman_rho"],
        best=best,
        xlabel="proxy accuracy (%)",
        ylabel=f"benchmark accuracy, {run.table.column} (%)",
    )
    doc.figure(path, "Proxy score against benchmark accuracy of every scored architecture.")
    doc.table(
        ["subset", "n", "Kendall tau", "Spearman rho"],
        [
            [
                name,
                c["n"],
                _f(c["kendall_tau"], 3) if c["kendall_tau"] is not None else "undefined",
                _f(c["spearman_rho"], 3) if c["spearman_rho"] is not None else "undefined",
            ]
            for name, c in corr.items()
        ],
    )


def _section_transfer(ctx: _Ctx) -> None:
    from naslid import plots

    run, doc = ctx.run, ctx.doc
    if run.transfer_dir is None:
        ctx.absent.append("transfer (off)")
        return
    t = read_json(run.transfer_dir / "arch.json")
    doc.heading(2, "Transfer", "transfer")
    init = t.get("init") or {}
    doc.para(
        f"The best architecture `{t.get('arch', run.best['arch'])}` trained on "
        f"{run.transfer_meta.get('dataset', 'ImageNet-format data')}, "
        + (
            f"initialised from the supernet `{init['supernet']}`."
            if init.get("supernet")
            else "from scratch."
        )
    )
    doc.table(
        ["top-1 (%)", "top-5 (%)", "params (M)", "FLOPs (M)", "image size", "epochs", "width"],
        [
            [
                _f(t.get("top1")),
                _f(t.get("top5")),
                _f(t.get("params_M"), 3),
                _f(t.get("flops_M"), 2),
                t.get("image_size", "-"),
                t.get("epochs", "-"),
                t.get("width_mult", "-"),
            ]
        ],
    )
    hist_path = run.transfer_dir / "history.json"
    if hist_path.is_file():
        hist = read_json(hist_path)
        path = plots.training_curves(
            {"": hist},
            ctx.fig_path("transfer"),
            loss_keys=("train_loss", "loss"),
            accuracy_keys=("top1", "top5"),
            key_labels={"loss": "validation loss"},
            title="Transfer training: train loss, validation loss, top-1 and top-5 per epoch",
        )
        doc.figure(
            path, "Transfer: loss (train, validation) and validation top-1 / top-5 per epoch."
        )


SECTIONS: tuple[tuple[str, Callable[[_Ctx], None]], ...] = (
    ("summary", _section_summary),
    ("partition tree", _section_tree),
    ("LID profiles", _section_lid),
    ("split criteria", _section_criteria),
    ("evolutionary search", _section_search),
    ("LISSNAS", _section_lissnas),
    ("ranking", _section_ranking),
    ("transfer", _section_transfer),
)


# =========================================================================== entry point
def build_report(
    html_out: PathLike,
    markdown_out: PathLike,
    *,
    data: PathLike,
    supernet: PathLike,
    partition: PathLike,
    space: PathLike,
    search: PathLike,
    transfer: PathLike | None = None,
    profiles: Sequence[PathLike] = (),
    table: str | None = None,
    figures_dir: PathLike | None = None,
    config: ReportConfig | None = None,
    progress: bool = False,
) -> dict:
    """Write the run's report as one self-contained HTML page and as Markdown.

    ``profiles``: extra ``naslid.node_profile`` artifacts (other criteria, timings);
    ``table``: a benchmark table ``table:CSV:COLUMN`` (default: the one the run named, if
    any); ``figures_dir``: also keep the figures there as PNG files, linked from the Markdown
    by relative path (default: figures only inside the HTML). A section that cannot be drawn
    is replaced by one line saying why, and listed under ``errors``.

    Returns ``best_arch``, ``markdown``, ``html`` (the paths), ``figures`` (PNG file names),
    ``sections`` (titles present), ``absent`` (sections left out and why) and ``errors``.
    """
    cfg = config or ReportConfig()
    t0 = time.perf_counter()
    run = load_run(
        data=data,
        supernet=supernet,
        partition=partition,
        space=space,
        search=search,
        transfer=transfer,
        profiles=profiles,
        table=table,
    )
    html_out, markdown_out = Path(html_out), Path(markdown_out)
    with tempfile.TemporaryDirectory(prefix="naslid-report-") as tmp:
        figdir = Path(figures_dir) if figures_dir is not None else Path(tmp)
        doc = Document()
        ctx = _Ctx(run, doc, figdir, cfg)
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
                doc.heading(2, f"{name[0].upper()}{name[1:]}", _slug(name))
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
