"""Supernets: one class per search space, restricted by masks."""

from __future__ import annotations

import importlib
from types import ModuleType

from naslid.spaces import SPACES


def get(space: str) -> ModuleType:
    """The supernet module of ``space`` (it defines ``Supernet`` and ``build(config)``)."""
    if space not in SPACES:
        raise ValueError(f"space: unknown {space!r}; expected one of {', '.join(SPACES)}")
    return importlib.import_module(f"naslid.supernets.{space}")


def build(config: dict):
    """Rebuild a supernet from the ``config()`` stored beside its weights."""
    if "space" not in config:
        raise ValueError("supernet config: no field 'space'")
    return get(config["space"]).build(config)


def imagenet_network(
    space: str, arch: str, num_classes: int, width_mult: float = 1.0, dropout: float = 0.0
):
    """The standalone network of ``arch`` (its text form) of ``space`` for ImageNet-sized input."""
    from naslid.spaces import get as get_space

    return get(space).imagenet_network(
        get_space(space).from_str(arch), num_classes, width_mult, dropout
    )
