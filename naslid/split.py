"""Splitting a supernet: similarity graphs, balanced cuts, partition scores, the partition tree.

NAS-LID (He et al., AAAI 2023, section 3.3, "LID-based Supernet Partition") turns the
per-operation LID vectors of an edge into a similarity graph (Eq. 5: ``s(a, b) = 1 /
(||a - b||_2 + eps)``), cuts it into two groups maximising the partition score -- the
similarity kept inside the groups -- subject to a balance constraint (Eq. 6, whose "s.t."
our copy of the text lost; both public reference codes enumerate the balanced 2|3
bipartitions of NAS-Bench-201's five operations: |G1|, |G2| >= floor(m / 2)), and splits the
sub-supernet on the *never partitioned* edge with the highest partition score ("Next time,
we will only split the unpartitioned layers"). Repeating this for every sub-supernet for R
rounds gives 2^R sub-supernets whose masks differ on R distinct edges, recorded as a tree.

The split criteria live in one registry, :data:`CRITERIA_REGISTRY` -- ``lid`` (NAS-LID),
``gradient`` (GM-NAS, Hu et al. 2022, :mod:`naslid.gradmatch`), ``random`` (a seeded random
balanced bipartition of a random edge) -- each with its own measurement and its own edge
rule, behind one entry point, :func:`similarity_for_node`. Deciding a node's split from its
profile (:func:`decide_split`) is a pure function: the pipeline can profile and decide the
nodes of one round in parallel and merge the decisions into the tree
(:meth:`PartitionTree.apply`).
"""

from __future__ import annotations

import itertools
import math
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np

from naslid.io import read_json, write_json
from naslid.spaces.base import Arch, Mask, SlotSpace

METRICS = ("euclidean", "cosine", "pearson")
CUTS = ("balanced", "stoer_wagner")
TREE_FORMAT = "naslid.partition_tree/1"
PROFILE_FORMAT = "naslid.node_profile/1"
DECISION_FORMAT = "naslid.split_decision/1"
_EXHAUSTIVE_MAX = 16  # largest graph whose cut is enumerated (2^15 bipartitions)


@dataclass
class SplitConfig:
    """Settings of the split (paper defaults where the paper states them)."""

    metric: str = "euclidean"
    """LID-vector similarity: ``euclidean`` (paper Eq. 5), ``cosine`` or ``pearson``."""
    eps: float = 0.01
    """Eq. 5's stabiliser, *relative to the LID scale*: eps = this x the mean L2 norm of the
    edge's LID vectors (:func:`lid_epsilon`). An absolute eps (1e-6) lets one pair of
    near-identical operations reach similarity ~1e6 and decide alone which edge splits;
    scaled, two operations whose LID vectors differ by 1 % of their size are about as
    similar as identical ones, and a pair's similarity never exceeds ~100 / |LID|."""
    cut: str = "balanced"
    """``balanced``: the Eq. 6 cut with |G1|, |G2| >= floor(m/2), enumerated exactly;
    ``stoer_wagner``: the unconstrained global min-cut (networkx), kept as an explicit option."""

    def __post_init__(self) -> None:
        if self.metric not in METRICS:
            raise ValueError(
                f"split config: metric expected one of {', '.join(METRICS)}, got {self.metric!r}"
            )
        if not self.eps > 0:
            raise ValueError(f"split config: eps must be > 0, got {self.eps}")
        if self.cut not in CUTS:
            raise ValueError(
                f"split config: cut expected one of {', '.join(CUTS)}, got {self.cut!r}"
            )


# --------------------------------------------------------------------------- maths
def lid_epsilon(vectors: np.ndarray, relative: float) -> float:
    """Eq. 5's eps scaled to the LID magnitudes: ``relative`` x the mean L2 norm of the rows.

    Falls back to ``relative`` itself when every vector is zero (nothing sets a scale)."""
    v = np.asarray(vectors, dtype=np.float64)
    scale = float(np.linalg.norm(v, axis=1).mean()) if v.size else 0.0
    return relative * scale if scale > 0 else relative


