"""What a split criterion measured on one (sub-)supernet, and its JSON.

A :class:`NodeProfile` holds one :class:`EdgeProfile` per split candidate -- the edge's
options, their similarity matrix (NAS-LID Eq. 5, or GM-NAS's gradient cosine) and, for
LID, the layer-wise LID vectors (section 3.2) -- whichever criterion of
:mod:`naslid.criteria` measured it. The per-edge number maps and the format check here are
shared by the other split records (:class:`naslid.split.SplitDecision`,
:class:`naslid.partition.PartitionTree`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from naslid.io import read_json, write_json
from naslid.node_ids import ROOT, check_node_id
from naslid.spaces.base import Mask, SlotSpace

PROFILE_FORMAT = "naslid.node_profile/1"


def check_format(data: Mapping[str, Any], expected: str, source: str) -> None:
    """Refuse a record whose ``format`` field is not ``expected``, naming the field."""
    if data.get("format") != expected:
        raise ValueError(
            f"{source}: field 'format' is {data.get('format')!r}, expected {expected!r}"
        )


def _floats(x: np.ndarray) -> list:
    return np.asarray(x, dtype=np.float64).tolist()


def _json_float(x: float) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def edge_map_to_json(values: Mapping[int, float]) -> dict[str, float | None]:
    """``{edge: value}`` for JSON: string keys, non-finite values as null."""
    return {str(e): _json_float(v) for e, v in values.items()}


def edge_map_from_json(values: Mapping[str, float | None]) -> dict[int, float]:
    """The inverse of :func:`edge_map_to_json` (null back to ``nan``)."""
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
    node_id: str = ROOT
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
        check_format(data, PROFILE_FORMAT, source)
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
            check_node_id(data.get("node", ROOT), f"{source}: field 'node'"),
            int(data.get("seed", 0)),
            data.get("config", {}),
        )

    def save(self, path: str | Path, space: SlotSpace) -> Path:
        return write_json(path, self.to_json(space))

    @classmethod
    def load(cls, path: str | Path, space: SlotSpace) -> NodeProfile:
        return cls.from_json(space, read_json(path), str(path))
