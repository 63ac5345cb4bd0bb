"""The partition tree: the drawn tree, the split decisions and the partition score per edge."""

from __future__ import annotations

from naslid.report import plots
from naslid.report.analytics import leaf_of, tree_nodes
from naslid.report.context import SectionContext
from naslid.report.format import arch_count, sig

EDGE_RULE_TEXT = {
    "partition": "partition (the paper's, section 3.3): the highest Eq. 6 partition score, "
    "per pair -- the edge whose operations are most alike inside the groups.",
    "separability": "separability (not the paper's): the highest ratio of similarity inside "
    "the groups to similarity across them -- the most separable edge.",
    "cross_distance": "cross_distance (GM-NAS): the largest gradient distance across the groups.",
    "random": "random: an edge drawn at random, cut at random.",
    "unrecorded": "unrecorded: decisions made before naslid recorded the rule.",
}
"""What each edge rule (``naslid.criteria``) chooses, in the report's words."""


def draw(ctx: SectionContext) -> None:
    """Draw this section into ``ctx.doc`` from ``ctx.run``."""
    run, doc = ctx.run, ctx.doc
    if not run.tree:
        ctx.absent.append("partition tree (rounds=0)")
        return
    nodes = tree_nodes(run)
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
        lines = [f"{nid} · {arch_count(size)} archs"]
        if n.get("split_edge") is not None:
            e = int(n["split_edge"])
            lines += [f"split {sp.slot_label(e)}", f"score {sig(n['scores'].get(str(e)))}"]
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
            ops = [sp.short_op(o) for o in g]
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
    rules = sorted(
        {
            n.get("edge_rule") or "unrecorded"
            for n in nodes.values()
            if n.get("split_edge") is not None
        }
    )
    doc.para(
        f"Each round splits every sub-supernet on one edge that no earlier split touched: the "
        f"candidate operations of each such edge are cut into two balanced groups (both at least "
        f"half the operations) keeping the most similarity inside ({run.tree.get('criterion')} "
        f"criterion; NAS-LID Eq. 6), and the edge whose cut scores best under the edge rule "
        f"that ran ({', '.join(rules)}) is chosen. {' '.join(EDGE_RULE_TEXT.get(r, '') for r in rules)}"
        f" Child `x0` keeps the group with the edge's first operation."
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
                arch_count(sp.mask_size(sp.mask_from_json(n["mask"]))),
                sp.slot_label(int(e)),
                ", ".join(groups[0]),
                ", ".join(groups[1]),
                sig(n["scores"].get(e)),
                sig(n["separability"].get(e)),
            ]
        )
        scores[f"node {nid}"] = {sp.slot_label(int(k)): v for k, v in n["scores"].items()}
        chosen[f"node {nid}"] = sp.slot_label(int(e))
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
