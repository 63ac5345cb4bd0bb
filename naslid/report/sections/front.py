"""The Pareto front of the search (issue 24): proxy accuracy against FLOPs (and latency when
known) of every scored arch with the front the search kept (``front.json``,
:mod:`naslid.pareto`), the user's budget, the best arch within each rung of the budget
ladder, and for reference NAS-LID's Table 4 networks (mobile spaces) or the NAS-Bench-201
table's true front (NB201, when the run knows the table)."""

from __future__ import annotations

from naslid.pareto import OBJECTIVES, SCORE, Objective, front_indices
from naslid.report import plots
from naslid.report.context import SectionContext
from naslid.report.format import fixed
from naslid.spaces.table4 import TABLE4

DRAWN = ("flops", "latency")
"""The costs a figure is drawn against (parameters only in the tables)."""

_DIGITS = {"flops": 1, "params": 3, "latency": 2}


def _scored_by_table(run) -> bool:
    """Whether the search's score is the benchmark table's accuracy (``naslid evolve
    --oracle table:...``), not a proxy."""
    evaluator = run.search_meta.get("evaluator")
    oracle = evaluator.get("oracle") if isinstance(evaluator, dict) else None
    return run.table_spec is not None and run.table_spec in (run.search_meta.get("table"), oracle)


def table_front(table, space) -> tuple[list[float], list[float]]:
    """The true front of a benchmark table: (FLOPs, accuracy) of its non-dominated cells,
    FLOPs ascending (``space.flops`` of every arch the table holds)."""
    archs = list(table.accuracy)
    acc = [table.accuracy[a] for a in archs]
    flops = [space.flops(space.from_str(a)) for a in archs]
    front = sorted(front_indices(acc, flops), key=lambda i: flops[i])
    return [flops[i] for i in front], [acc[i] for i in front]


def _reference(run, by_table: bool) -> tuple[plots.Reference | None, str]:
    """What the FLOPs figure is set against, and the caption's sentence about it."""
    rows = TABLE4.get(run.space.name)
    if rows:
        ref = plots.Reference(
            "NAS-LID Table 4 (ImageNet top-1, right axis)",
            [r.flops_m for r in rows],
            [100.0 - r.top1_error for r in rows],
            names=[r.method.split(" (")[0] for r in rows],
            axis="ImageNet top-1 accuracy (%), Table 4",
        )
        return ref, (
            " Green diamonds: the networks of NAS-LID's Table 4, placed by their FLOPs "
            "(ImageNet, 224 px) at their ImageNet top-1 accuracy (100 − top-1 error) on the "
            "right-hand axis. That is not the proxy accuracy of the left-hand axis (another "
            "data set, another training): compare their FLOPs, not their height."
        )
    if run.space.name != "nb201":
        return None, ""
    if run.table is None:
        why = run.table_note or (
            "this run named no benchmark table and none was given "
            "(`naslid report --table table:CSV:COLUMN`)"
        )
        return None, f" The NAS-Bench-201 table's true front is not drawn: {why}."
    x, y = table_front(run.table, run.space)
    column = run.table.column
    axis = None if by_table else f"NAS-Bench-201 {column} (%)"
    ref = plots.Reference(
        f"NAS-Bench-201 true front ({column}{', right axis' if axis else ''})",
        x,
        y,
        axis=axis,
        curve=True,
    )
    where = (
        "on the same axis: the search was scored by that table"
        if by_table
        else "on the right-hand axis: the table's accuracy, not the proxy accuracy of the "
        "left-hand axis"
    )
    return ref, (
        f" Green staircase: the true front of {run.table_note} over all its "
        f"{len(run.table):,} cells (accuracy against FLOPs), {where}."
    )


def _budget_text(budget: dict) -> str:
    parts = [
        f"{o.label} ≤ {budget[o.field]:g}" for o in OBJECTIVES if budget.get(o.field) is not None
    ]
    if not parts:
        return "No budget was set: the search scored archs of any cost."
    return "Budget (every scored architecture lies within it): " + ", ".join(parts) + "."


