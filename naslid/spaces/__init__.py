"""Search spaces. Every space module offers the same functions (see ``base.SlotSpace``)."""

from __future__ import annotations

import importlib
from types import ModuleType

SPACES = ("nb201", "mobilenet", "ofa")
DEFAULT_SPACE = "nb201"
"""The space a command or profile searches unless told: NAS-Bench-201, both papers' first."""


def get(name: str) -> ModuleType:
    """The space module called ``name`` (one of :data:`SPACES`)."""
    if name not in SPACES:
        raise ValueError(f"space: unknown {name!r}; expected one of {', '.join(SPACES)}")
    return importlib.import_module(f"naslid.spaces.{name}")
