"""The partition tree: the sub-supernets of R rounds of splitting, as a binary tree of masks.

NAS-LID (He et al., AAAI 2023, section 3.3) splits every sub-supernet once per round on an
edge none of its ancestors split ("Next time, we will only split the unpartitioned
layers"); R rounds give 2^R sub-supernets whose masks differ on R distinct edges. The tree
records each split (edge, groups, what the criterion measured) and its JSON is the
pipeline's record of the partition; a node splits as a :class:`SplitDecision` says, which
:func:`naslid.split.decide_split` makes. Node ids: :mod:`naslid.node_ids`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from naslid import criteria
from naslid.criteria import DEFAULT_CRITERION
from naslid.io import read_json, write_json
from naslid.lid import unsplit_edges
from naslid.node_ids import ROOT, check_node_id, child_ids, depth, parent_id
from naslid.node_profile import (
    PROFILE_FORMAT,
    NodeProfile,
    check_format,
    edge_map_from_json,
    edge_map_to_json,
)
from naslid.spaces.base import Arch, Mask, SlotSpace

TREE_FORMAT = "naslid.partition_tree/1"
DECISION_FORMAT = "naslid.split_decision/1"


def groups_to_json(space: SlotSpace, edge: int, groups: Sequence[Sequence[int]]) -> list:
    """A split's groups of op indices as lists of the edge's op names."""
    names = space.slot_options[edge]
    return [[names[o] for o in g] for g in groups]


def groups_from_json(space: SlotSpace, edge: int, groups: Sequence[Sequence[str]]) -> tuple:
    """The inverse of :func:`groups_to_json`."""
    names = space.slot_options[edge]
    return tuple(tuple(names.index(n) for n in g) for g in groups)


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
    edge_rule: str = ""
    """The rule that ranked the edges (``partition``, ``separability``, ``cross_distance``,
    ``random``; empty in decisions written before it was recorded)."""

    def to_json(self, space: SlotSpace) -> dict:
        return {
            "format": DECISION_FORMAT,
            "node": self.node_id,
            "edge": self.edge,
            "groups": groups_to_json(space, self.edge, self.groups),
            "scores": edge_map_to_json(self.scores),
            "partition_scores": edge_map_to_json(self.partition_scores),
            "separability": edge_map_to_json(self.separability),
            "edge_rule": self.edge_rule,
            "profile": self.profile.to_json(space),
        }

    @classmethod
    def from_json(
        cls, space: SlotSpace, data: Mapping[str, Any], source: str = "decision"
    ) -> SplitDecision:
        check_format(data, DECISION_FORMAT, source)
        edge = int(data["edge"])
        return cls(
            data["node"],
            edge,
            groups_from_json(space, edge, data["groups"]),  # type: ignore[arg-type]
            edge_map_from_json(data["scores"]),
            edge_map_from_json(data["separability"]),
            NodeProfile.from_json(space, data["profile"], f"{source}: profile"),
            edge_map_from_json(data.get("partition_scores", {})),
            str(data.get("edge_rule", "")),
        )


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
    edge_rule: str = ""
    profile: NodeProfile | None = None
    children: list[str] = field(default_factory=list)

    @property
    def is_leaf(self) -> bool:
        return not self.children


class PartitionTree:
    """The sub-supernets of R rounds of splitting, as a binary tree of masks.

    Node ids are paths (:mod:`naslid.node_ids`): the root is ``r``, the children of ``x``
    are ``x0`` (the group holding the edge's lowest option) and ``x1``. The leaves' masks
    are disjoint and cover the root's mask, so every architecture belongs to exactly one leaf.
    """

    def __init__(
        self, space: SlotSpace, mask: Mask | None = None, criterion: str = DEFAULT_CRITERION
    ):
        self.space = space
        self.criterion = criteria.criterion(criterion).name  # refuses an unknown name
        root_mask = space.check_mask(mask if mask is not None else space.full_mask())
        self.root = ROOT
        self.nodes: dict[str, Node] = {ROOT: Node(ROOT, None, 0, root_mask)}

    def node(self, node_id: str) -> Node:
        try:
            return self.nodes[node_id]
        except KeyError:
            raise KeyError(f"node: no node {node_id!r} in the partition tree") from None

    def leaves(self) -> list[Node]:
        """The current sub-supernets, in id order."""
        return [n for _, n in sorted(self.nodes.items()) if n.is_leaf]

    def leaf_for(self, arch: Arch) -> Node:
        """The leaf whose mask holds ``arch`` (the leaves' masks are disjoint)."""
        if not self.space.contains(self.nodes[self.root].mask, arch):
            raise ValueError(f"arch: {arch} lies outside the tree's root mask")
        return self.nodes[self.space.owner({n.id: n.mask for n in self.leaves()}, arch)]

    def candidates(self, node_id: str) -> list[int]:
        """The edges of a node that were never partitioned: its allowed set still equals the
        root's (section 3.3; :func:`naslid.lid.unsplit_edges`). Each round thus splits a leaf
        on an edge none of its ancestors split: R rounds give 2^R leaves whose masks differ
        on R distinct edges."""
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
        node.edge_rule = decision.edge_rule
        node.profile = decision.profile
        ids = child_ids(node.id)
        for child_id, group in zip(ids, (a, b)):
            mask = tuple(
                group if e == decision.edge else allowed for e, allowed in enumerate(node.mask)
            )
            self.nodes[child_id] = Node(child_id, node.id, node.depth + 1, mask)
            node.children.append(child_id)
        return ids

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
                "scores": edge_map_to_json(n.scores),
                "partition_scores": edge_map_to_json(n.partition_scores),
                "edge_rule": n.edge_rule,
                "separability": edge_map_to_json(n.separability),
                "similarity": {},
                "children": list(n.children),
            }
            if n.groups is not None:
                entry["groups"] = groups_to_json(self.space, n.split_edge, n.groups)
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

        if not isinstance(data, Mapping):
            raise ValueError(f"{source}: expected a partition tree (a JSON object)")
        check_format(data, TREE_FORMAT, source)
        space = spaces.get(data["space"]).SPACE
        nodes_json = data["nodes"]
        if not isinstance(nodes_json, Mapping):
            raise ValueError(f"{source}: field 'nodes' is not an object")
        root = data.get("root", ROOT)
        if root != ROOT or root not in nodes_json:
            raise ValueError(f"{source}: field 'nodes' has no root {ROOT!r}")
        try:
            root_mask = space.mask_from_json(nodes_json[root]["mask"])
        except (ValueError, TypeError, KeyError) as exc:
            raise ValueError(f"{source}: node {root!r}: {str(exc).strip(chr(39))}") from None
        tree = cls(space, root_mask, data.get("criterion", DEFAULT_CRITERION))
        tree.root, tree.nodes = root, {}
        for nid, entry in nodes_json.items():
            _check_entry(nid, entry, f"{source}: node")
            try:
                mask = space.mask_from_json(entry["mask"])
            except (ValueError, TypeError, KeyError) as exc:  # which tree, which node
                raise ValueError(f"{source}: node {nid!r}: {str(exc).strip(chr(39))}") from None
            node = Node(nid, entry["parent"], int(entry["depth"]), mask)
            if entry.get("split_edge") is not None:
                node.split_edge = int(entry["split_edge"])
                node.groups = groups_from_json(space, node.split_edge, entry["groups"])
            node.scores = edge_map_from_json(entry.get("scores", {}))
            node.partition_scores = edge_map_from_json(entry.get("partition_scores", {}))
            node.edge_rule = str(entry.get("edge_rule", ""))
            node.separability = edge_map_from_json(entry.get("separability", {}))
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
            _check_split(tree, node, source)
        return tree

    def save(self, path: str | Path) -> Path:
        """Write the tree as JSON, atomically."""
        return write_json(path, self.to_json())

    @classmethod
    def load(cls, path: str | Path) -> PartitionTree:
        return cls.from_json(read_json(path, expect=dict), str(path))


def _check_entry(nid: Any, entry: Any, source: str) -> None:
    """A node's id is a path from the root (:mod:`naslid.node_ids`): its ``id``, ``parent``,
    ``depth`` and ``children`` must say the same, so an id never names another place."""
    check_node_id(nid, source)
    if not isinstance(entry, Mapping):
        raise ValueError(f"{source} {nid}: not an object")
    if entry.get("id", nid) != nid:
        raise ValueError(f"{source} {nid}: field 'id' is {entry.get('id')!r}")
    if entry.get("parent") != parent_id(nid):
        raise ValueError(
            f"{source} {nid}: field 'parent' is {entry.get('parent')!r}, expected {parent_id(nid)!r}"
        )
    if entry.get("depth") != depth(nid):
        raise ValueError(
            f"{source} {nid}: field 'depth' is {entry.get('depth')!r}, expected {depth(nid)}"
        )
    children = entry.get("children", [])
    if children and list(children) != list(child_ids(nid)):
        raise ValueError(
            f"{source} {nid}: field 'children' is {children!r}, expected {list(child_ids(nid))}"
        )


def _check_split(tree: PartitionTree, node: Node, source: str) -> None:
    """A split node's two children hold its mask but on the split edge, where their groups
    divide its options (disjoint, covering): then the leaves are disjoint and cover the root."""
    if not node.children:
        return
    edge = node.split_edge
    if edge is None:
        raise ValueError(f"{source}: node {node.id!r} has children but no 'split_edge'")
    a, b = (tree.nodes[c].mask for c in node.children)
    for e, allowed in enumerate(node.mask):
        if e != edge and not (tuple(a[e]) == tuple(b[e]) == tuple(allowed)):
            raise ValueError(
                f"{source}: children of node {node.id!r} differ from it on edge {e}, "
                f"which it did not split"
            )
    ga, gb = set(a[edge]), set(b[edge])
    if ga & gb or ga | gb != set(node.mask[edge]) or not ga or not gb:
        raise ValueError(
            f"{source}: children of node {node.id!r} do not divide the options of edge {edge} "
            "(their masks overlap or leave some out)"
        )
