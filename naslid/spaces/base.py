"""What every search space of naslid shares: an architecture is one choice per *slot*.

A slot is an NB201 edge or a mobile-space layer. An architecture is a tuple of option
indices, one per slot; a *mask* is, per slot, the tuple of options still allowed (the
sub-supernets of NAS-LID are masks). Edit distance, neighbours, sampling, encoding and
enumeration are the same for every slot space, so they live here once; each space module
adds its string format, its cost model and (where it has one) its isomorphism rule.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

Mask = tuple[tuple[int, ...], ...]
"""Per slot, the sorted option indices still allowed."""

MODULE_API: tuple[str, ...] = (
    "full_mask",
    "mask_size",
    "contains",
    "all_archs",
    "sample",
    "edit_distance",
    "neighbours",
    "encode",
    "from_str",
    "canonical",
    "class_members",
    "num_classes",
    "is_connected",
    "is_network",
    "network",
)
"""The :class:`SlotSpace` methods every space module also offers as module-level functions
(``nb201.sample(rng, n)`` is ``nb201.SPACE.sample(rng, n)``)."""


def module_api(space: SlotSpace, module: str) -> Callable[[str], Any]:
    """The ``__getattr__`` (PEP 562) of the space module ``module``, whose :data:`MODULE_API`
    names are ``space``'s methods: ``__getattr__ = module_api(SPACE, __name__)``."""

    def __getattr__(name: str) -> Any:
        if name in MODULE_API:
            return getattr(space, name)
        raise AttributeError(f"module {module!r} has no attribute {name!r}")

    return __getattr__


@dataclass(frozen=True, order=True)
class Arch:
    """One option index per slot. Space modules subclass it for their string format."""

    ops: tuple[int, ...]

    def __str__(self) -> str:  # pragma: no cover - overridden by every space
        return ",".join(map(str, self.ops))


