"""Supernets: one class per search space, restricted by masks."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from types import ModuleType
from typing import TYPE_CHECKING, Any

from naslid.spaces import SPACES

if TYPE_CHECKING:
    from naslid.config import Profile
    from naslid.supernets.base import MaskedSupernet, SupernetOptions


def get(space: str) -> ModuleType:
    """The supernet module of ``space``: its ``Supernet`` (a ``MaskedSupernet``) and the
    ``Options`` a profile may set."""
    if space not in SPACES:
        raise ValueError(f"space: unknown {space!r}; expected one of {', '.join(SPACES)}")
    return importlib.import_module(f"naslid.supernets.{space}")


def build(config: dict) -> MaskedSupernet:
    """Rebuild a supernet from the ``config()`` stored beside its weights."""
    if "space" not in config:
        raise ValueError("supernet config: no field 'space'")
    return get(config["space"]).Supernet.from_config(config)


def options(space: str, values: Mapping[str, Any]) -> SupernetOptions:
    """``space``'s supernet options with ``values`` set (an unknown key is an error)."""
    return get(space).Options.parse(space, values)


def from_options(space: str, values: Mapping[str, Any], num_classes: int) -> MaskedSupernet:
    """The full supernet of ``space`` with the options ``values`` (the rest at their defaults)."""
    return get(space).Supernet.from_options(values, num_classes)


def from_profile(profile: Profile, num_classes: int) -> MaskedSupernet:
    """The full supernet a profile trains: its space's, with its ``supernet`` options."""
    return from_options(profile.space, profile.supernet, num_classes)


def imagenet_network(
    space: str, arch: str, num_classes: int, width_mult: float = 1.0, dropout: float = 0.0
):
    """The standalone network of ``arch`` (its text form) of ``space`` for ImageNet-sized input."""
    from naslid.spaces import get as get_space

    return get(space).imagenet_network(
        get_space(space).from_str(arch), num_classes, width_mult, dropout
    )
