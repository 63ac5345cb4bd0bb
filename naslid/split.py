"""Splitting a supernet: similarity graphs, min-cut, partition score, the partition tree.

NAS-LID (He et al., AAAI 2023, section 3.3) turns the per-operation LID vectors of an edge
into a similarity graph (Eq. 5: ``s(a, b) = 1 / (||a - b||_2 + eps)``), cuts it in two with a
graph min-cut, scores the partition by the similarity kept inside the two groups (Eq. 6),
and splits the sub-supernet on the unsplit edge with the highest partition score. Repeating
this for every sub-supernet for R rounds gives 2^R sub-supernets, recorded as a tree.

The split criterion is pluggable -- ``lid`` (NAS-LID), ``gradient`` (GM-NAS, Hu et al. 2022,
:mod:`naslid.gradmatch`), ``random`` (a seeded random balanced bipartition) -- behind one entry
point, :func:`similarity_for_node`, so the pipeline never cares which one runs. Deciding a
node's split from its profile (:func:`decide_split`) is a pure function: the pipeline can
profile and decide the nodes of one round in parallel and merge the decisions into the
tree (:meth:`PartitionTree.apply`).
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

CRITERIA = ("lid", "gradient", "random")
METRICS = ("euclidean", "cosine", "pearson")
TREE_FORMAT = "naslid.partition_tree/1"
PROFILE_FORMAT = "naslid.node_profile/1"
DECISION_FORMAT = "naslid.split_decision/1"
_EXHAUSTIVE_MAX = 16  # largest graph whose min-cut with negative weights is enumerated


@dataclass
class SplitConfig:
    """Settings of the split (paper defaults)."""

    criterion: str = "lid"
    """``lid`` (NAS-LID), ``gradient`` (GM-NAS) or ``random``."""
    metric: str = "euclidean"
    """LID-vector similarity: ``euclidean`` (paper Eq. 5), ``cosine`` or ``pearson``."""
    eps: float = 1e-6
    """Eq. 5's stabiliser: identical LID vectors get similarity 1/eps = 1e6 instead of inf,
    more than any pair of vectors further apart than eps (LIDs are O(1)-O(100))."""


# --------------------------------------------------------------------------- maths
def similarity_matrix(
    vectors: np.ndarray, metric: str = "euclidean", eps: float = 1e-6
) -> np.ndarray:
    """Pairwise similarity of the rows of ``vectors [m, L]`` (the LID vectors of m operations).

    ``euclidean``: ``1 / (||a - b||_2 + eps)`` (paper Eq. 5; the diagonal is 1/eps);
    ``cosine``: ``a.b / (|a||b|)``; ``pearson``: the correlation of the two vectors (a
    constant vector correlates 0 with everything but itself). Cosine and Pearson can be
    negative; :func:`min_cut` handles that.
    """
    v = np.asarray(vectors, dtype=np.float64)
    if v.ndim != 2 or v.shape[0] < 1:
        raise ValueError(f"vectors: expected a 2-d array [m, L], got shape {v.shape}")
    if not np.isfinite(v).all():
        raise ValueError("vectors: not all finite")
    if metric == "euclidean":
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


def partition_score(
    similarity: np.ndarray, group_a: Sequence[int], group_b: Sequence[int]
) -> float:
    """Sum of the similarities inside the two groups, each pair once (paper Eq. 6)."""
    s = _check_similarity(similarity)
    return float(
        sum(s[i, j] for g in (group_a, group_b) for i, j in itertools.combinations(sorted(g), 2))
    )


def cut_value(similarity: np.ndarray, group_a: Sequence[int], group_b: Sequence[int]) -> float:
    """Sum of the similarities between the two groups (the weight of the cut)."""
    s = _check_similarity(similarity)
    return float(s[np.ix_(list(group_a), list(group_b))].sum())


def min_cut(similarity: np.ndarray) -> tuple[list[int], list[int], float]:
    """Global minimum cut of the similarity graph: ``(group_a, group_b, partition_score)``.

    The graph is complete and undirected, the weight of edge (i, j) being
    ``similarity[i, j]`` (the diagonal is ignored). With non-negative weights, the
    Stoer-Wagner algorithm (``networkx.stoer_wagner``) finds the cut; with negative weights
    (cosine or Pearson similarities), where Stoer-Wagner does not apply, the 2^(m-1) - 1
    bipartitions are enumerated (exact; m <= 16). ``group_a`` holds index 0; both sorted. The
    score is the partition score of Eq. 6 (similarity kept inside the groups). A 2-node graph
    splits 1 + 1 with score 0.
    """
    s = _check_similarity(similarity)
    m = s.shape[0]
    if m < 2:
        raise ValueError(f"similarity: a min-cut needs at least 2 nodes, got {m}")
    off = s[~np.eye(m, dtype=bool)]
    if (off >= 0).all():
        graph = nx.Graph()
        graph.add_nodes_from(range(m))
        graph.add_weighted_edges_from(
            (i, j, s[i, j]) for i, j in itertools.combinations(range(m), 2)
        )
        _, (part_a, part_b) = nx.stoer_wagner(graph)
    elif m <= _EXHAUSTIVE_MAX:
        part_a, part_b = _exhaustive_min_cut(s)
    else:
        raise ValueError(
            f"similarity: negative weights and {m} > {_EXHAUSTIVE_MAX} nodes: no exact min-cut"
        )
    group_a, group_b = sorted(part_a), sorted(part_b)
    if 0 not in group_a:
        group_a, group_b = group_b, group_a
    return group_a, group_b, partition_score(s, group_a, group_b)


def _exhaustive_min_cut(s: np.ndarray) -> tuple[list[int], list[int]]:
    """The bipartition of least cut weight among all 2^(m-1) - 1 (node 0 stays in group a)."""
    m = s.shape[0]
    best, best_val = None, math.inf
    for bits in range(1 << (m - 1)):
        a = [0] + [i for i in range(1, m) if bits >> (i - 1) & 1]
        if len(a) == m:
            continue
        b = [i for i in range(m) if i not in a]
        val = float(s[np.ix_(a, b)].sum())
        if val < best_val - 1e-12:
            best, best_val = (a, b), val
    return best


def normalised_dispersion(similarity: np.ndarray) -> float:
    """Separability of an edge's operations: ``sqrt(mean((s_ij - s_mean)^2)) / |s_mean|``.

    Taken over the pairs i < j. It stands in for the separability score of the paper's
    Eq. 7, whose formula did not survive in our copy: pairwise similarities that vary a lot
    relative to their mean mean that the operations fall into distinct groups. ``nan`` with
    fewer than two operations or a mean of zero; 0 for exactly two (one pair).
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