class SlotSpace:
    """A search space of independent slots, each with a finite tuple of named options."""

    def __init__(self, name: str, slot_options: Sequence[Sequence[str]], arch_type: type[Arch]):
        self.name = name
        self.slot_options: tuple[tuple[str, ...], ...] = tuple(tuple(o) for o in slot_options)
        self.arch_type = arch_type
        self.num_slots = len(self.slot_options)
        self._offsets = np.cumsum([0] + [len(o) for o in self.slot_options])

    # ----------------------------------------------------------------- masks
    def full_mask(self) -> Mask:
        return tuple(tuple(range(len(o))) for o in self.slot_options)

    def check_mask(self, mask: Mask) -> Mask:
        """Normalise a mask (sorted unique tuples) and reject an impossible one."""
        if len(mask) != self.num_slots:
            raise ValueError(f"mask: expected {self.num_slots} slots, got {len(mask)}")
        out = []
        for slot, allowed in enumerate(mask):
            allowed = tuple(sorted({int(a) for a in allowed}))
            if not allowed:
                raise ValueError(f"mask: slot {slot} allows no option")
            if allowed[0] < 0 or allowed[-1] >= len(self.slot_options[slot]):
                raise ValueError(f"mask: slot {slot} has an option index out of range: {allowed}")
            out.append(allowed)
        return tuple(out)

    def mask_size(self, mask: Mask | None = None) -> int:
        mask = self.full_mask() if mask is None else mask
        return math.prod(len(a) for a in mask)

    def contains(self, mask: Mask, arch: Arch) -> bool:
        return all(op in allowed for op, allowed in zip(arch.ops, mask))

    def mask_to_json(self, mask: Mask) -> list[list[str]]:
        return [[self.slot_options[s][i] for i in allowed] for s, allowed in enumerate(mask)]

    def mask_from_json(self, data: Sequence[Sequence[str]]) -> Mask:
        if len(data) != self.num_slots:
            raise ValueError(f"mask: expected {self.num_slots} slots, got {len(data)}")
        mask = []
        for slot, names in enumerate(data):
            try:
                mask.append(tuple(self.slot_options[slot].index(n) for n in names))
            except ValueError as exc:
                raise ValueError(
                    f"mask: slot {slot} names an unknown option in {list(names)}"
                ) from exc
        return self.check_mask(tuple(mask))

    def arch_mask(self, arch: Arch) -> Mask:
        """The mask that holds exactly one architecture."""
        return tuple((op,) for op in arch.ops)

    # ----------------------------------------------------------------- archs
    def make(self, ops: Iterable[int]) -> Arch:
        ops = tuple(int(o) for o in ops)
        if len(ops) != self.num_slots:
            raise ValueError(f"{self.name}: expected {self.num_slots} slots, got {len(ops)}")
        for slot, op in enumerate(ops):
            if not 0 <= op < len(self.slot_options[slot]):
                raise ValueError(f"{self.name}: slot {slot} has no option {op}")
        return self.arch_type(ops)

    def all_archs(self, mask: Mask | None = None) -> Iterator[Arch]:
        mask = self.full_mask() if mask is None else mask
        for ops in itertools.product(*mask):
            yield self.arch_type(tuple(ops))

    def sample(self, rng: np.random.Generator, n: int, mask: Mask | None = None) -> list[Arch]:
        """``n`` independent uniform draws (with replacement) from the archs inside ``mask``."""
        mask = self.full_mask() if mask is None else mask
        cols = [np.asarray(allowed)[rng.integers(0, len(allowed), size=n)] for allowed in mask]
        return [self.arch_type(tuple(int(c[i]) for c in cols)) for i in range(n)]

    def edit_distance(self, a: Arch, b: Arch) -> int:
        """Number of slots whose option differs (each slot edit is one substitution)."""
        return sum(x != y for x, y in zip(a.ops, b.ops))

    @property
    def max_edit_distance(self) -> int:
        return self.num_slots

    def neighbours(self, arch: Arch, distance: int, mask: Mask | None = None) -> list[Arch]:
        """All archs (inside ``mask``) at exactly ``distance`` slot substitutions."""
        mask = self.full_mask() if mask is None else mask
        out = []
        for slots in itertools.combinations(range(self.num_slots), distance):
            choices = [[o for o in mask[s] if o != arch.ops[s]] for s in slots]
            for repl in itertools.product(*choices):
                ops = list(arch.ops)
                for s, o in zip(slots, repl):
                    ops[s] = o
                out.append(self.arch_type(tuple(ops)))
        return out

    def encode(self, archs: Arch | Sequence[Arch]) -> np.ndarray:
        """One-hot encoding: ``sum(len(options))`` columns (30 for NAS-Bench-201)."""
        single = isinstance(archs, Arch)
        archs = [archs] if single else list(archs)
        out = np.zeros((len(archs), int(self._offsets[-1])), dtype=np.float32)
        if archs:
            ops = np.asarray([a.ops for a in archs])
            rows = np.repeat(np.arange(len(archs)), self.num_slots)
            cols = (ops + self._offsets[:-1]).ravel()
            out[rows, cols] = 1.0
        return out[0] if single else out

    isomorphisms: tuple[str, ...] = ("none",)
    """Isomorphism rules the space knows (the first is its default); ``none``: identity."""

    cost_datasets: tuple[str, ...] = ()
    """Data sets whose cost model ``flops(arch, dataset)`` / ``params(arch, dataset)`` know;
    empty: one cost model, ``flops(arch)`` only."""

    def canonical(self, arch: Arch, rule: str | None = None) -> Arch:
        """Representative of the arch's isomorphism class (identity unless a space says so)."""
        return arch

    def class_members(self, arch: Arch, rule: str | None = None) -> tuple[Arch, ...]:
        """Every arch of ``arch``'s isomorphism class (just itself unless a space says so)."""
        return (arch,)

    def num_classes(self, rule: str | None = None) -> int:
        """Isomorphism classes in the whole space (every arch, unless a space says so)."""
        return self.mask_size()

    def is_connected(self, arch: Arch) -> bool:
        """Whether the arch computes something from its input (always, unless a space says so)."""
        return True

    def network(self, arch: Arch) -> Arch:
        """The tuple that names ``arch``'s network: ``arch`` itself, unless a space's tuples
        can name one network several ways (OFA: the choices left on dropped layers). Not an
        isomorphism rule: two networks of one NB201 isomorphism class are two networks."""
        return arch

    def is_network(self, arch: Arch) -> bool:
        """Whether the tuple is the name :meth:`network` gives its network."""
        return self.network(arch) == arch

    # ----------------------------------------------------- space-specific
    def from_str(self, text: str) -> Arch:
        return self.arch_type.from_str(text)  # type: ignore[attr-defined]

    def flops(self, arch: Arch) -> float:  # pragma: no cover - abstract
        raise NotImplementedError

    def params(self, arch: Arch) -> float:  # pragma: no cover - abstract
        raise NotImplementedError

    # ------------------------------------------------------------- ownership
    def owner(self, masks: Mapping[str, Mask], arch: Arch) -> str | None:
        """The key of the first of ``masks`` (in their order) that holds ``arch``; None if none
        does (the leaf of a partition that owns an arch: its masks are disjoint)."""
        return next((key for key, mask in masks.items() if self.contains(mask, arch)), None)

    # ------------------------------------------------------------- labels
    def slot_label(self, slot: int) -> str:
        """A slot's name in tables and figures (``slot 3`` unless a space says so)."""
        return f"slot {slot}"

    def short_op(self, name: str) -> str:
        """An option's name for crowded labels (the name itself unless a space says so)."""
        return name