def _cost_cells(entry: dict, known: list[Objective]) -> list[str]:
    return [fixed(entry.get(o.field), _DIGITS[o.column]) for o in known]


def draw(ctx: SectionContext) -> None:
    """Draw this section into ``ctx.doc`` from ``ctx.run``; nothing for a search that wrote
    no ``front.json`` (from before issue 24)."""
    run, doc = ctx.run, ctx.doc
    summary = run.front
    if summary is None:
        return
    h = run.history
    known = [o for o in OBJECTIVES if o.field in summary["objectives"]]
    front, budget = summary["front"], summary.get("budget") or {}
    by_table = _scored_by_table(run)
    score_label = "benchmark accuracy (%)" if by_table else "proxy accuracy (%)"
    doc.heading(2, "Pareto front", "front")
    doc.para(
        f"{len(front)} of {len(h)} scored architectures form the Pareto front of "
        f"{score_label.split(' (')[0]} (maximised) against "
        + (", ".join(o.label for o in known) or "no cost")
        + " (minimised): no other scored architecture is as accurate at no higher cost in "
        "each, and better in one (ties: the first scored)."
    )
    doc.para(_budget_text(budget))
    device = run.search_meta.get("latency_device")
    if device and any(o.column == "latency" for o in known):
        doc.para(
            f"Latency is predicted from the lookup table measured on {device} "
            "(measure-latency: every option of every layer timed on that device, summed "
            "with the network's fixed parts)."
        )
    row_of = {a: i for i, a in reversed(list(enumerate(h["arch"].astype(str))))}
    on_front = [row_of[e["arch"]] for e in front if e["arch"] in row_of]
    scores = h[SCORE].to_numpy(dtype=float)
    for o in known:
        if o.column not in DRAWN:
            continue
        cost = h[o.column].to_numpy(dtype=float)
        ref, note = _reference(run, by_table) if o.column == "flops" else (None, "")
        path = plots.pareto_front(
            cost,
            scores,
            ctx.fig_path(f"pareto {o.column}"),
            front=on_front,
            plane_front=front_indices(scores, cost),
            xlabel=o.label,
            ylabel=score_label,
            budget=budget.get(o.field),
            reference=ref,
            title=f"{score_label.split(' (')[0]} against {o.label} of every scored arch",
        )
        doc.figure(
            path,
            f"Every scored architecture (grey) by {o.label} and {score_label}; blue: the "
            "Pareto front over all known objectives, the line its staircase in this plane; "
            "red dashes: the budget, when set." + note,
        )
    score_head = score_label.replace("accuracy", "acc.")
    header = ["architecture", score_head]
    header += [o.label for o in known]
    if run.table is not None and not by_table:
        header.append(f"benchmark ({run.table.column})")
    rows = []
    for e in front:
        row = [f"`{e['arch']}`", fixed(e[SCORE]), *_cost_cells(e, known)]
        if run.table is not None and not by_table:
            row.append(fixed(run.table.accuracy.get(e["arch"])))
        rows.append(row)
    doc.heading(3, f"The front ({len(rows)} architecture{'s' if len(rows) != 1 else ''})")
    doc.table(header, rows)
    ladder = summary.get("best_within") or []
    if ladder:
        label = {o.field: o.label for o in OBJECTIVES}
        doc.heading(3, "Best architecture within each budget")
        doc.para(
            "Per cost, limits evenly spaced from the cheapest to the costliest architecture "
            "of the front (the last: no limit beyond the run's budget), each with the best "
            "scored architecture within it."
        )
        doc.table(
            ["within", "architecture", score_head, *(o.label for o in known)],
            [
                [
                    f"{label.get(e['metric'], e['metric'])} ≤ {e['limit']:.4g}",
                    f"`{e['arch']}`",
                    fixed(e[SCORE]),
                    *_cost_cells(e, known),
                ]
                for e in ladder
            ],
        )
