"""Hardware budgets of the search: FLOPs, parameter and latency limits that every proposed
architecture satisfies (issue 24).

Mobile NAS searches for a device: ProxylessNAS (Cai et al. 2019, section 3.3) and OFA (Cai et
al. 2020, section 3.4) search under a latency constraint predicted from a per-device lookup
table; NAS-LID's Table 4 sets networks of 465 M to 776 M FLOPs side by side. A :class:`Budget`
holds the limits; a :class:`Feasible` binds it to a space (and a latency predictor) and gives
the search operators that *stay inside* it:

- :meth:`Feasible.mutate` and :meth:`Feasible.crossover` draw exactly as NAS-LID's operators
  do (one uniform per slot, the same probabilities), but a slot moves only to an option that
  keeps the child within the budget (the parent is within it, so every child is): a child is
  never drawn over budget and then thrown away, and the share of mutations and crossovers in
  a generation stays the paper's.
- :meth:`Feasible.within_archs` lists the archs within the budget where the mask can be
  enumerated (NB201): the search's random share is drawn from that list, never skipped.
  :meth:`Feasible.sample` (larger spaces) draws uniformly from the archs within the budget
  by rejection; where rejection finds too few (a tight budget) the rest are *projected*
  draws: a uniform draw of the space is approached, slot by slot in random order, from the
  cheapest arch, every step kept only while the arch stays within the budget.
- :meth:`Feasible.check` refuses, before any work, a budget that nothing in the space (its
  mask, or an explicit set) meets, in one line giving the space's minimum.

The costs are those of the space's cost model (``space.flops`` / ``space.params``: the
network that will be deployed, NB201 on CIFAR-10 at C=16 N=5, the mobile spaces at ImageNet
224 px) and, for latency, a predictor (a measured lookup table's ``predict``, milliseconds).
The minimum of a cost over a space is exact: enumerated in spaces of up to
:data:`ENUMERATE_LIMIT` archs, else found by coordinate descent, which is exact for the mobile
spaces' cost models (a sum over layers of a cost that depends on that layer's choice only;
OFA's idle layers, past a unit's depth, cost nothing and the depth is the unit's own choice).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass

import numpy as np

from naslid.spaces.base import Arch, Mask, SlotSpace

METRICS: tuple[str, ...] = ("flops", "params", "latency")
"""The costs a budget limits, in the order the search reports them."""
UNITS: dict[str, str] = {"flops": "M FLOPs", "params": "M params", "latency": "ms"}
LIMIT_FIELDS: dict[str, str] = {m: f"{m}_max" for m in METRICS}
"""The name of each metric's limit: a :class:`Budget` field, a config key, a CLI flag
(``--flops-max``) and a pipeline parameter."""
ENUMERATE_LIMIT = 1_000_000
"""Masks up to this size are enumerated (:meth:`Feasible.enumerated`): a cost's exact
minimum, the archs within a budget, and the search's draws when rejection finds no new arch."""

LatencyFn = Callable[[Arch], float]
"""An arch's predicted latency, milliseconds (:meth:`naslid.latency.LatencyTable.predict`)."""


@dataclass(frozen=True)
class Budget:
    """Upper limits on an arch's costs; None: no limit."""

    flops_max: float | None = None
    """Millions of multiply-adds under the space's cost model."""
    params_max: float | None = None
    """Millions of parameters."""
    latency_max: float | None = None
    """Milliseconds, predicted from a measured latency table (needs one)."""

    def __post_init__(self) -> None:
        for metric, name in LIMIT_FIELDS.items():
            value = getattr(self, name)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"{name}: must be a number, got {value!r}")
            if not math.isfinite(value) or value <= 0:
                raise ValueError(f"{name}: must be a positive {UNITS[metric]} limit, got {value}")

    def limits(self) -> dict[str, float]:
        """The set limits by metric (``{"flops": 600.0}``)."""
        return {
            m: getattr(self, f) for m, f in LIMIT_FIELDS.items() if getattr(self, f) is not None
        }

    def as_dict(self) -> dict[str, float | None]:
        """Every limit by field name, None where unset (the JSON of ``meta.json``)."""
        return {f: getattr(self, f) for f in LIMIT_FIELDS.values()}

    def __bool__(self) -> bool:
        return bool(self.limits())

    def describe(self) -> str:
        return ", ".join(f"{m} <= {v:g} {UNITS[m]}" for m, v in self.limits().items()) or "none"


class Costs:
    """An arch's costs in a space (cached by its tuple): FLOPs and parameters from the space's
    cost model, latency from ``latency`` (NaN when there is no predictor)."""

    def __init__(self, space: SlotSpace, latency: LatencyFn | None = None) -> None:
        self.space = space
        self.latency_fn = latency
        self._cache: dict[tuple[str, tuple[int, ...]], float] = {}

    @property
    def known(self) -> tuple[str, ...]:
        """The metrics these costs know (latency only with a predictor)."""
        return METRICS if self.latency_fn is not None else METRICS[:2]

    def __call__(self, arch: Arch, metric: str) -> float:
        key = (metric, tuple(arch.ops))
        value = self._cache.get(key)
        if value is None:
            if metric == "flops":
                value = float(self.space.flops(arch))
            elif metric == "params":
                value = float(self.space.params(arch))
            elif metric == "latency":
                value = math.nan if self.latency_fn is None else float(self.latency_fn(arch))
            else:
                raise ValueError(f"cost: unknown metric {metric!r} (known: {', '.join(METRICS)})")
            self._cache[key] = value
        return value

    def of(self, arch: Arch) -> dict[str, float]:
        """Every metric's cost (latency NaN without a predictor)."""
        return {m: self(arch, m) for m in METRICS}


