"""Node ids of the partition tree: paths from the root.

The root is ``r``; the children of ``x`` are ``x0`` (the group holding the split edge's
lowest option) and ``x1``. After R rounds of splitting every node (NAS-LID section 3.3:
every sub-supernet splits once per round) the leaves are the ``2^R`` ids of depth R,
``r`` followed by R binary digits. Every module that names nodes -- the tree, the
pipeline's fan-out, the fine-tuning of a child from its parent -- derives them here.
"""

from __future__ import annotations

import re

ROOT = "r"
MAX_DEPTH = 32
"""Deeper trees than this are refused (2^32 leaves: far beyond any run)."""
_PATTERN = re.compile(rf"{ROOT}[01]{{0,{MAX_DEPTH}}}")


def check_node_id(value: object, source: str) -> str:
    """``value`` if it is a node id (``r`` and at most :data:`MAX_DEPTH` binary digits);
    else one line naming ``source``. Node ids become folder names (``leaves/<id>``), so this
    is checked wherever one is read: ``../x``, ``/abs`` or ``a;b`` never reach a path."""
    if not isinstance(value, str) or not _PATTERN.fullmatch(value):
        raise ValueError(
            f"{source}: {value!r} is not a node id ({ROOT!r} followed by at most {MAX_DEPTH} "
            "binary digits)"
        )
    return value


def child_ids(node: str) -> tuple[str, str]:
    """The ids of ``node``'s two children."""
    return node + "0", node + "1"


def parent_id(node: str) -> str | None:
    """The id of ``node``'s parent; ``None`` for the root."""
    return None if node == ROOT else node[:-1]


def depth(node: str) -> int:
    """The number of splits between the root and ``node``."""
    return len(node) - len(ROOT)


def node_ids(level: int) -> list[str]:
    """The ids of the ``2^level`` nodes at depth ``level`` of a fully split tree, in order."""
    if level < 0:
        raise ValueError(f"level: must be >= 0, got {level}")
    return [ROOT + format(i, f"0{level}b") if level else ROOT for i in range(2**level)]