# --------------------------------------------------------------------------- node profiles
def _floats(x: np.ndarray) -> list:
    return np.asarray(x, dtype=np.float64).tolist()


def _json_float(x: float) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


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


def similarity_for_node(
    criterion: str,
    supernet,
    mask: Mask | None,
    batches: Iterable,
    *,
    node_id: str = "r",
    edges: Sequence[int] | None = None,
    lid_config=None,
    grad_config=None,
    split_config: SplitConfig | None = None,
    seed: int = 0,
    progress: Callable[[int], None] | None = None,
) -> NodeProfile:
    """The similarity matrix of every unsplit edge of ``mask``, whichever criterion runs.

    ``lid``: :func:`naslid.lid.profile` (forward only) then :func:`similarity_matrix`;
    ``gradient``: :func:`naslid.gradmatch.gradient_similarity` (needs ``(x, y)`` batches);
    ``random``: a seeded random balanced bipartition per edge as a block matrix (no data,
    no network run). Batches are drawn at random from all classes by the caller.
    """
    from naslid import gradmatch, lid  # torch-heavy: imported where used

    cfg = split_config or SplitConfig()
    space = supernet.space
    mask = space.check_mask(
        mask if mask is not None else getattr(supernet, "mask", space.full_mask())
    )
    edge_list = lid.unsplit_edges(mask) if edges is None else [int(e) for e in edges]
    if criterion == "lid":
        lcfg = lid_config or lid.LIDConfig()
        vecs = lid.profile(
            supernet, batches, mask, edges=edge_list, config=lcfg, seed=seed, progress=progress
        )
        out = {
            e: EdgeProfile(mask[e], similarity_matrix(v, cfg.metric, cfg.eps), v)
            for e, v in vecs.items()
        }
        conf = {**vars(lcfg), "metric": cfg.metric, "eps": cfg.eps}
    elif criterion == "gradient":
        gcfg = grad_config or gradmatch.GradMatchConfig()
        sims = gradmatch.gradient_similarity(
            supernet, batches, mask, edges=edge_list, config=gcfg, seed=seed, progress=progress
        )
        out = {e: EdgeProfile(mask[e], s) for e, s in sims.items()}
        conf = dict(vars(gcfg))
    elif criterion == "random":
        rng = _node_rng(seed, node_id)
        out = {}
        for e in edge_list:
            group_a, _ = random_bipartition(len(mask[e]), rng)
            out[e] = EdgeProfile(mask[e], block_similarity(len(mask[e]), group_a))
        conf = {}
    else:
        raise ValueError(f"criterion: expected one of {', '.join(CRITERIA)}, got {criterion!r}")
    return NodeProfile(criterion, mask, out, node_id, seed, conf)


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
    separability: dict[int, float]
    profile: NodeProfile

    def to_json(self, space: SlotSpace) -> dict:
        names = space.slot_options[self.edge]
        return {
            "format": DECISION_FORMAT,
            "node": self.node_id,
            "edge": self.edge,
            "groups": [[names[o] for o in g] for g in self.groups],
            "scores": {str(e): float(v) for e, v in self.scores.items()},
            "separability": {str(e): _json_float(v) for e, v in self.separability.items()},
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
            {int(e): float(v) for e, v in data["scores"].items()},
            {
                int(e): (math.nan if v is None else float(v))
                for e, v in data["separability"].items()
            },
            NodeProfile.from_json(space, data["profile"], f"{source}: profile"),
        )


