"""What every supernet of naslid shares: masks, choices, features, parameter groups, export.

A space's supernet subclasses :class:`MaskedSupernet` and provides its blocks
(``_blocks``: each layer's output in turn for a selection), its head (``_logits``), the
candidate modules of a slot (``candidates``) and its :class:`SupernetOptions` (``Options``:
what a profile may choose, its defaults the paper's; ``options``: this network's). The mask
given at construction says which candidate modules exist; the choice given to ``forward``
says which of them run: an ``Arch`` runs one path, a ``Mask`` sums each slot's enabled
candidates (NAS-LID, section 3.2, Eq. 4).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from typing import Any, ClassVar

from torch import Tensor, nn

from naslid.spaces.base import Arch, Mask, SlotSpace

Choice = Arch | Mask


@dataclasses.dataclass(frozen=True)
class SupernetOptions:
    """The choices a profile makes about a space's network (``Profile.supernet``). A space's
    supernet module subclasses it as ``Options``: one field per constructor argument, its
    default the paper's, its help in ``metadata["help"]``, its bounds (inclusive) in
    ``metadata["range"]``: a network too large to build is refused before it is built."""

    @classmethod
    def parse(cls, space: str, values: Mapping[str, Any]) -> SupernetOptions:
        """The options ``values`` sets (the rest at their defaults); an unknown key is an error."""
        names = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(values) - set(names))
        if unknown:
            raise ValueError(
                f"supernet: {space} has no option {unknown[0]!r}; expected "
                f"{', '.join(names) or 'none'}"
            )
        for f in dataclasses.fields(cls):
            low, high = f.metadata.get("range", (None, None))
            value = values.get(f.name)
            if low is not None and isinstance(value, int | float) and not low <= value <= high:
                raise ValueError(
                    f"supernet: {space} option {f.name!r} must be between {low} and {high}, "
                    f"got {value}"
                )
        return cls(**values)

    def __str__(self) -> str:
        return " ".join(f"{k}={v}" for k, v in dataclasses.asdict(self).items())


class MaskedSupernet(nn.Module):
    space: SlotSpace
    slot_name = "slot"
    """What a slot is called in error messages ("edge", "layer")."""
    Options: ClassVar[type[SupernetOptions]]

    def __init__(self, options: SupernetOptions, num_classes: int, mask: Mask | None, affine: bool):
        super().__init__()
        self.options, self.num_classes, self.affine = options, num_classes, affine
        self.mask: Mask = self.space.full_mask() if mask is None else self.space.check_mask(mask)

    # ------------------------------------------------------------ per space
    def _blocks(self, x: Tensor, sel: Mask) -> Iterator[Tensor]:  # pragma: no cover - abstract
        raise NotImplementedError

    def _logits(self, out: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def candidates(self, slot: int) -> Iterator[nn.Module]:  # pragma: no cover - abstract
        """The modules holding ``slot``'s candidate operations (one per cell for NB201)."""
        raise NotImplementedError

    # -------------------------------------------------------------- shared
    @classmethod
    def from_options(cls, options: Mapping[str, Any], num_classes: int) -> MaskedSupernet:
        """The full supernet with a profile's ``options`` (the rest at the paper's defaults)."""
        opts = cls.Options.parse(cls.space.name, options)
        return cls(num_classes=num_classes, **dataclasses.asdict(opts))

    def config(self) -> dict:
        """What rebuilds this network (``from_config``), stored beside its weights."""
        return {
            "space": self.space.name,
            **dataclasses.asdict(self.options),
            "num_classes": self.num_classes,
            "affine": self.affine,
            "mask": self.space.mask_to_json(self.mask),
        }

    @classmethod
    def from_config(cls, config: dict) -> MaskedSupernet:
        """The network of a stored ``config()`` (fields it lacks at their defaults)."""
        mask = cls.check_config(config)
        known = {f.name for f in dataclasses.fields(cls.Options)} | {"num_classes", "affine"}
        unknown = sorted(set(config) - known - {"space", "mask"})
        if unknown:
            raise ValueError(f"supernet config: {cls.space.name} has no field {unknown[0]!r}")
        return cls(mask=mask, **{k: v for k, v in config.items() if k in known})

    @property
    def num_layers(self) -> int:
        """The number of feature maps ``forward(..., return_features=True)`` returns."""
        return len(self.layers)

    def selection(self, choice: Choice | None) -> Mask:
        """Per slot, the option indices that run for ``choice`` (an Arch or a Mask)."""
        if choice is None:
            return self.mask
        space = self.space
        sel = space.arch_mask(choice) if isinstance(choice, Arch) else space.check_mask(choice)
        return self.check_held(sel)

    def check_held(self, sel: Mask) -> Mask:
        """``sel`` itself, unless a slot asks for an option this network does not hold."""
        for i, (ops, allowed) in enumerate(zip(sel, self.mask)):
            missing = set(ops) - set(allowed)
            if missing:
                names = self.space.slot_options[i]
                raise ValueError(
                    f"choice: {self.slot_name} {i} asks for {[names[o] for o in sorted(missing)]}, "
                    f"which this network does not hold (it holds {[names[o] for o in allowed]})"
                )
        return sel

    def forward(
        self, x: Tensor, choice: Choice | None = None, return_features: bool = False
    ) -> Tensor | tuple[Tensor, list[Tensor]]:
        feats, out = [], x
        for out in self._blocks(x, self.selection(choice)):
            if return_features:
                feats.append(out)
        logits = self._logits(out)
        return (logits, feats) if return_features else logits

    def iter_features(self, x: Tensor, choice: Choice | None = None) -> Iterator[Tensor]:
        """Yield each layer's output in turn, so a consumer can drop it before the next."""
        yield from self._blocks(x, self.selection(choice))

    def candidate_parameters(self, slot: int) -> Iterator[nn.Parameter]:
        """The parameters of ``slot``'s candidate operations."""
        for module in self.candidates(slot):
            yield from module.parameters()

    def shared_parameters(self, slot: int) -> list[nn.Parameter]:
        """Every parameter that does not belong to a candidate operation of ``slot``."""
        own = {id(p) for p in self.candidate_parameters(slot)}
        return [p for p in self.parameters() if id(p) not in own]

    def cell_parameters(self, slot: int) -> list[nn.Parameter]:
        """The parameters of the searchable layers (``self.layers``: cells and reduction
        blocks) that do not belong to ``slot``'s candidates: what GM-NAS compares gradients
        on (its ``get_split_gradients``); the stem, head and classifier are left out."""
        own = {id(p) for p in self.candidate_parameters(slot)}
        return [p for p in self.layers.parameters() if id(p) not in own]

    def restrict(self, mask: Mask) -> MaskedSupernet:
        """A network holding only ``mask``'s candidates, with this network's weights."""
        net = self.from_config({**self.config(), "mask": self.space.mask_to_json(mask)})
        own = self.state_dict()
        net.load_state_dict({k: own[k] for k in net.state_dict()})
        return net.to(next(self.parameters()).device)

    def export(self, arch: Arch) -> MaskedSupernet:
        """The standalone network of ``arch`` with this supernet's weights."""
        return self.restrict(self.space.arch_mask(arch))

    @classmethod
    def check_config(cls, config: dict) -> Mask | None:
        """The mask of a stored config, after checking that it belongs to this space."""
        if config.get("space", cls.space.name) != cls.space.name:
            raise ValueError(
                f"supernet config: space is {config.get('space')!r}, expected {cls.space.name!r}"
            )
        return cls.space.mask_from_json(config["mask"]) if "mask" in config else None