def similarity_matrix(
    vectors: np.ndarray, metric: str = "euclidean", eps: float = 1e-6
) -> np.ndarray:
    """Pairwise similarity of the rows of ``vectors [m, L]`` (the LID vectors of m operations).

    ``euclidean``: ``1 / (||a - b||_2 + eps)`` (paper Eq. 5; the diagonal is 1/eps; pass
    ``lid_epsilon(vectors, rel)`` for an eps scaled to the LIDs, as the split does);
    ``cosine``: ``a.b / (|a||b|)``; ``pearson``: the correlation of the two vectors (a
    constant vector correlates 0 with everything but itself). Cosine and Pearson can be
    negative; :func:`min_cut` handles that.
    """
    v = np.asarray(vectors, dtype=np.float64)
    if v.ndim != 2 or v.shape[0] < 1:
        raise ValueError(f"vectors: expected a 2-d array [m, L], got shape {v.shape}")
    if not np.isfinite(v).all():
        raise ValueError("vectors: not all finite (a diverged supernet?)")
    if metric == "euclidean":
        if not eps > 0:
            raise ValueError(f"eps: must be > 0, got {eps}")
        dist = np.sqrt(((v[:, None, :] - v[None, :, :]) ** 2).sum(-1))
        return 1.0 / (dist + eps)
    if metric in ("cosine", "pearson"):
        if metric == "pearson":
            v = v - v.mean(axis=1, keepdims=True)
        norm = np.linalg.norm(v, axis=1, keepdims=True)
        unit = np.divide(v, norm, out=np.zeros_like(v), where=norm > 0)
        sim = np.clip(unit @ unit.T, -1.0, 1.0)
        np.fill_diagonal(sim, 1.0)
        return sim
    raise ValueError(f"metric: expected one of {', '.join(METRICS)}, got {metric!r}")


def _check_similarity(similarity: np.ndarray) -> np.ndarray:
    s = np.asarray(similarity, dtype=np.float64)
    if s.ndim != 2 or s.shape[0] != s.shape[1]:
        raise ValueError(f"similarity: expected a square matrix, got shape {s.shape}")
    if not np.isfinite(s).all():
        raise ValueError("similarity: not all finite")
    if not np.allclose(s, s.T, rtol=1e-9, atol=1e-12):
        raise ValueError("similarity: not symmetric")
    return s


def _pairs(groups: Iterable[Sequence[int]]) -> list[tuple[int, int]]:
    return [p for g in groups for p in itertools.combinations(sorted(g), 2)]


def partition_score(
    similarity: np.ndarray, group_a: Sequence[int], group_b: Sequence[int]
) -> float:
    """Sum of the similarities inside the two groups, each pair once (paper Eq. 6)."""
    s = _check_similarity(similarity)
    return float(sum(s[i, j] for i, j in _pairs((group_a, group_b))))


def relative_partition_score(
    similarity: np.ndarray, group_a: Sequence[int], group_b: Sequence[int]
) -> float:
    """Eq. 6 made comparable across edges: the mean similarity inside the groups over the
    mean similarity across them.

    Within one edge the balanced cut fixes the group sizes, so the inside sum I and the
    across sum T - I (T the edge's total) move in opposite directions and this ratio ranks
    that edge's cuts exactly as Eq. 6 does. Across edges the raw sum is not comparable: a
    1|2 split of three operations sums 1 pair, a 2|3 split of five sums 4, and the edge
    whose operations are *least* distinguishable (every similarity near 1/eps) has the
    largest sum. The ratio removes both the pair count and the scale: two blocks with
    similarity a inside and b across score a / b at any size; 1 means the groups are no
    tighter inside than across, larger a clearer split. (The paper ranks edges by "the
    highest partition score" without saying how edges of different sizes compare; the raw
    Eq. 6 sum is reported beside this.) ``nan`` when no pair lies inside a group (a 1|1
    split) or the mean across is not positive.
    """
    s = _check_similarity(similarity)
    inside = _pairs((group_a, group_b))
    across = s[np.ix_(list(group_a), list(group_b))]
    if not inside or across.size == 0:
        return math.nan
    mean_across = float(across.mean())
    if not mean_across > 0:
        return math.nan
    return float(np.mean([s[i, j] for i, j in inside]) / mean_across)


def cut_value(similarity: np.ndarray, group_a: Sequence[int], group_b: Sequence[int]) -> float:
    """Sum of the similarities between the two groups (the weight of the cut)."""
    s = _check_similarity(similarity)
    return float(s[np.ix_(list(group_a), list(group_b))].sum())