class Feasible:
    """A :class:`Budget` bound to a space, a mask and (for latency) a predictor: which archs
    are within it, and the search operators that stay inside it (module docstring)."""

    def __init__(
        self,
        space: SlotSpace,
        budget: Budget | None = None,
        *,
        latency: LatencyFn | None = None,
        mask: Mask | None = None,
    ) -> None:
        self.space = space
        self.budget = budget or Budget()
        if self.budget.latency_max is not None and latency is None:
            raise ValueError(
                "latency_max: a latency limit needs a latency table measured on the target "
                "device (naslid latency / the measure-latency step)"
            )
        self.costs = Costs(space, latency)
        self.mask = space.full_mask() if mask is None else space.check_mask(mask)
        self.limits = self.budget.limits()
        self._within: dict[tuple[int, ...], bool] = {}
        self._anchor: Arch | None = None
        self._enumerated: list[Arch] | None = None
        self._within_archs: list[Arch] | None = None

    # ------------------------------------------------------------ membership
    def within(self, arch: Arch) -> bool:
        """Whether every cost of ``arch`` is at most its limit (True without limits)."""
        if not self.limits:
            return True
        ops = tuple(arch.ops)
        ok = self._within.get(ops)
        if ok is None:
            ok = self._within[ops] = all(
                self.costs(arch, m) <= limit for m, limit in self.limits.items()
            )
        return ok

    # ------------------------------------------------------------ minimum
    def enumerated(self) -> list[Arch] | None:
        """Every arch of the mask, listed once, where the mask holds at most
        :data:`ENUMERATE_LIMIT`; else None (too large: minima by descent, draws by rejection)."""
        if self._enumerated is None and self.space.mask_size(self.mask) <= ENUMERATE_LIMIT:
            self._enumerated = list(self.space.all_archs(self.mask))
        return self._enumerated

    def _pool(self, members: Sequence[Arch] | None) -> list[Arch] | None:
        """``members``, else :meth:`enumerated`."""
        return list(members) if members is not None else self.enumerated()

    def within_archs(self) -> list[Arch] | None:
        """Every arch of the mask within the budget, where there is a limit and the mask is
        small enough to enumerate; else None."""
        if not self.limits or self.enumerated() is None:
            return None
        if self._within_archs is None:
            self._within_archs = [a for a in self.enumerated() or () if self.within(a)]
        return self._within_archs

    def inside(self, arch: Arch) -> bool:
        """Whether ``arch`` lies inside the mask."""
        return self.space.contains(self.mask, arch)

    def minimum(self, metric: str, members: Sequence[Arch] | None = None) -> tuple[float, Arch]:
        """The smallest ``metric`` of an arch inside the mask (or of ``members``) and one arch
        that has it (module docstring: exact)."""
        return self._argmin(lambda a: self.costs(a, metric), members)

    def _argmin(
        self, fn: Callable[[Arch], float], members: Sequence[Arch] | None
    ) -> tuple[float, Arch]:
        pool = self._pool(members)
        if pool is not None:
            best = min(pool, key=fn)
            return fn(best), best
        return self._descend(fn)

    def _descend(self, fn: Callable[[Arch], float]) -> tuple[float, Arch]:
        """Coordinate descent from the first option of every slot: each slot in turn takes the
        option (within the mask) that lowers ``fn`` most, until a sweep changes nothing; a
        move whose network leaves the mask (OFA: the layers a shorter unit drops) is none."""
        ops = [allowed[0] for allowed in self.mask]
        best = fn(self.space.network(self.space.arch_type(tuple(ops))))
        changed = True
        while changed:
            changed = False
            for slot, allowed in enumerate(self.mask):
                for option in allowed:
                    if option == ops[slot]:
                        continue
                    trial = list(ops)
                    trial[slot] = option
                    net = self.space.network(self.space.arch_type(tuple(trial)))
                    if not self.inside(net):
                        continue
                    value = fn(net)
                    if value < best:
                        best, ops, changed = value, trial, True
        return best, self.space.network(self.space.arch_type(tuple(ops)))

    def _load(self, arch: Arch) -> float:
        """The sum of ``arch``'s costs relative to their limits."""
        return sum(self.costs(arch, m) / v for m, v in self.limits.items())

    def anchor(self, members: Sequence[Arch] | None = None) -> Arch | None:
        """An arch within the budget, the one of least :meth:`_load`, or None if none is.
        Exact where the archs are enumerated (``members`` or a small mask); in a space too
        large for that, the descent's answers (least load, then each metric's minimum):
        there None means none was found."""
        if self._anchor is not None and members is None:
            return self._anchor
        pool = self._pool(members)
        if pool is not None:
            within = [a for a in pool if self.within(a)]
            arch = min(within, key=self._load) if within else None
        else:
            tries = [self._descend(self._load)[1]]
            tries += [self.minimum(metric)[1] for metric in self.limits]
            arch = next((a for a in tries if self.within(a) and self.inside(a)), None)
        if members is None:
            self._anchor = arch
        return arch

    def check(self, members: Collection[Arch] | None = None, what: str = "") -> None:
        """Refuse, in one line, a budget that no arch of the space (its mask, or ``members``)
        meets, giving the space's minimum of the metric that fails."""
        if not self.limits:
            return
        pool = None if members is None else list(members)
        where = what or (f"space {self.space.name}" if pool is None else "the allowed archs")
        for metric, limit in self.limits.items():
            low, _ = self.minimum(metric, pool)
            if low > limit:
                raise ValueError(
                    f"{LIMIT_FIELDS[metric]}: no arch of {where} meets {limit:g} {UNITS[metric]}; "
                    f"its minimum is {low:.4g} {UNITS[metric]}"
                )
        if self.anchor(pool) is None:
            exact = self._pool(pool) is not None
            mins = ", ".join(f"{m} {self.minimum(m, pool)[0]:.4g} {UNITS[m]}" for m in self.limits)
            raise ValueError(
                f"budget: {'no' if exact else 'no search found an'} arch of {where} "
                f"{'meets' if exact else 'meeting'} {self.budget.describe()} at once "
                f"(each alone can be met: minimum {mins})"
            )

    # ------------------------------------------------------------ operators
    def _allowed_moves(self, ops: list[int], slot: int, options: Sequence[int]) -> list[int]:
        """The ``options`` for ``slot`` that keep ``ops`` within the budget."""
        if not self.limits:
            return list(options)
        out = []
        for option in options:
            trial = list(ops)
            trial[slot] = option
            net = self.space.network(self.space.arch_type(tuple(trial)))
            if self.inside(net) and self.within(net):
                out.append(option)
        return out

    def mutate(self, arch: Arch, prob: float, rng: np.random.Generator) -> Arch:
        """NAS-LID's mutation inside the budget: each slot moves, with probability ``prob``,
        to another option of the mask that keeps the arch within the budget (a slot with no
        such option stays). Draws one uniform per slot, then one choice per moving slot, in
        slot order: without limits, exactly :func:`naslid.evolution.mutate`'s draws."""
        moves = rng.random(self.space.num_slots) < prob
        ops = list(arch.ops)
        for slot in np.flatnonzero(moves):
            others = [o for o in self.mask[slot] if o != ops[slot]]
            others = self._allowed_moves(ops, int(slot), others) if others else others
            if others:
                ops[slot] = others[int(rng.integers(len(others)))]
        return self.space.network(self.space.arch_type(tuple(ops)))

    def crossover(self, a: Arch, b: Arch, prob: float, rng: np.random.Generator) -> Arch:
        """Uniform crossover inside the budget: ``a`` with each slot taken from ``b`` with
        probability ``prob``, in slot order, a take kept only while the child stays within
        the budget. Without limits, exactly :func:`naslid.evolution.crossover`'s draws."""
        take = rng.random(self.space.num_slots) < prob
        ops = list(a.ops)
        for slot in np.flatnonzero(take):
            if b.ops[slot] != ops[slot] and self._allowed_moves(ops, int(slot), [b.ops[slot]]):
                ops[slot] = b.ops[slot]
        return self.space.network(self.space.arch_type(tuple(ops)))

    def project(self, target: Arch, rng: np.random.Generator) -> Arch | None:
        """``target`` brought within the budget: from :meth:`anchor`, every slot in random
        order takes ``target``'s option if the arch stays within the budget. ``target``
        itself when it is within; None when no arch within the budget is known."""
        if self.within(target):
            return target
        start = self.anchor()
        if start is None:
            return None
        ops = list(start.ops)
        for slot in rng.permutation(self.space.num_slots):
            slot = int(slot)
            if target.ops[slot] != ops[slot] and self._allowed_moves(ops, slot, [target.ops[slot]]):
                ops[slot] = target.ops[slot]
        arch = self.space.network(self.space.arch_type(tuple(ops)))
        return arch if self.inside(arch) else None

    def sample(self, rng: np.random.Generator, n: int, tries: int = 10) -> list[Arch]:
        """``n`` draws within the budget: uniform by rejection (at most ``tries`` x ``n``
        draws), the rest projected (:meth:`project`) when rejection finds too few."""
        if not self.limits:
            return self.space.sample(rng, n, self.mask)
        out: list[Arch] = []
        drawn = 0
        while len(out) < n and drawn < tries * n:
            batch = self.space.sample(rng, n - len(out), self.mask)
            drawn += len(batch)
            out += [a for a in batch if self.within(a)]
        for target in self.space.sample(rng, n - len(out), self.mask):
            arch = self.project(target, rng)
            if arch is not None:
                out.append(arch)
        return out
