"""The split criteria: separability per edge, side by side when several criteria profiled the
same node (extra ``naslid.node_profile`` artifacts), with profiling time and memory."""

from __future__ import annotations

from naslid.report import plots
from naslid.report.analytics import tree_nodes
from naslid.report.context import SectionContext
from naslid.report.format import duration, fixed, sig
from naslid.report.load import RunArtifacts


def criterion_results(run: RunArtifacts) -> dict[tuple[str, int], dict[str, dict]]:
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
    for nid, n in tree_nodes(run).items():
        if n.get("split_edge") is None:
            continue
        crit = (n.get("measure") or {}).get("criterion") or run.tree.get("criterion")
        key = (nid, int(n["depth"]) + 1)
        sec, mem = seconds.get((nid, key[1], crit), (None, None))
        out.setdefault(key, {})[crit] = {
            "separability": {sp.slot_label(int(k)): v for k, v in n["separability"].items()},
            "chosen": sp.slot_label(int(n["split_edge"])),
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
            "separability": {sp.slot_label(e): v for e, v in sorted(decision.separability.items())},
            "chosen": sp.slot_label(decision.edge),
            "seconds": meta.get("seconds"),
            "memory": meta.get("peak_memory_MB"),
        }
    rank = {c: i for i, c in enumerate(CRITERIA)}
    return {
        key: dict(sorted(v.items(), key=lambda kv: (rank.get(kv[0], len(rank)), kv[0])))
        for key, v in out.items()
    }


def draw(ctx: SectionContext) -> None:
    """Draw this section into ``ctx.doc`` from ``ctx.run``."""
    run, doc = ctx.run, ctx.doc
    results = criterion_results(run)
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
                    sig(r["separability"].get(r["chosen"])),
                    duration(r["seconds"]),
                    fixed(r["memory"], 0),
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
