"""The archs LISSNAS works on: distinct representatives of isomorphism classes (enumerated or
sampled) and the neighbourhoods of seeds (paper 4.3 2(a))."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from naslid.budget import Feasible
from naslid.lissnas.config import LissnasConfig
from naslid.spaces.base import Arch, Mask, SlotSpace


def distinct(space: SlotSpace, archs: Iterable[Arch], rule: str | None = None) -> list[Arch]:
    """Canonical representatives of ``archs``, first occurrence order, duplicates removed."""
    seen: dict[Arch, None] = {}
    for a in archs:
        seen.setdefault(space.canonical(a, rule), None)
    return list(seen)


def enumerate_distinct(
    space: SlotSpace,
    mask: Mask | None = None,
    limit: int = LissnasConfig.enumerate_limit,
    rule: str | None = None,
) -> list[Arch] | None:
    """Every isomorphism class inside ``mask`` (one representative each), or None if too large."""
    if space.mask_size(mask) > limit:
        return None
    return distinct(space, space.all_archs(mask), rule)


def sample_distinct(
    space: SlotSpace,
    rng: np.random.Generator,
    n: int,
    mask: Mask | None = None,
    population: Sequence[Arch] | None = None,
    rule: str | None = None,
    feasible: Feasible | None = None,
) -> list[Arch]:
    """``n`` distinct archs drawn uniformly, one representative per isomorphism class.

    With ``population`` (the enumerated classes) the draw is uniform over classes without
    replacement; otherwise cells are drawn uniformly, canonicalised and deduplicated until
    ``n`` classes are found (or the space is exhausted). ``feasible`` (a hardware budget bound
    to ``space`` and ``mask``) draws the cells within it (:meth:`Feasible.sample`) and keeps
    only representatives within it.
    """
    if feasible is not None and mask is not None and feasible.mask != space.check_mask(mask):
        raise ValueError("sample_distinct: the budget is bound to another mask than the draw's")
    if population is not None:
        idx = rng.choice(len(population), size=min(n, len(population)), replace=False)
        return [population[i] for i in idx]
    out: dict[Arch, None] = {}
    for _ in range(50):
        m = 2 * (n - len(out)) + 16
        draws = space.sample(rng, m, mask) if feasible is None else feasible.sample(rng, m)
        for a in draws:
            a = space.canonical(a, rule)
            if feasible is not None and not feasible.within(a):
                continue
            out.setdefault(a, None)
            if len(out) == n:
                return list(out)
    return list(out)


def ball_counts(space: SlotSpace, radius: int, mask: Mask | None = None) -> list[int]:
    """Archs at edit distance exactly 0..radius from any arch (independent of the arch)."""
    mask = space.full_mask() if mask is None else mask
    # Elementary symmetric polynomials of (options - 1) per slot.
    e = [1] + [0] * radius
    for allowed in mask:
        m = len(allowed) - 1
        for d in range(radius, 0, -1):
            e[d] += e[d - 1] * m
    return e


def sample_ball(
    space: SlotSpace, arch: Arch, radius: int, n: int, rng: np.random.Generator
) -> list[Arch]:
    """``n`` draws from the archs within ``radius`` of ``arch``: distance d with probability
    proportional to the number of archs at d, then d slots and their new options uniformly."""
    counts = np.asarray(ball_counts(space, radius), dtype=np.float64)
    ds = rng.choice(len(counts), size=n, p=counts / counts.sum())
    free = np.array([s for s, o in enumerate(space.slot_options) if len(o) > 1], dtype=np.int64)
    out = []
    for d in ds:
        ops = list(arch.ops)
        for s in rng.choice(free, size=int(d), replace=False):
            choices = [o for o in range(len(space.slot_options[s])) if o != ops[s]]
            ops[s] = int(choices[rng.integers(len(choices))])
        out.append(space.arch_type(tuple(ops)))
    return out


def neighbourhood(
    space: SlotSpace,
    seeds: Sequence[Arch],
    radius: int,
    within: Sequence[Arch] | None = None,
    rng: np.random.Generator | None = None,
    max_ball_size: int = LissnasConfig.max_ball_size,
    rule: str | None = None,
    drop_disconnected: bool = True,
    feasible: Feasible | None = None,
) -> list[Arch]:
    """Paper 4.3 2(a): seeds plus every neighbour, up to ``radius`` edits, of every member of
    each seed's isomorphism class (``space.class_members``); canonical representatives,
    duplicates removed, and (``drop_disconnected``) cells that compute nothing dropped, and so
    are those over ``feasible``'s hardware budget.

    ``within`` (the current space, distinct representatives) restricts the result to its
    members. A neighbourhood larger than ``max_ball_size`` is not enumerated: inside ``within``
    its members are found by edit distance, otherwise ``max_ball_size`` draws of it stand for it.
    """
    rng = np.random.default_rng(0) if rng is None else rng
    allowed = None if within is None else set(within)
    big = sum(ball_counts(space, radius)) > max_ball_size
    if big and within is not None:
        ops = np.asarray([a.ops for a in within])
        near = np.zeros(len(within), dtype=bool)
        for s in seeds:
            for m in space.class_members(s, rule):
                near |= (ops != np.asarray(m.ops)).sum(axis=1) <= radius
        return [a for a, keep in zip(within, near) if keep]
    out: dict[Arch, None] = {space.canonical(s, rule): None for s in seeds}
    if allowed is not None:
        out = {s: None for s in out if s in allowed}
    checked: dict[Arch, bool] = {}
    for s in seeds:
        members = space.class_members(s, rule)
        for m in members:
            if big:
                cands = sample_ball(space, m, radius, max_ball_size, rng)
            else:
                cands = [n for d in range(1, radius + 1) for n in space.neighbours(m, d)]
            for c in cands:
                ok = checked.get(c)
                if ok is None:
                    ok = checked[c] = not drop_disconnected or space.is_connected(c)
                if not ok:
                    continue
                c = space.canonical(c, rule)
                if allowed is None or c in allowed:
                    out.setdefault(c, None)
    if feasible is not None:
        return [a for a in out if feasible.within(a)]
    return list(out)
