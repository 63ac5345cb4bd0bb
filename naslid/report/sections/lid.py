"""LID profiles and similarity: per split edge, the LID of each candidate op against relative
depth (NAS-LID Fig. 1) and the similarity heatmap with the balanced-cut groups."""

from __future__ import annotations

from naslid.report import plots
from naslid.report.analytics import tree_nodes
from naslid.report.context import SectionContext
from naslid.report.format import sig


def draw(ctx: SectionContext) -> None:
    """Draw this section into ``ctx.doc`` from ``ctx.run``."""
    run, doc = ctx.run, ctx.doc
    nodes = [
        (nid, n)
        for nid, n in sorted(tree_nodes(run).items(), key=lambda kv: (len(kv[0]), kv[0]))
        if n.get("split_edge") is not None and n.get("similarity")
    ]
    if not nodes:
        return
    criterion = run.tree.get("criterion")
    has_lid = any(n.get("lid") for _, n in nodes)  # the criterion measured LID vectors
    doc.heading(2, "LID profiles and similarity" if has_lid else "Similarity per split", "lid")
    if has_lid:
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
        edge = run.space.slot_label(int(e))
        path = plots.split_view(
            n["ops"][e],
            n["similarity"][e],
            ctx.fig_path(f"split {nid}"),
            lid=lid,
            groups=n.get("groups"),
            short_op=run.space.short_op,
            title=f"node {nid}: split on edge {edge}, edge score {sig(n['scores'].get(e))}",
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
