"""The NAS-Bench-201 cell space (Dong & Yang, ICLR 2020).

A cell is a DAG of four nodes; each of the six edges ``j<-i`` carries one of five
operations. The canonical string lists the edges into node 1, 2, 3::

    |nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|

FLOPs and parameters follow the NAS-Bench-201 API (C=16, N=5; CIFAR-10 32x32 by default,
CIFAR-100 and ImageNet16-120 via ``dataset``):
multiply-adds of convolutions and the classifier (pooling is not counted), parameters of
convolutions, affine BatchNorm and the classifier, both in millions. They are computed in
closed form here and checked against the benchmark's table for all 15,625 cells in the tests.

Isomorphic cells (:data:`ISOMORPHISMS`) are one architecture: ``canonical`` maps a cell to its
class representative, by default under NAS-Bench-201's standard rule (6,466 unique cells).
"""

from __future__ import annotations

import functools
import re

import numpy as np

from naslid.spaces.base import Arch as _BaseArch
from naslid.spaces.base import SlotSpace, module_api

NAME = "nb201"
OPS: tuple[str, ...] = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
EDGES: tuple[tuple[int, int], ...] = ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))
"""(to, from) for each of the six edges, in the canonical string's order."""
NUM_NODES = 4

_TOKEN = re.compile(r"^([a-z0-9_]+)~(\d+)$")


class Arch(_BaseArch):
    """A NAS-Bench-201 cell: ``ops[e]`` is the index in :data:`OPS` of edge ``EDGES[e]``."""

    def __str__(self) -> str:
        parts, e = [], 0
        for node in range(1, NUM_NODES):
            tokens = []
            for src in range(node):
                tokens.append(f"{OPS[self.ops[e]]}~{src}")
                e += 1
            parts.append("|" + "|".join(tokens) + "|")
        return "+".join(parts)

    @classmethod
    def from_str(cls, text: str) -> Arch:
        text = text.strip()
        nodes = text.split("+")
        if len(nodes) != NUM_NODES - 1:
            raise ValueError(
                f"arch string {text!r}: expected 3 '+'-separated nodes, got {len(nodes)}"
            )
        ops = []
        for node, part in enumerate(nodes, start=1):
            if not (part.startswith("|") and part.endswith("|")):
                raise ValueError(f"arch string {text!r}: node {node} must be enclosed in '|'")
            tokens = part[1:-1].split("|")
            if len(tokens) != node:
                raise ValueError(
                    f"arch string {text!r}: node {node} needs {node} inputs, got {len(tokens)}"
                )
            for src, token in enumerate(tokens):
                m = _TOKEN.match(token)
                if not m or m.group(1) not in OPS or int(m.group(2)) != src:
                    raise ValueError(
                        f"arch string {text!r}: bad edge {token!r} (expected OP~{src}, OP in {OPS})"
                    )
                ops.append(OPS.index(m.group(1)))
        return cls(tuple(ops))

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(OPS[o] for o in self.ops)


# --------------------------------------------------------------- cost model
CHANNELS, CELLS_PER_STAGE = 16, 5
"""NAS-Bench-201's network (Dong & Yang 2020): 16 channels in the first stage,
5 cells per stage; the API's costs are this network's, and it is the supernet's default."""
DATASETS: dict[str, tuple[int, int]] = {
    "cifar10": (32, 10),
    "cifar100": (32, 100),
    "ImageNet16-120": (16, 120),
}
"""Input size and classes of the three NAS-Bench-201 data sets (the API's names). The network is
the same on all three; only the spatial size of the feature maps and the classifier change, so
ImageNet16-120's cells cost about a quarter of CIFAR's FLOPs. CIFAR-10's costs are checked
against the shared table for all 15,625 cells; the other two follow from the same formula."""


def _dataset(dataset: str) -> tuple[int, int]:
    try:
        return DATASETS[dataset]
    except KeyError:
        raise ValueError(
            f"dataset {dataset!r}: expected one of {', '.join(DATASETS)} (NAS-Bench-201 API names)"
        ) from None