def min_cut(similarity: np.ndarray, cut: str = "balanced") -> tuple[list[int], list[int], float]:
    """The Eq. 6 cut of the similarity graph: ``(group_a, group_b, partition_score)``.

    ``balanced`` (default): the bipartition with the largest partition score (similarity
    kept inside the groups; equivalently the least cut weight) among those with both
    groups of at least ``floor(m/2)`` nodes -- 2|3 for NAS-Bench-201's five operations, 3|3
    or 3|4 for the mobile space's layers, 1|2 for three -- found exactly by enumerating the
    ``C(m, floor(m/2))`` bipartitions. A general min-cut library does not apply: the
    constrained problem is minimum bisection, NP-hard in general, and networkx offers only
    the unconstrained global min-cut (Stoer-Wagner, which here cuts one operation off the
    rest almost every time), an s-t max-flow cut, or heuristics (Kernighan-Lin) that need
    not find the optimum; for m <= 16 enumeration is exact and costs microseconds to
    milliseconds. It also accepts negative weights (cosine, Pearson).

    ``stoer_wagner``: the unconstrained global minimum cut (``networkx.stoer_wagner``;
    non-negative weights only, else the unconstrained cut is enumerated).

    ``group_a`` holds index 0; both sorted; ties go to the lexicographically first group_a.
    The score is the partition score of Eq. 6. A 2-node graph splits 1 + 1 with score 0.
    """
    s = _check_similarity(similarity)
    m = s.shape[0]
    if m < 2:
        raise ValueError(f"similarity: a min-cut needs at least 2 nodes, got {m}")
    if cut not in CUTS:
        raise ValueError(f"cut: expected one of {', '.join(CUTS)}, got {cut!r}")
    if m > _EXHAUSTIVE_MAX and (cut == "balanced" or (s < 0).any()):
        raise ValueError(f"similarity: {m} > {_EXHAUSTIVE_MAX} nodes: no exact {cut} cut")
    off = s[~np.eye(m, dtype=bool)]
    if cut == "stoer_wagner" and (off >= 0).all():
        graph = nx.Graph()
        graph.add_nodes_from(range(m))
        graph.add_weighted_edges_from(
            (i, j, s[i, j]) for i, j in itertools.combinations(range(m), 2)
        )
        _, (part_a, part_b) = nx.stoer_wagner(graph)
    else:
        part_a, part_b = _enumerated_cut(s, m // 2 if cut == "balanced" else 1)
    group_a, group_b = sorted(part_a), sorted(part_b)
    if 0 not in group_a:
        group_a, group_b = group_b, group_a
    return group_a, group_b, partition_score(s, group_a, group_b)


def _enumerated_cut(s: np.ndarray, min_size: int) -> tuple[list[int], list[int]]:
    """The bipartition of least cut weight with both groups >= ``min_size`` (node 0 in a)."""
    m = s.shape[0]
    best, best_val = None, math.inf
    for size in range(max(1, min_size), m - max(1, min_size) + 1):
        for rest in itertools.combinations(range(1, m), size - 1):
            a = [0, *rest]
            b = [i for i in range(m) if i not in a]
            val = float(s[np.ix_(a, b)].sum())
            if best is None or val < best_val - 1e-12 * max(1.0, abs(best_val)):
                best, best_val = (a, b), val
    return best


def normalised_dispersion(similarity: np.ndarray) -> float:
    """Separability of an edge's operations: ``sqrt(mean((s_ij - s_mean)^2)) / |s_mean|``.

    Taken over the pairs i < j. It stands in for the separability score of the paper's
    Eq. 7 (section 4, "Separability": m operations, s_ij the similarity of the sub-supernets
    holding only operations i and j, s_mean the mean over all pairs), whose formula did not
    survive in our copy: pairwise similarities that vary a lot relative to their mean mean
    that the operations fall into distinct groups. Scale-free, so LID and gradient
    similarities compare. ``nan`` with fewer than two operations or a mean of zero; 0 for
    exactly two (one pair).
    """
    s = _check_similarity(similarity)
    pairs = s[np.triu_indices(s.shape[0], k=1)]
    if pairs.size == 0:
        return math.nan
    mean = float(pairs.mean())
    if mean == 0.0:
        return math.nan
    return float(np.sqrt(((pairs - mean) ** 2).mean()) / abs(mean))


def random_bipartition(m: int, rng: np.random.Generator) -> tuple[list[int], list[int]]:
    """A uniformly random balanced bipartition of ``range(m)`` (sizes m//2 and m - m//2)."""
    if m < 2:
        raise ValueError(f"options: a bipartition needs at least 2, got {m}")
    perm = rng.permutation(m)
    a, b = sorted(int(i) for i in perm[: m // 2]), sorted(int(i) for i in perm[m // 2 :])
    return (a, b) if 0 in a else (b, a)


def block_similarity(m: int, group_a: Sequence[int]) -> np.ndarray:
    """Similarity 1 inside ``group_a`` and inside its complement, 0 across: its min-cut is
    exactly that bipartition (how the random criterion speaks :func:`min_cut`'s language)."""
    inside = np.zeros(m, dtype=bool)
    inside[list(group_a)] = True
    return (inside[:, None] == inside[None, :]).astype(np.float64)


# --------------------------------------------------------------------------- edge rules
def lid_edge_score(similarity: np.ndarray, group_a: Sequence[int], group_b: Sequence[int]) -> float:
    """NAS-LID's edge rule: the partition score of the cut (Eq. 6), made comparable across
    edges (:func:`relative_partition_score`); the highest wins (section 3.3)."""
    return relative_partition_score(similarity, group_a, group_b)


def gradient_edge_score(
    similarity: np.ndarray, group_a: Sequence[int], group_b: Sequence[int]
) -> float:
    """GM-NAS's edge rule (Hu et al., ICLR 2022; its public code, ``mincut_split_201`` and
    ``split_supernet``): the edge whose best 2|3 partition leaves the most gradient distance
    *across* the groups -- the sum over the cross pairs of ``1 - cos`` -- wins."""
    s = _check_similarity(similarity)
    return float((1.0 - s[np.ix_(list(group_a), list(group_b))]).sum())


# --------------------------------------------------------------------------- node profiles
def _floats(x: np.ndarray) -> list:
    return np.asarray(x, dtype=np.float64).tolist()


def _json_float(x: float) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def _finite_or(x: float, default: float) -> float:
    return x if math.isfinite(x) else default


def _float_map(values: Mapping[int, float]) -> dict[str, float | None]:
    """``{edge: value}`` for JSON: string keys, non-finite values as null."""
    return {str(e): _json_float(v) for e, v in values.items()}


def _float_map_from(values: Mapping[str, float | None]) -> dict[int, float]:
    return {int(e): (math.nan if v is None else float(v)) for e, v in values.items()}


@dataclass
class EdgeProfile:
    """One edge's criterion output: its options (op indices), their similarity matrix and,
    for LID, their LID vectors ``[m, L]``."""

    options: tuple[int, ...]
    similarity: np.ndarray
    vectors: np.ndarray | None = None


@dataclass
class NodeProfile:
    """What a criterion measured on one (sub-)supernet: one :class:`EdgeProfile` per edge."""

    criterion: str
    mask: Mask
    edges: dict[int, EdgeProfile]
    node_id: str = "r"
    seed: int = 0
    config: dict[str, Any] = field(default_factory=dict)

    def to_json(self, space: SlotSpace) -> dict:
        edges = {}
        for e, prof in sorted(self.edges.items()):
            entry = {
                "ops": [space.slot_options[e][o] for o in prof.options],
                "similarity": _floats(prof.similarity),
            }
            if prof.vectors is not None:
                entry["lid"] = _floats(prof.vectors)
            edges[str(e)] = entry
        return {
            "format": PROFILE_FORMAT,
            "space": space.name,
            "criterion": self.criterion,
            "node": self.node_id,
            "seed": self.seed,
            "config": self.config,
            "mask": space.mask_to_json(self.mask),
            "edges": edges,
        }

    @classmethod
    def from_json(
        cls, space: SlotSpace, data: Mapping[str, Any], source: str = "profile"
    ) -> NodeProfile:
        if data.get("format") != PROFILE_FORMAT:
            raise ValueError(
                f"{source}: field 'format' is {data.get('format')!r}, expected {PROFILE_FORMAT!r}"
            )
        if data.get("space") != space.name:
            raise ValueError(
                f"{source}: field 'space' is {data.get('space')!r}, expected {space.name!r}"
            )
        mask = space.mask_from_json(data["mask"])
        edges = {}
        for key, entry in data["edges"].items():
            e = int(key)
            options = tuple(space.slot_options[e].index(n) for n in entry["ops"])
            if options != mask[e]:
                raise ValueError(
                    f"{source}: edge {e} lists ops {entry['ops']}, the mask allows others"
                )
            vectors = np.asarray(entry["lid"], dtype=np.float64) if "lid" in entry else None
            edges[e] = EdgeProfile(
                options, np.asarray(entry["similarity"], dtype=np.float64), vectors
            )
        return cls(
            data["criterion"],
            mask,
            edges,
            data.get("node", "r"),
            int(data.get("seed", 0)),
            data.get("config", {}),
        )

    def save(self, path: str | Path, space: SlotSpace) -> Path:
        return write_json(path, self.to_json(space))

    @classmethod
    def load(cls, path: str | Path, space: SlotSpace) -> NodeProfile:
        return cls.from_json(space, read_json(path), str(path))


def _measure_lid(supernet, mask, edges, batches, root, configs, seed, node_id, progress):
    from naslid import lid

    lcfg, scfg = configs["lid"], configs["split"]
    vecs = lid.profile(
        supernet, batches, mask, edges=edges, root=root, config=lcfg, seed=seed, progress=progress
    )
    out = {}
    for e, v in vecs.items():
        eps = lid_epsilon(v, scfg.eps) if scfg.metric == "euclidean" else scfg.eps
        out[e] = EdgeProfile(mask[e], similarity_matrix(v, scfg.metric, eps), v)
    return out, {**vars(lcfg), **vars(scfg)}


def _measure_gradient(supernet, mask, edges, batches, root, configs, seed, node_id, progress):
    from naslid import gradmatch

    gcfg = configs["gradmatch"]
    sims = gradmatch.gradient_similarity(
        supernet, batches, mask, edges=edges, root=root, config=gcfg, seed=seed, progress=progress
    )
    return {e: EdgeProfile(mask[e], sim) for e, sim in sims.items()}, {
        **vars(gcfg),
        "cut": configs["split"].cut,
    }


def _measure_random(supernet, mask, edges, batches, root, configs, seed, node_id, progress):
    rng = _node_rng(seed, node_id)
    out = {}
    for e in edges:
        group_a, _ = random_bipartition(len(mask[e]), rng)
        out[e] = EdgeProfile(mask[e], block_similarity(len(mask[e]), group_a))
    return out, {}


@dataclass(frozen=True)
class Criterion:
    """A split criterion: how it measures a node (per-edge similarity matrices) and how it
    ranks the edges once each is cut (higher wins; ``None``: a seeded random edge)."""

    name: str
    measure: Callable[..., tuple[dict, dict]]
    edge_score: Callable[[np.ndarray, Sequence[int], Sequence[int]], float] | None
    batches_from: str | None
    """The profile field (``lid`` / ``gradmatch``) whose ``batch_size`` and ``num_batches``
    say how many batches the criterion measures on; ``None``: it needs no data."""

    def batch_config(self, configs: Mapping[str, Any]):
        """The config (from ``configs``, keyed like the profile's fields) that sizes the
        batches, or ``None`` when the criterion needs no data."""
        return None if self.batches_from is None else configs[self.batches_from]


CRITERIA_REGISTRY: dict[str, Criterion] = {
    c.name: c
    for c in (
        Criterion("lid", _measure_lid, lid_edge_score, "lid"),  # NAS-LID, Eq. 2-6
        Criterion("gradient", _measure_gradient, gradient_edge_score, "gradmatch"),  # GM-NAS
        Criterion("random", _measure_random, None, None),  # random balanced bipartitions
    )
}
CRITERIA = tuple(CRITERIA_REGISTRY)
DEFAULT_CRITERION = "lid"


def criterion(name: str) -> Criterion:
    """The registered split criterion called ``name``."""
    try:
        return CRITERIA_REGISTRY[name]
    except KeyError:
        raise ValueError(
            f"criterion: expected one of {', '.join(CRITERIA)}, got {name!r}"
        ) from None


def similarity_for_node(
    criterion_name: str,
    supernet,
    mask: Mask | None,
    batches: Iterable,
    *,
    node_id: str = "r",
    edges: Sequence[int] | None = None,
    root: Mask | None = None,
    lid_config=None,
    grad_config=None,
    split_config: SplitConfig | None = None,
    seed: int = 0,
    progress: Callable[[int], None] | None = None,
) -> NodeProfile:
    """The similarity matrix of every split candidate of ``mask``, whichever criterion runs.

    Candidates: the edges never partitioned since ``root`` (default the space's full mask;
    :func:`naslid.lid.unsplit_edges`). ``lid``: :func:`naslid.lid.profile` (forward only) then
    Eq. 5 with a scaled eps; ``gradient``: :func:`naslid.gradmatch.gradient_similarity` (needs
    ``(x, y)`` batches); ``random``: a seeded random balanced bipartition per edge as a block
    matrix (no data, no network run). Batches are drawn at random from all classes by the caller.
    """
    from naslid import gradmatch, lid  # torch-heavy: imported where used

    crit = criterion(criterion_name)
    space = supernet.space
    mask = space.check_mask(
        mask if mask is not None else getattr(supernet, "mask", space.full_mask())
    )
    root = space.full_mask() if root is None else space.check_mask(root)
    edge_list = lid.unsplit_edges(mask, root) if edges is None else [int(e) for e in edges]
    configs = {
        "lid": lid_config or lid.LIDConfig(),
        "gradmatch": grad_config or gradmatch.GradMatchConfig(),
        "split": split_config or SplitConfig(),
    }
    out, conf = crit.measure(
        supernet, mask, edge_list, batches, root, configs, seed, node_id, progress
    )
    return NodeProfile(crit.name, mask, out, node_id, seed, conf)


def _node_rng(seed: int, node_id: str) -> np.random.Generator:
    return np.random.default_rng([int(seed), zlib.crc32(node_id.encode())])


# --------------------------------------------------------------------------- decisions
@dataclass
class SplitDecision:
    """How one node splits: the edge, the two groups of its options (op indices), and what
    was measured for every candidate edge (partition score, separability, the profile)."""

    node_id: str
    edge: int
    groups: tuple[tuple[int, ...], tuple[int, ...]]
    scores: dict[int, float]
    """The criterion's edge score of every candidate (what the edge was chosen by)."""
    separability: dict[int, float]
    profile: NodeProfile
    partition_scores: dict[int, float] = field(default_factory=dict)
    """The raw Eq. 6 partition score of every candidate's cut."""

    def to_json(self, space: SlotSpace) -> dict:
        names = space.slot_options[self.edge]
        return {
            "format": DECISION_FORMAT,
            "node": self.node_id,
            "edge": self.edge,
            "groups": [[names[o] for o in g] for g in self.groups],
            "scores": _float_map(self.scores),
            "partition_scores": _float_map(self.partition_scores),
            "separability": _float_map(self.separability),
            "profile": self.profile.to_json(space),
        }

    @classmethod
    def from_json(
        cls, space: SlotSpace, data: Mapping[str, Any], source: str = "decision"
    ) -> SplitDecision:
        if data.get("format") != DECISION_FORMAT:
            raise ValueError(
                f"{source}: field 'format' is {data.get('format')!r}, expected {DECISION_FORMAT!r}"
            )
        edge = int(data["edge"])
        names = space.slot_options[edge]
        groups = tuple(tuple(names.index(n) for n in g) for g in data["groups"])
        return cls(
            data["node"],
            edge,
            groups,  # type: ignore[arg-type]
            _float_map_from(data["scores"]),
            _float_map_from(data["separability"]),
            NodeProfile.from_json(space, data["profile"], f"{source}: profile"),
            _float_map_from(data.get("partition_scores", {})),
        )


def decide_split(
    profile: NodeProfile, node_id: str | None = None, cut: str | None = None
) -> SplitDecision | None:
    """Split a node given its per-edge similarities (pure; ``None`` when nothing can split).

    Every profiled edge (the profile holds only split candidates: never-partitioned edges)
    is cut by :func:`min_cut` -- the balanced Eq. 6 cut unless ``cut`` (default: the
    profile's recorded ``cut``, else ``balanced``) says ``stoer_wagner`` -- and ranked by
    its criterion's edge rule: NAS-LID the relative partition score (the highest, section
    3.3), GM-NAS the cross-group gradient distance (the largest); ties go to the lowest
    edge index. ``scores`` records that edge score, ``partition_scores`` the raw Eq. 6 sum.
    The random criterion picks the edge uniformly at random (seeded by the profile's seed
    and the node id) and splits it by its random balanced bipartition.
    """
    node_id = profile.node_id if node_id is None else node_id
    crit = criterion(profile.criterion)
    cut = cut or profile.config.get("cut", "balanced")
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
        scores[e] = (
            score if crit.edge_score is None else crit.edge_score(prof.similarity, group_a, group_b)
        )
        separability[e] = normalised_dispersion(prof.similarity)
    if crit.edge_score is None:
        edges = list(candidates)
        edge = edges[int(_node_rng(profile.seed + 1, node_id).integers(len(edges)))]
    else:
        # a nan score (a 1|1 split keeps no pair together) ranks below every real one
        edge = max(candidates, key=lambda e: (_finite_or(scores[e], -math.inf), -e))
    opts = candidates[edge].options
    groups = tuple(tuple(opts[i] for i in g) for g in cuts[edge])
    return SplitDecision(node_id, edge, groups, scores, separability, profile, raw)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- the tree
@dataclass
class Node:
    """A (sub-)supernet of the partition tree."""

    id: str
    parent: str | None
    depth: int
    mask: Mask
    split_edge: int | None = None
    groups: tuple[tuple[int, ...], ...] | None = None
    scores: dict[int, float] = field(default_factory=dict)
    separability: dict[int, float] = field(default_factory=dict)
    partition_scores: dict[int, float] = field(default_factory=dict)
    profile: NodeProfile | None = None
    children: list[str] = field(default_factory=list)

    @property
    def is_leaf(self) -> bool:
        return not self.children


class PartitionTree:
    """The sub-supernets of R rounds of splitting, as a binary tree of masks.

    Node ids are paths: the root is ``r``, the children of ``x`` are ``x0`` (the group
    holding the edge's lowest option) and ``x1``. The leaves' masks are disjoint and cover
    the root's mask, so every architecture belongs to exactly one leaf.
    """

    def __init__(self, space: SlotSpace, mask: Mask | None = None, criterion: str = "lid"):
        if criterion not in CRITERIA:
            raise ValueError(f"criterion: expected one of {', '.join(CRITERIA)}, got {criterion!r}")
        self.space = space
        self.criterion = criterion
        root_mask = space.check_mask(mask if mask is not None else space.full_mask())
        self.root = "r"
        self.nodes: dict[str, Node] = {"r": Node("r", None, 0, root_mask)}

    def node(self, node_id: str) -> Node:
        try:
            return self.nodes[node_id]
        except KeyError:
            raise KeyError(f"node: no node {node_id!r} in the partition tree") from None

    def leaves(self) -> list[Node]:
        """The current sub-supernets, in id order."""
        return [n for _, n in sorted(self.nodes.items()) if n.is_leaf]

    def leaf_for(self, arch: Arch) -> Node:
        """The leaf whose mask holds ``arch``."""
        node = self.nodes[self.root]
        if not self.space.contains(node.mask, arch):
            raise ValueError(f"arch: {arch} lies outside the tree's root mask")
        while not node.is_leaf:
            node = next(
                self.nodes[c]
                for c in node.children
                if self.space.contains(self.nodes[c].mask, arch)
            )
        return node

    def candidates(self, node_id: str) -> list[int]:
        """The edges of a node that were never partitioned: its allowed set still equals the
        root's (section 3.3; :func:`naslid.lid.unsplit_edges`). Each round thus splits a leaf
        on an edge none of its ancestors split: R rounds give 2^R leaves whose masks differ
        on R distinct edges."""
        from naslid.lid import unsplit_edges

        return unsplit_edges(self.node(node_id).mask, self.nodes[self.root].mask)

    def splittable(self) -> list[Node]:
        """Leaves with at least one split candidate (:meth:`candidates`)."""
        return [n for n in self.leaves() if self.candidates(n.id)]

    def apply(self, decision: SplitDecision) -> tuple[str, str]:
        """Split the leaf ``decision.node_id`` as decided; returns the two children's ids."""
        node = self.node(decision.node_id)
        if not node.is_leaf:
            raise ValueError(f"decision: node {node.id!r} is already split")
        if decision.profile.mask != node.mask:
            raise ValueError(
                f"decision: the profile of node {node.id!r} was taken on a different mask"
            )
        if decision.edge not in self.candidates(node.id):
            raise ValueError(
                f"decision: edge {decision.edge} of node {node.id!r} was already partitioned "
                "(or has a single option); only never-partitioned edges split"
            )
        allowed = node.mask[decision.edge]
        a, b = (tuple(sorted(g)) for g in decision.groups)
        if not a or not b or set(a) & set(b) or set(a) | set(b) != set(allowed):
            raise ValueError(
                f"decision: groups {decision.groups} do not partition edge {decision.edge}'s options {allowed}"
            )
        if min(b) < min(a):
            a, b = b, a
        node.split_edge, node.groups = decision.edge, (a, b)
        node.scores, node.separability = dict(decision.scores), dict(decision.separability)
        node.partition_scores = dict(decision.partition_scores)
        node.profile = decision.profile
        ids = []
        for suffix, group in (("0", a), ("1", b)):
            mask = tuple(
                group if e == decision.edge else allowed for e, allowed in enumerate(node.mask)
            )
            child = Node(node.id + suffix, node.id, node.depth + 1, mask)
            self.nodes[child.id] = child
            node.children.append(child.id)
            ids.append(child.id)
        return ids[0], ids[1]

    # ----------------------------------------------------------------- json
    def to_json(self) -> dict:
        nodes = {}
        for nid, n in sorted(self.nodes.items()):
            entry: dict[str, Any] = {
                "id": n.id,
                "parent": n.parent,
                "depth": n.depth,
                "mask": self.space.mask_to_json(n.mask),
                "split_edge": n.split_edge,
                "groups": None,
                "scores": _float_map(n.scores),
                "partition_scores": _float_map(n.partition_scores),
                "separability": _float_map(n.separability),
                "similarity": {},
                "children": list(n.children),
            }
            if n.groups is not None:
                names = self.space.slot_options[n.split_edge]
                entry["groups"] = [[names[o] for o in g] for g in n.groups]
            if n.profile is not None:  # what the criterion measured, per edge
                prof = n.profile.to_json(self.space)
                entry["similarity"] = {e: p["similarity"] for e, p in prof["edges"].items()}
                entry["ops"] = {e: p["ops"] for e, p in prof["edges"].items()}
                lids = {e: p["lid"] for e, p in prof["edges"].items() if "lid" in p}
                if lids:
                    entry["lid"] = lids
                entry["measure"] = {k: prof[k] for k in ("criterion", "seed", "config")}
            nodes[nid] = entry
        return {
            "format": TREE_FORMAT,
            "space": self.space.name,
            "criterion": self.criterion,
            "root": self.root,
            "leaves": [n.id for n in self.leaves()],
            "nodes": nodes,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any], source: str = "tree") -> PartitionTree:
        from naslid import spaces

        if data.get("format") != TREE_FORMAT:
            raise ValueError(
                f"{source}: field 'format' is {data.get('format')!r}, expected {TREE_FORMAT!r}"
            )
        space = spaces.get(data["space"]).SPACE
        nodes_json = data["nodes"]
        root = data.get("root", "r")
        if root not in nodes_json:
            raise ValueError(f"{source}: field 'nodes' has no root {root!r}")
        tree = cls(
            space, space.mask_from_json(nodes_json[root]["mask"]), data.get("criterion", "lid")
        )
        tree.root, tree.nodes = root, {}
        for nid, entry in nodes_json.items():
            node = Node(
                nid, entry["parent"], int(entry["depth"]), space.mask_from_json(entry["mask"])
            )
            if entry.get("split_edge") is not None:
                node.split_edge = int(entry["split_edge"])
                names = space.slot_options[node.split_edge]
                node.groups = tuple(tuple(names.index(n) for n in g) for g in entry["groups"])
            node.scores = _float_map_from(entry.get("scores", {}))
            node.partition_scores = _float_map_from(entry.get("partition_scores", {}))
            node.separability = _float_map_from(entry.get("separability", {}))
            if entry.get("similarity"):
                prof = {
                    "format": PROFILE_FORMAT,
                    "space": space.name,
                    "node": nid,
                    "mask": entry["mask"],
                    **entry.get("measure", {"criterion": tree.criterion}),
                    "edges": {
                        e: {"ops": entry["ops"][e], "similarity": sim}
                        | ({"lid": entry["lid"][e]} if e in entry.get("lid", {}) else {})
                        for e, sim in entry["similarity"].items()
                    },
                }
                node.profile = NodeProfile.from_json(space, prof, f"{source}: node {nid}")
            node.children = list(entry.get("children", []))
            tree.nodes[nid] = node
        for node in tree.nodes.values():
            for c in node.children:
                if c not in tree.nodes or tree.nodes[c].parent != node.id:
                    raise ValueError(
                        f"{source}: node {node.id!r} names a child {c!r} that does not point back"
                    )
        return tree

    def save(self, path: str | Path) -> Path:
        """Write the tree as JSON, atomically."""
        return write_json(path, self.to_json())

    @classmethod
    def load(cls, path: str | Path) -> PartitionTree:
        return cls.from_json(read_json(path), str(path))


def build_tree(
    supernet,
    batches: Sequence,
    rounds: int,
    criterion: str = "lid",
    *,
    tree: PartitionTree | None = None,
    lid_config=None,
    grad_config=None,
    split_config: SplitConfig | None = None,
    seed: int = 0,
    progress: Callable[[int], None] | None = None,
) -> PartitionTree:
    """Split every splittable leaf once per round, ``rounds`` times (2^R leaves at most).

    Every node is profiled on the same ``batches`` (a sequence, re-iterated per node) with
    the same supernet weights; the pipeline, which fine-tunes each sub-supernet between
    rounds (paper section 3.4), profiles and decides node by node instead.
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
                lid_config=lid_config,
                grad_config=grad_config,
                split_config=split_config,
                seed=seed,
                progress=progress,
            )
            decision = decide_split(prof)
            if decision is not None:
                tree.apply(decision)
    return tree


def forwards_per_node(mask: Mask, num_batches: int, root: Mask) -> int:
    """Forward passes that profiling one node takes (for progress bars)."""
    from naslid.lid import unsplit_edges

    return num_batches * sum(len(mask[e]) for e in unsplit_edges(mask, root))
