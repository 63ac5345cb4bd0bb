"""The evolutionary search: population mean +- std and best so far per generation (NAS-LID
Fig. 5), FLOPs vs score of every visited arch, the top architectures."""

from __future__ import annotations

from naslid.report import plots
from naslid.report.analytics import generation_stats, leaf_of
from naslid.report.context import SectionContext
from naslid.report.format import fixed


def draw(ctx: SectionContext) -> None:
    """Draw this section into ``ctx.doc`` from ``ctx.run``."""
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
            [g["generation"], g["count"], fixed(g["mean"]), fixed(g["std"]), fixed(g["max"])]
            + [fixed(g["best_so_far"])]
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
        row = [i + 1, f"`{t['arch']}`", fixed(score_of.get(t["arch"], t["score"]))]
        row += [fixed(f, 1), fixed(p, 3), leaf_of(run, t["arch"]) or "-", o]
        if run.table is not None:
            row.append(fixed(run.table.accuracy.get(t["arch"])))
        rows.append(row)
    doc.heading(3, f"Top {len(rows)} architectures")
    doc.table(header, rows)