def _stage_shapes(C: int, hw: int) -> list[tuple[int, int]]:
    """(channels, spatial size) of the three stages."""
    return [(C, hw), (2 * C, hw // 2), (4 * C, hw // 4)]


def _fixed_flops(C: int, hw: int, classes: int) -> int:
    flops = hw * hw * 9 * 3 * C  # stem conv
    for (c, _), (c2, s2) in zip(_stage_shapes(C, hw)[:-1], _stage_shapes(C, hw)[1:]):
        # residual reduction: conv_a (3x3, stride 2), conv_b (3x3), shortcut 1x1 conv after avg-pool
        flops += s2 * s2 * 9 * c * c2 + s2 * s2 * 9 * c2 * c2 + s2 * s2 * c * c2
    return flops + 4 * C * classes + classes  # classifier with bias


def _fixed_params(C: int, classes: int) -> int:
    params = 9 * 3 * C + 2 * C  # stem conv + BN
    for c, c2 in ((C, 2 * C), (2 * C, 4 * C)):
        params += 9 * c * c2 + 2 * c2 + 9 * c2 * c2 + 2 * c2 + c * c2
    return params + 2 * 4 * C + 4 * C * classes + classes  # last BN, classifier


def _op_cost(op: str, C: int, N: int, hw: int) -> tuple[int, int]:
    """(FLOPs, params) of one edge's op summed over the 3N cells that repeat it."""
    k = {"nor_conv_1x1": 1, "nor_conv_3x3": 3}.get(op)
    if k is None:
        return 0, 0
    flops = sum(N * s * s * k * k * c * c for c, s in _stage_shapes(C, hw))
    params = sum(N * (k * k * c * c + 2 * c) for c, _ in _stage_shapes(C, hw))
    return flops, params


@functools.cache
def _cost_tables(dataset: str) -> tuple[int, int, np.ndarray, np.ndarray]:
    hw, classes = _dataset(dataset)
    costs = [_op_cost(op, CHANNELS, CELLS_PER_STAGE, hw) for op in OPS]
    return (
        _fixed_flops(CHANNELS, hw, classes),
        _fixed_params(CHANNELS, classes),
        np.array([c[0] for c in costs], dtype=np.int64),
        np.array([c[1] for c in costs], dtype=np.int64),
    )


def flops(arch: Arch, dataset: str = "cifar10") -> float:
    """Multiply-adds in millions, NAS-Bench-201 API convention (default CIFAR-10)."""
    fixed, _, op_flops, _ = _cost_tables(dataset)
    return float(fixed + op_flops[list(arch.ops)].sum()) / 1e6


def params(arch: Arch, dataset: str = "cifar10") -> float:
    """Parameters in millions, NAS-Bench-201 API convention (default CIFAR-10)."""
    _, fixed, _, op_params = _cost_tables(dataset)
    return float(fixed + op_params[list(arch.ops)].sum()) / 1e6


# ------------------------------------------------------------ isomorphism
ISOMORPHISMS: tuple[str, ...] = ("standard", "functional", "none")
"""Rules that decide when two cells are the same architecture:

- ``standard`` (default): NAS-Bench-201's own de-duplication, ``CellStructure.to_unique_str(
  consider_zero=True)`` of the benchmark's public code: 6,466 unique cells, the count the
  NAS-Bench-201 paper reports. A ``none`` edge (or an edge from a node that is exactly zero)
  becomes a ``#`` term that stays in the node's sorted sum; ``skip_connect`` passes its input on.
- ``functional``: a coarser key (:func:`_functional_key`): equal keys, equal computation, with
  zero terms dropped and skip sums flattened. 4,930 classes; up to 460 cells share a class.
- ``none``: every cell is its own class (15,625).
"""


def _standard_key(arch: Arch) -> str:
    """NAS-Bench-201's ``to_unique_str(consider_zero=True)``: equal keys, isomorphic cells."""
    nodes = ["0"]
    for dst in range(1, NUM_NODES):
        terms = []
        for e, (to, src) in enumerate(EDGES):
            if to != dst:
                continue
            op = OPS[arch.ops[e]]
            if op == "none" or nodes[src] == "#":
                terms.append("#")
            elif op == "skip_connect":
                terms.append(nodes[src])
            else:
                terms.append(f"({nodes[src]})@{op}")
        nodes.append("+".join(sorted(terms)))
    return nodes[NUM_NODES - 1]


def _functional_key(arch: Arch) -> str:
    """The computation the cell performs, as a string: equal strings, equal computation.

    Each node is a multiset of terms (a sum is commutative and associative, so a sum passed on
    through ``skip_connect`` is flattened into the receiving node's sum). ``none`` edges, and
    edges whose source computes nothing, are dropped; nodes that do not feed the output do not
    appear. Cells with no input-to-output path all map to ``"0"``.
    """
    val: list[list[str]] = [["x"]]
    for dst in range(1, NUM_NODES):
        terms: list[str] = []
        for e, (to, src) in enumerate(EDGES):
            op = OPS[arch.ops[e]]
            if to != dst or op == "none" or not val[src]:
                continue
            if op == "skip_connect":
                terms.extend(val[src])
            else:
                terms.append(f"{op}(" + "+".join(val[src]) + ")")
        val.append(sorted(terms))
    return "+".join(val[3]) if val[3] else "0"


def iso_key(arch: Arch, rule: str = "standard") -> str:
    """The isomorphism class of ``arch`` under ``rule`` (see :data:`ISOMORPHISMS`)."""
    if rule == "standard":
        return _standard_key(arch)
    if rule == "functional":
        return _functional_key(arch)
    if rule == "none":
        return str(arch)
    raise ValueError(f"isomorphism {rule!r}: expected one of {', '.join(ISOMORPHISMS)}")


@functools.cache
def _classes(rule: str) -> tuple[dict[tuple[int, ...], Arch], dict[Arch, tuple[Arch, ...]]]:
    """Per cell its representative (the lexicographically smallest member of its class), and
    per representative every member of the class in lexicographic order."""
    members: dict[str, list[Arch]] = {}
    for a in SPACE.all_archs():  # lexicographic: the first member met is the smallest
        members.setdefault(iso_key(a, rule), []).append(a)
    rep, classes = {}, {}
    for group in members.values():
        classes[group[0]] = tuple(group)
        for a in group:
            rep[a.ops] = group[0]
    return rep, classes


class _NB201Space(SlotSpace):
    isomorphisms = ISOMORPHISMS
    cost_datasets = tuple(DATASETS)

    def flops(self, arch: Arch, dataset: str = "cifar10") -> float:
        return flops(arch, dataset)

    def params(self, arch: Arch, dataset: str = "cifar10") -> float:
        return params(arch, dataset)

    def canonical(self, arch: Arch, rule: str | None = None) -> Arch:
        """The lexicographically smallest cell of the arch's class under ``rule`` (None: the
        space's default, NAS-Bench-201's standard isomorphism)."""
        rule = rule or self.isomorphisms[0]
        if rule == "none":
            return self.arch_type(tuple(arch.ops))
        iso_key(arch, rule)  # validates the rule
        return _classes(rule)[0][tuple(arch.ops)]

    def class_members(self, arch: Arch, rule: str | None = None) -> tuple[Arch, ...]:
        """Every cell isomorphic to ``arch`` under ``rule`` (lexicographic order; None: the
        space's default rule)."""
        rule = rule or self.isomorphisms[0]
        if rule == "none":
            return (self.arch_type(tuple(arch.ops)),)
        return _classes(rule)[1][self.canonical(arch, rule)]

    def num_classes(self, rule: str | None = None) -> int:
        """Classes in the whole space: 6,466 (standard), 4,930 (functional), 15,625 (none)."""
        rule = rule or self.isomorphisms[0]
        return self.mask_size() if rule == "none" else len(_classes(rule)[1])

    def is_connected(self, arch: Arch) -> bool:
        """Whether some input-to-output path avoids ``none`` (341 of 15,625 cells have none)."""
        return _functional_key(arch) != "0"

    SHORT_OPS = {
        "skip_connect": "skip",
        "nor_conv_1x1": "conv1x1",
        "nor_conv_3x3": "conv3x3",
        "avg_pool_3x3": "pool3x3",
    }
    """Short names of the operations for crowded labels; ``none`` is short already."""

    def slot_label(self, slot: int) -> str:
        """``e3 (0→3)``: the edge's index and the nodes it joins (from → to)."""
        to, src = EDGES[slot]
        return f"e{slot} ({src}→{to})"

    def short_op(self, name: str) -> str:
        return self.SHORT_OPS.get(name, name)


SPACE = _NB201Space(NAME, [OPS] * len(EDGES), Arch)

__getattr__ = module_api(SPACE, __name__)
"""The module-level functions, the same in every space module (``base.MODULE_API``)."""