def decide_split(profile: NodeProfile, node_id: str | None = None) -> SplitDecision | None:
    """Split a node given its per-edge similarities (pure; ``None`` when nothing can split).

    Every profiled edge is cut by :func:`min_cut` and scored by its partition score (Eq. 6);
    the node splits on the edge with the *highest* score (paper section 3.3; ties: the lowest
    edge index). The public reference code ranks the edges differently; we follow the paper.
    The random criterion picks the edge uniformly at random (seeded by the profile's seed and
    the node id) and splits it by its random balanced bipartition.
    """
    node_id = profile.node_id if node_id is None else node_id
    candidates = {e: p for e, p in sorted(profile.edges.items()) if len(p.options) > 1}
    if not candidates:
        return None
    cuts, scores, separability = {}, {}, {}
    for e, prof in candidates.items():
        if prof.similarity.shape != (len(prof.options), len(prof.options)):
            raise ValueError(
                f"profile: edge {e} has a {prof.similarity.shape} similarity for {len(prof.options)} ops"
            )
        group_a, group_b, score = min_cut(prof.similarity)
        cuts[e] = (group_a, group_b)
        scores[e] = score
        separability[e] = normalised_dispersion(prof.similarity)
    if profile.criterion == "random":
        edges = list(candidates)
        edge = edges[int(_node_rng(profile.seed + 1, node_id).integers(len(edges)))]
    else:
        edge = max(candidates, key=lambda e: (scores[e], -e))
    opts = candidates[edge].options
    groups = tuple(tuple(opts[i] for i in g) for g in cuts[edge])
    return SplitDecision(node_id, edge, groups, scores, separability, profile)  # type: ignore[arg-type]


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

    def splittable(self) -> list[Node]:
        """Leaves with at least one unsplit edge (a slot allowing more than one option)."""
        return [n for n in self.leaves() if any(len(a) > 1 for a in n.mask)]

    def apply(self, decision: SplitDecision) -> tuple[str, str]:
        """Split the leaf ``decision.node_id`` as decided; returns the two children's ids."""
        node = self.node(decision.node_id)
        if not node.is_leaf:
            raise ValueError(f"decision: node {node.id!r} is already split")
        if decision.profile.mask != node.mask:
            raise ValueError(
                f"decision: the profile of node {node.id!r} was taken on a different mask"
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
                "scores": {str(e): float(v) for e, v in n.scores.items()},
                "separability": {str(e): _json_float(v) for e, v in n.separability.items()},
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
            node.scores = {int(e): float(v) for e, v in entry.get("scores", {}).items()}
            node.separability = {
                int(e): (math.nan if v is None else float(v))
                for e, v in entry.get("separability", {}).items()
            }
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
    for _ in range(rounds):
        for leaf in tree.splittable():
            prof = similarity_for_node(
                criterion,
                supernet,
                leaf.mask,
                batches,
                node_id=leaf.id,
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


def forwards_per_node(mask: Mask, num_batches: int) -> int:
    """Forward passes that profiling one node takes (for progress bars)."""
    return num_batches * sum(len(a) for a in mask if len(a) > 1)
