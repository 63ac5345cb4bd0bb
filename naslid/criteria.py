"""The split criteria: how a (sub-)supernet's candidate edges are measured and ranked.

One registry, :data:`CRITERIA_REGISTRY`, holds every criterion -- ``lid`` (NAS-LID, He et
al., AAAI 2023, sections 3.2-3.3), ``gradient`` (GM-NAS, Hu et al., ICLR 2022,
:mod:`naslid.gradmatch`), ``random`` (a seeded random balanced bipartition of a random
edge) -- each with its own measurement (per-edge similarity matrices, written as a
:class:`~naslid.node_profile.NodeProfile`) and its own edge rule, behind one entry point,
:func:`similarity_for_node`. A new criterion is one more :class:`Criterion` in the registry;
:func:`naslid.split.decide_split` reads its edge rule from there.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from naslid.cut import (
    SplitConfig,
    block_similarity,
    check_similarity,
    lid_epsilon,
    mean_partition_score,
    random_bipartition,
    relative_partition_score,
    similarity_matrix,
)
from naslid.gradmatch import GradMatchConfig, gradient_similarity
from naslid.lid import LIDConfig, profile, unsplit_edges
from naslid.node_ids import ROOT
from naslid.node_profile import EdgeProfile, NodeProfile
from naslid.spaces.base import Mask


@dataclass(frozen=True)
class MeasureConfigs:
    """The settings the criteria measure with, under the names of the profile's fields:
    :class:`naslid.config.Profile` has the same three, so a profile serves as well."""

    lid: LIDConfig = field(default_factory=LIDConfig)
    gradmatch: GradMatchConfig = field(default_factory=GradMatchConfig)
    split: SplitConfig = field(default_factory=SplitConfig)


# --------------------------------------------------------------------------- edge rules
EdgeScore = Callable[[np.ndarray, Sequence[int], Sequence[int]], float]

LID_EDGE_RULES: dict[str, EdgeScore] = {
    # NAS-LID section 3.3: the never-partitioned layer with the highest partition score
    # (Eq. 6), compared per pair (naslid.cut.mean_partition_score)
    "partition": mean_partition_score,
    # the most separable edge (mean inside / mean across): not the paper's, an explicit option
    "separability": relative_partition_score,
}


def gradient_edge_score(
    similarity: np.ndarray, group_a: Sequence[int], group_b: Sequence[int]
) -> float:
    """GM-NAS's edge rule (Hu et al., ICLR 2022; its public code, ``mincut_split_201`` and
    ``split_supernet``): the edge whose best 2|3 partition leaves the most gradient distance
    *across* the groups -- the sum over the cross pairs of ``1 - cos`` -- wins."""
    s = check_similarity(similarity)
    return float((1.0 - s[np.ix_(list(group_a), list(group_b))]).sum())


# --------------------------------------------------------------------------- measurements
def node_rng(seed: int, node_id: str) -> np.random.Generator:
    """The random stream of one node under one seed (the random criterion's draws)."""
    return np.random.default_rng([int(seed), zlib.crc32(node_id.encode())])


def _measure_lid(supernet, mask, edges, batches, root, configs, seed, node_id, progress):
    lcfg, scfg = configs.lid, configs.split
    vecs = profile(
        supernet, batches, mask, edges=edges, root=root, config=lcfg, seed=seed, progress=progress
    )
    out = {}
    for e, v in vecs.items():
        eps = lid_epsilon(v, scfg.eps) if scfg.metric == "euclidean" else scfg.eps
        out[e] = EdgeProfile(mask[e], similarity_matrix(v, scfg.metric, eps), v)
    return out, {**vars(lcfg), **vars(scfg)}


def _measure_gradient(supernet, mask, edges, batches, root, configs, seed, node_id, progress):
    gcfg = configs.gradmatch
    sims = gradient_similarity(
        supernet, batches, mask, edges=edges, root=root, config=gcfg, seed=seed, progress=progress
    )
    return {e: EdgeProfile(mask[e], sim) for e, sim in sims.items()}, {
        **vars(gcfg),
        "cut": configs.split.cut,
    }


def _measure_random(supernet, mask, edges, batches, root, configs, seed, node_id, progress):
    rng = node_rng(seed, node_id)
    out = {}
    for e in edges:
        group_a, _ = random_bipartition(len(mask[e]), rng)
        out[e] = EdgeProfile(mask[e], block_similarity(len(mask[e]), group_a))
    return out, {}


# --------------------------------------------------------------------------- the registry
@dataclass(frozen=True)
class Criterion:
    """A split criterion: how it measures a node (per-edge similarity matrices) and how it
    ranks the edges once each is cut (higher wins; no rules: a seeded random edge)."""

    name: str
    measure: Callable[..., tuple[dict, dict]]
    edge_rules: dict[str, EdgeScore]
    """The edge rules the criterion offers, by name, the default first."""
    batches_from: str | None
    """The :class:`MeasureConfigs` field (``lid`` / ``gradmatch``) whose ``batch_size`` and
    ``num_batches`` say how many batches the criterion measures on; ``None``: it needs no
    data."""

    def batch_config(self, configs: MeasureConfigs):
        """The config that sizes the batches, or ``None`` when the criterion needs no data.

        ``configs``: a :class:`MeasureConfigs` or anything with its fields (a profile)."""
        if self.batches_from is None:
            return None
        return getattr(configs, self.batches_from)

    def edge_rule(self, recorded: dict) -> tuple[str, EdgeScore] | None:
        """The rule a profile was measured for: its recorded ``edge_rule`` where the criterion
        offers it, else the criterion's default; ``None`` for a random edge."""
        if not self.edge_rules:
            return None
        name = recorded.get("edge_rule", next(iter(self.edge_rules)))
        if name not in self.edge_rules:
            raise ValueError(
                f"edge_rule: {self.name} offers {', '.join(self.edge_rules)}, got {name!r}"
            )
        return name, self.edge_rules[name]


CRITERIA_REGISTRY: dict[str, Criterion] = {
    c.name: c
    for c in (
        Criterion("lid", _measure_lid, LID_EDGE_RULES, "lid"),  # NAS-LID, Eq. 2-6
        Criterion(  # GM-NAS
            "gradient", _measure_gradient, {"cross_distance": gradient_edge_score}, "gradmatch"
        ),
        Criterion("random", _measure_random, {}, None),  # random balanced bipartitions
    )
}
CRITERIA = tuple(CRITERIA_REGISTRY)
DEFAULT_CRITERION = "lid"


def criterion(name: str) -> Criterion:
    """The registered split criterion called ``name``."""
    if name not in CRITERIA_REGISTRY:
        raise ValueError(f"criterion: expected one of {', '.join(CRITERIA)}, got {name!r}")
    return CRITERIA_REGISTRY[name]


def similarity_for_node(
    criterion_name: str,
    supernet,
    mask: Mask | None,
    batches: Iterable,
    *,
    node_id: str = ROOT,
    edges: Sequence[int] | None = None,
    root: Mask | None = None,
    configs: MeasureConfigs | None = None,
    seed: int = 0,
    progress: Callable[[int], None] | None = None,
) -> NodeProfile:
    """The similarity matrix of every split candidate of ``mask``, whichever criterion runs.

    Candidates: the edges never partitioned since ``root`` (default the space's full mask;
    :func:`naslid.lid.unsplit_edges`). ``lid``: :func:`naslid.lid.profile` (forward only) then
    Eq. 5 with a scaled eps; ``gradient``: :func:`naslid.gradmatch.gradient_similarity` (needs
    ``(x, y)`` batches); ``random``: a seeded random balanced bipartition per edge as a block
    matrix (no data, no network run). Batches are drawn at random from all classes by the caller.

    ``configs``: the settings measured with (a :class:`MeasureConfigs`, or a profile);
    default the papers' (:class:`MeasureConfigs`).
    """
    crit = criterion(criterion_name)
    configs = configs or MeasureConfigs()
    space = supernet.space
    mask = space.check_mask(
        mask if mask is not None else getattr(supernet, "mask", space.full_mask())
    )
    root = space.full_mask() if root is None else space.check_mask(root)
    edge_list = unsplit_edges(mask, root) if edges is None else [int(e) for e in edges]
    out, conf = crit.measure(
        supernet, mask, edge_list, batches, root, configs, seed, node_id, progress
    )
    return NodeProfile(crit.name, mask, out, node_id, seed, conf)


def forwards_per_node(mask: Mask, num_batches: int, root: Mask) -> int:
    """Forward passes that profiling one node takes (for progress bars)."""
    return num_batches * sum(len(mask[e]) for e in unsplit_edges(mask, root))
