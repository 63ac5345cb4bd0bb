"""Splitting a supernet: which edge of a (sub-)supernet splits, and into which groups.

NAS-LID (He et al., AAAI 2023, section 3.3, "LID-based Supernet Partition") cuts the
similarity graph of every candidate edge's operations by the balanced Eq. 6 cut
(:mod:`naslid.cut`) and splits the sub-supernet on the *never partitioned* edge with the
highest partition score ("Next time, we will only split the unpartitioned layers").
Repeating this for every sub-supernet for R rounds gives 2^R sub-supernets whose masks
differ on R distinct edges, recorded as a tree (:mod:`naslid.partition`).

The similarities come from a split criterion of :mod:`naslid.criteria` -- ``lid``
(NAS-LID), ``gradient`` (GM-NAS, Hu et al. 2022), ``random`` -- and the edge rule too.
Deciding a node's split from its profile (:func:`decide_split`) is a pure function: the
pipeline can profile and decide the nodes of one round in parallel and merge the
decisions into the tree (:meth:`PartitionTree.apply`). The names callers use for the
whole split (the tree, the profiles, the criteria, the cut) are importable from here too.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from naslid.criteria import (
    CRITERIA,
    CRITERIA_REGISTRY,
    DEFAULT_CRITERION,
    Criterion,
    MeasureConfigs,
    criterion,
    forwards_per_node,
    node_rng,
    similarity_for_node,
)
from naslid.cut import CUTS, EDGE_RULES, METRICS, SplitConfig, min_cut, normalised_dispersion
from naslid.node_profile import EdgeProfile, NodeProfile
from naslid.partition import PartitionTree, SplitDecision

__all__ = [
    "CRITERIA",
    "CRITERIA_REGISTRY",
    "CUTS",
    "DEFAULT_CRITERION",
    "EDGE_RULES",
    "METRICS",
    "Criterion",
    "EdgeProfile",
    "MeasureConfigs",
    "NodeProfile",
    "PartitionTree",
    "SplitConfig",
    "SplitDecision",
    "build_tree",
    "criterion",
    "decide_split",
    "forwards_per_node",
    "min_cut",
    "similarity_for_node",
]


def _finite_or(x: float, default: float) -> float:
    return x if math.isfinite(x) else default


def decide_split(
    profile: NodeProfile, node_id: str | None = None, cut: str | None = None
) -> SplitDecision | None:
    """Split a node given its per-edge similarities (pure; ``None`` when nothing can split).

    Every profiled edge (the profile holds only split candidates: never-partitioned edges)
    is cut by :func:`min_cut` -- the balanced Eq. 6 cut unless ``cut`` (default: the
    profile's recorded ``cut``, else ``balanced``) says ``stoer_wagner`` -- and ranked by
    its criterion's edge rule (the profile's recorded ``edge_rule``, else the criterion's
    default): NAS-LID's ``partition`` rule the highest partition score per pair (section
    3.3, :func:`naslid.cut.mean_partition_score`), its ``separability`` option the highest
    inside/across ratio, GM-NAS the largest cross-group gradient distance; ties go to the
    lowest edge index. ``scores`` records that edge score, ``partition_scores`` the raw Eq.
    6 sum, ``edge_rule`` the rule's name. The random criterion picks the edge uniformly at
    random (seeded by the profile's seed and the node id) and splits it by its random
    balanced bipartition.
    """
    node_id = profile.node_id if node_id is None else node_id
    crit = criterion(profile.criterion)
    cut = cut or profile.config.get("cut", SplitConfig.cut)
    rule = crit.edge_rule(profile.config)
    candidates = {e: p for e, p in sorted(profile.edges.items()) if len(p.options) > 1}
    if not candidates:
        return None
    cuts, scores, raw, separability = {}, {}, {}, {}
    for e, prof in candidates.items():
        if prof.similarity.shape != (len(prof.options), len(prof.options)):
            raise ValueError(
                f"profile: edge {e} has a {prof.similarity.shape} similarity for {len(prof.options)} ops"
            )
        group_a, group_b, score = min_cut(prof.similarity, cut)
        cuts[e] = (group_a, group_b)
        raw[e] = score
        scores[e] = score if rule is None else rule[1](prof.similarity, group_a, group_b)
        separability[e] = normalised_dispersion(prof.similarity)
    if rule is None:
        edges = list(candidates)
        edge = edges[int(node_rng(profile.seed + 1, node_id).integers(len(edges)))]
    else:
        # a nan score (a 1|1 split keeps no pair together) ranks below every real one
        edge = max(candidates, key=lambda e: (_finite_or(scores[e], -math.inf), -e))
    opts = candidates[edge].options
    groups = tuple(tuple(opts[i] for i in g) for g in cuts[edge])
    return SplitDecision(
        node_id,
        edge,
        groups,  # type: ignore[arg-type]
        scores,
        separability,
        profile,
        raw,
        "random" if rule is None else rule[0],
    )


def build_tree(
    supernet,
    batches: Sequence,
    rounds: int,
    criterion: str = DEFAULT_CRITERION,
    *,
    tree: PartitionTree | None = None,
    configs: MeasureConfigs | None = None,
    seed: int = 0,
    progress: Callable[[int], None] | None = None,
) -> PartitionTree:
    """Split every splittable leaf once per round, ``rounds`` times (2^R leaves at most).

    Every node is profiled on the same ``batches`` (a sequence, re-iterated per node) with
    the same supernet weights; the pipeline, which fine-tunes each sub-supernet between
    rounds (paper section 3.4), profiles and decides node by node instead. ``configs``:
    the settings measured with (:func:`naslid.criteria.similarity_for_node`).
    """
    if rounds < 0:
        raise ValueError(f"rounds: must be >= 0, got {rounds}")
    tree = tree or PartitionTree(supernet.space, getattr(supernet, "mask", None), criterion)
    if tree.criterion != criterion:
        raise ValueError(f"criterion: the tree was split by {tree.criterion!r}, not {criterion!r}")
    root = tree.node(tree.root).mask
    for _ in range(rounds):
        for leaf in tree.splittable():
            prof = similarity_for_node(
                criterion,
                supernet,
                leaf.mask,
                batches,
                node_id=leaf.id,
                root=root,
                configs=configs,
                seed=seed,
                progress=progress,
            )
            decision = decide_split(prof)
            if decision is not None:
                tree.apply(decision)
    return tree
