"""The ranking (a benchmark table known): proxy score against table accuracy, Kendall / Spearman."""

from __future__ import annotations

from naslid.evaluate import rank_correlation
from naslid.report import plots
from naslid.report.context import SectionContext
from naslid.report.format import fixed


def draw(ctx: SectionContext) -> None:
    """Draw this section into ``ctx.doc`` from ``ctx.run``."""
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
        ["subset", "cells it covers", "n", "Kendall tau", "Spearman rho"],
        [
            [
                name,
                c["covers"],
                c["n"],
                fixed(c["kendall_tau"], 3) if c["kendall_tau"] is not None else "undefined",
                fixed(c["spearman_rho"], 3) if c["spearman_rho"] is not None else "undefined",
            ]
            for name, c in corr.items()
        ],
    )
