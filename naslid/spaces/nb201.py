"""The NAS-Bench-201 cell space (Dong & Yang, ICLR 2020).

A cell is a DAG of four nodes; each of the six edges ``j<-i`` carries one of five
operations. The canonical string lists the edges into node 1, 2, 3::

    |nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|

FLOPs and parameters follow the NAS-Bench-201 API on CIFAR-10 (C=16, N=5, 32x32 input):
multiply-adds of convolutions and the classifier (pooling is not counted), parameters of
convolutions, affine BatchNorm and the classifier, both in millions. They are computed in
closed form here and checked against the benchmark's table for all 15,625 cells in the tests.
"""

from __future__ import annotations

import functools
import re

import numpy as np

from naslid.spaces.base import Arch as _BaseArch
from naslid.spaces.base import Mask, SlotSpace

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
_C, _N, _HW, _CLASSES = 16, 5, 32, 10


def _stage_shapes(C: int = _C, hw: int = _HW) -> list[tuple[int, int]]:
    """(channels, spatial size) of the three stages."""
    return [(C, hw), (2 * C, hw // 2), (4 * C, hw // 4)]


def _fixed_flops(C: int = _C, hw: int = _HW, classes: int = _CLASSES) -> int:
    flops = hw * hw * 9 * 3 * C  # stem conv
    for (c, _), (c2, s2) in zip(_stage_shapes(C, hw)[:-1], _stage_shapes(C, hw)[1:]):
        # residual reduction: conv_a (3x3, stride 2), conv_b (3x3), shortcut 1x1 conv after avg-pool
        flops += s2 * s2 * 9 * c * c2 + s2 * s2 * 9 * c2 * c2 + s2 * s2 * c * c2
    return flops + 4 * C * classes + classes  # classifier with bias


def _fixed_params(C: int = _C, classes: int = _CLASSES) -> int:
    params = 9 * 3 * C + 2 * C  # stem conv + BN
    for c, c2 in ((C, 2 * C), (2 * C, 4 * C)):
        params += 9 * c * c2 + 2 * c2 + 9 * c2 * c2 + 2 * c2 + c * c2
    return params + 2 * 4 * C + 4 * C * classes + classes  # last BN, classifier


def _op_cost(op: str, C: int = _C, N: int = _N, hw: int = _HW) -> tuple[int, int]:
    """(FLOPs, params) of one edge's op summed over the 3N cells that repeat it."""
    k = {"nor_conv_1x1": 1, "nor_conv_3x3": 3}.get(op)
    if k is None:
        return 0, 0
    flops = sum(N * s * s * k * k * c * c for c, s in _stage_shapes(C, hw))
    params = sum(N * (k * k * c * c + 2 * c) for c, _ in _stage_shapes(C, hw))
    return flops, params


_OP_FLOPS = np.array([_op_cost(op)[0] for op in OPS], dtype=np.int64)
_OP_PARAMS = np.array([_op_cost(op)[1] for op in OPS], dtype=np.int64)


def flops(arch: Arch) -> float:
    """Multiply-adds in millions, NAS-Bench-201 API convention, CIFAR-10."""
    return float(_fixed_flops() + _OP_FLOPS[list(arch.ops)].sum()) / 1e6


def params(arch: Arch) -> float:
    """Parameters in millions, NAS-Bench-201 API convention, CIFAR-10."""
    return float(_fixed_params() + _OP_PARAMS[list(arch.ops)].sum()) / 1e6


# ------------------------------------------------------------ isomorphism
def _graph_key(arch: Arch) -> str:
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


@functools.cache
def _representatives() -> dict[str, Arch]:
    reps: dict[str, Arch] = {}
    for a in SPACE.all_archs():
        reps.setdefault(_graph_key(a), a)  # all_archs is lexicographic: the smallest wins
    return reps


class _NB201Space(SlotSpace):
    def flops(self, arch: Arch) -> float:
        return flops(arch)

    def params(self, arch: Arch) -> float:
        return params(arch)

    def canonical(self, arch: Arch) -> Arch:
        """The lexicographically smallest cell that computes the same function."""
        return _representatives()[_graph_key(arch)]


SPACE = _NB201Space(NAME, [OPS] * len(EDGES), Arch)

# Module-level API (DESIGN.md): the same names in every space module.
full_mask = SPACE.full_mask
mask_size = SPACE.mask_size
contains = SPACE.contains
all_archs = SPACE.all_archs
edit_distance = SPACE.edit_distance
neighbours = SPACE.neighbours
encode = SPACE.encode
canonical = SPACE.canonical


def sample(rng: np.random.Generator, n: int, mask: Mask | None = None) -> list[Arch]:
    """``n`` independent uniform draws (with replacement) from the cells inside ``mask``."""
    return SPACE.sample(rng, n, mask)


def from_str(text: str) -> Arch:
    return Arch.from_str(text)


def is_connected(arch: Arch) -> bool:
    """Whether some input-to-output path avoids ``none`` (341 of 15,625 cells have none)."""
    return _graph_key(arch) != "0"
