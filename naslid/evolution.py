"""Evolutionary architecture search of NAS-LID (He et al., AAAI 2023, section 4) and the
random-search baseline, over any slot space (``naslid.spaces.<name>.SPACE``).

Each generation holds ``population`` archs: the first is drawn at random; every later one is
made of children of the *parents* (the best ``parent_fraction`` of the population size among
all archs scored so far): ``mutation_fraction`` of it by mutation (each slot moves to another
allowed option with probability ``mutation_prob``), ``crossover_fraction`` by uniform
crossover of two distinct parents (each slot taken from the second parent with probability
``crossover_prob``), and the rest drawn at random. The split 40% / 40% / 20% is not stated in
the paper's text; it is the one of the authors' public configuration (EAMutator.yaml:
selection 0.2, mutation 0.4, crossover 0.4, both probabilities 0.1, 50 x 50).

No arch is scored twice: candidates are keyed by ``space.canonical`` (the isomorphism class),
and a child whose class was already scored is redrawn. The evaluator gets the arch as drawn
(the first member of its class met), so a proxy evaluator can place it in its sub-supernet.
``budget`` caps the number of distinct archs scored; the search stops when it is reached.
A :data:`Mask` and an explicit set of allowed archs (a LISSNAS shrunk space) restrict every
candidate: random ones are drawn inside them, children outside them are rejected and redrawn.
Hardware limits (``flops_max``, ``params_max``, ``latency_max``: :mod:`naslid.budget`) are met
by construction: mutation and crossover move a slot only to an option that keeps the child
within them; the random share is drawn uniformly from the archs within them (enumerated where
the mask is small enough, as NB201's; in a larger space by rejection, which keeps the draws
uniform, then projected draws where rejection finds too few); a budget nothing meets is
refused before any arch is scored. An arch over a limit is never scored and
never returned.

The evaluator (any :class:`naslid.scorer.Scorer`) is called once per generation with the list
of new archs, so that a proxy evaluator can group them by sub-supernet;
:class:`naslid.scorer.TableScorer` looks them up in a benchmark table. All randomness comes
from one ``numpy.random.Generator``: a seed fixes the history.

Budgeted use: ``EvolutionConfig(budget=500)`` keeps every paper default and stops after 500
distinct archs, i.e. after the first 10 of the 50 generations. With the NAS-Bench-201 table
(``c10_test_acc_200``) as oracle this finds the table's best cell (94.37) on every one of
100 seeds; :func:`random_search` with the same 500 queries averages 94.20. That baseline
draws 500 distinct isomorphism classes, so it is stronger than 500 independent draws with
repetition (94.12 on average).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from naslid.budget import Budget, Feasible, LatencyFn
from naslid.io import read_table, seal_meta, write_json, write_table
from naslid.pareto import OBJECTIVES, front_indices
from naslid.scorer import Scorer, scores_of
from naslid.spaces.base import Arch, Mask, SlotSpace

ProgressFn = Callable[[int, float], None]
"""Called after each generation with (generation, best score so far)."""

HISTORY_COLUMNS = ("generation", "arch", "score", "flops", "params", "latency", "origin")
"""``flops`` and ``params`` in millions (the space's cost model), ``latency`` in milliseconds
predicted from a latency table (NaN without one)."""


@dataclass
class EvolutionConfig:
    """Paper defaults (NAS-LID section 4; split of the population from the public config)."""

    population: int = 50
    generations: int = 50
    parent_fraction: float = 0.2
    mutation_fraction: float = 0.4
    crossover_fraction: float = 0.4
    mutation_prob: float = 0.1
    crossover_prob: float = 0.1
    budget: int | None = None
    """At most this many distinct archs are scored (None: population x generations)."""
    top_k: int = 10
    max_tries: int = 10
    """Attempts per wanted child before the rest of the generation is filled at random."""

    def __post_init__(self) -> None:
        if self.population < 2:
            raise ValueError(f"population: must be at least 2, got {self.population}")
        if self.generations < 1:
            raise ValueError(f"generations: must be at least 1, got {self.generations}")
        for name in (
            "parent_fraction",
            "mutation_fraction",
            "crossover_fraction",
            "mutation_prob",
            "crossover_prob",
        ):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name}: must lie in [0, 1], got {value}")
        if self.mutation_fraction + self.crossover_fraction > 1.0:
            raise ValueError("mutation_fraction + crossover_fraction: must not exceed 1")
        if self.budget is not None and self.budget < 1:
            raise ValueError(f"budget: must be at least 1, got {self.budget}")
        if self.top_k < 1:
            raise ValueError(f"top_k: must be at least 1, got {self.top_k}")

    @property
    def num_parents(self) -> int:
        return max(2, round(self.parent_fraction * self.population))

    @property
    def num_mutations(self) -> int:
        return round(self.mutation_fraction * self.population)

    @property
    def num_crossovers(self) -> int:
        return round(self.crossover_fraction * self.population)


@dataclass
class SearchResult:
    """What a search leaves: every scored arch in order, and the best ones."""

    history: pd.DataFrame
    """One row per scored arch: generation, arch (string), score, flops, params, origin."""
    top: list[dict] = field(default_factory=list)
    """``[{"arch": str, "score": float, "flops_M", "params_M"[, "latency_ms"], "on_front"},
    ...]`` best first (ties: first scored first); ``on_front``: on the Pareto front of every
    scored arch (:func:`naslid.pareto.front_indices`)."""

    @property
    def best(self) -> dict:
        if not self.top:
            raise ValueError("search result: no arch was scored")
        return self.top[0]


# ------------------------------------------------------------------ operators
def mutate(
    space: SlotSpace, arch: Arch, prob: float, rng: np.random.Generator, mask: Mask | None = None
) -> Arch:
    """Each slot moves, with probability ``prob``, to another option allowed by ``mask``.

    A slot with a single allowed option never moves. Draws one uniform per slot, then one
    choice per moving slot, in slot order. The child is the network the tuple names
    (``space.network``: OFA drops the choices left on layers past a unit's depth).
    """
    mask = space.full_mask() if mask is None else mask
    moves = rng.random(space.num_slots) < prob
    ops = list(arch.ops)
    for slot in np.flatnonzero(moves):
        others = [o for o in mask[slot] if o != ops[slot]]
        if others:
            ops[slot] = others[int(rng.integers(len(others)))]
    return space.network(space.arch_type(tuple(ops)))


def crossover(space: SlotSpace, a: Arch, b: Arch, prob: float, rng: np.random.Generator) -> Arch:
    """Uniform crossover: ``a`` with each slot taken from ``b`` with probability ``prob``
    (the network the tuple names, as for :func:`mutate`)."""
    take = rng.random(space.num_slots) < prob
    return space.network(
        space.arch_type(tuple(y if t else x for x, y, t in zip(a.ops, b.ops, take)))
    )


# ------------------------------------------------------------------ archive
class _Archive:
    """Which archs may be proposed (limits, mask, explicit set) and which were scored."""

    def __init__(
        self,
        space: SlotSpace,
        mask: Mask | None,
        restrict: Collection[Arch] | None,
        budget: Budget,
        latency: LatencyFn | None,
    ) -> None:
        self.space = space
        self.mask = space.full_mask() if mask is None else space.check_mask(mask)
        self.feasible = Feasible(space, budget, latency=latency, mask=self.mask)
        self.members: list[Arch] | None = None
        if restrict is not None:
            unique: dict[tuple[int, ...], Arch] = {}
            for a in restrict:
                unique.setdefault(tuple(a.ops), a)
            inside = [a for a in unique.values() if space.contains(self.mask, a)]
            if not inside:
                raise ValueError("restrict: no arch of the set lies inside the mask")
            self.feasible.check(inside, what=f"the {len(inside)} allowed archs")
            self.members = [a for a in inside if self.feasible.within(a)]
        else:
            self.feasible.check()
        self._allowed = None if self.members is None else {tuple(a.ops) for a in self.members}
        self._legal_cache: dict[tuple[int, ...], bool] = {}
        self._key_cache: dict[tuple[int, ...], str] = {}
        self.seen: set[str] = set()
        self.rows: list[tuple] = []
        self.archs: list[Arch] = []

    def _within(self, arch: Arch) -> bool:
        return self.space.contains(self.mask, arch) and self.feasible.within(arch)

    def legal(self, arch: Arch) -> bool:
        ops = tuple(arch.ops)
        ok = self._legal_cache.get(ops)
        if ok is None:
            ok = self._within(arch) if self._allowed is None else ops in self._allowed
            self._legal_cache[ops] = ok
        return ok

    def key(self, arch: Arch) -> str:
        """The isomorphism class of ``arch`` (``space.canonical``), as a string."""
        ops = tuple(arch.ops)
        key = self._key_cache.get(ops)
        if key is None:
            key = self._key_cache[ops] = str(self.space.canonical(arch))
        return key

    def accept(self, arch: Arch, pending: set[str]) -> bool:
        """Whether ``arch`` is legal and its class neither scored nor already in ``pending``;
        if so, reserve its class in ``pending``."""
        if not self.legal(arch):
            return False
        key = self.key(arch)
        if key in self.seen or key in pending:
            return False
        pending.add(key)
        return True

    def random_new(
        self, rng: np.random.Generator, n: int, pending: set[str], tries: int
    ) -> list[Arch]:
        """Up to ``n`` new legal archs of distinct classes, drawn uniformly from the legal
        archs (fewer only when no new class is left)."""
        if n <= 0:
            return []
        if self.members is not None:
            return self._draw_from(self.members, rng, n, pending)
        within = self.feasible.within_archs()  # a budget in an enumerable mask: draw inside it
        if within is not None:
            return self._draw_from(within, rng, n, pending)
        out: list[Arch] = []
        for _ in range(tries * n):
            arch = self.space.sample(rng, 1, self.mask)[0]
            if self.accept(arch, pending):
                out.append(arch)
                if len(out) == n:
                    return out
        if (every := self.feasible.enumerated()) is not None:  # nearly exhausted: enumerate
            out += self._draw_from([a for a in every if self.legal(a)], rng, n - len(out), pending)
        elif self.feasible.limits:  # a tight budget in a huge space: projected draws
            for _ in range(tries * (n - len(out))):
                target = self.space.sample(rng, 1, self.mask)[0]
                arch = self.feasible.project(target, rng)
                if arch is not None and self.accept(arch, pending):
                    out.append(arch)
                    if len(out) == n:
                        break
        return out

    def _draw_from(
        self, pool: Sequence[Arch], rng: np.random.Generator, n: int, pending: set[str]
    ) -> list[Arch]:
        """Up to ``n`` members of ``pool`` in random order whose classes are new."""
        free = [
            i
            for i, a in enumerate(pool)
            if self.key(a) not in self.seen and self.key(a) not in pending
        ]
        out: list[Arch] = []
        for i in rng.permutation(np.asarray(free, dtype=np.int64)):
            if len(out) == n:
                break
            arch = pool[int(i)]
            if self.key(arch) not in pending:  # two members of one class: keep the first drawn
                pending.add(self.key(arch))
                out.append(arch)
        return out

    def record(
        self, generation: int, archs: Sequence[Arch], origins: Sequence[str], evaluator: Scorer
    ) -> None:
        if not archs:
            return
        over = [str(a) for a in archs if not self.legal(a)]
        if over:  # the operators never propose one: a bug, never a silent over-budget result
            raise RuntimeError(f"search: {over[0]} is outside the mask or the budget")
        scores = scores_of(evaluator, archs)
        costs = self.feasible.costs
        for arch, score, origin in zip(archs, scores, origins):
            self.seen.add(self.key(arch))
            self.archs.append(arch)
            self.rows.append(
                (
                    generation,
                    str(arch),
                    float(score),
                    costs(arch, "flops"),
                    costs(arch, "params"),
                    costs(arch, "latency"),
                    origin,
                )
            )

    @property
    def num_scored(self) -> int:
        return len(self.rows)

    def history(self) -> pd.DataFrame:
        frame = pd.DataFrame(self.rows, columns=list(HISTORY_COLUMNS))
        floats = {c: "float64" for c in ("score", "flops", "params", "latency")}
        return frame.astype({"generation": "int64", **floats})

    def ranked(self) -> list[int]:
        """Row indices, best score first; ties keep the order of scoring."""
        return sorted(range(len(self.rows)), key=lambda i: (-self.rows[i][2], i))

    def result(self, top_k: int) -> SearchResult:
        history = self.history()
        on_front = set(
            front_indices(history["score"], history[[o.column for o in OBJECTIVES]])
            if len(history)
            else []
        )
        top = []
        for i in self.ranked()[:top_k]:
            row = dict(zip(HISTORY_COLUMNS, self.rows[i]))
            entry = {"arch": row["arch"], "score": row["score"]}
            for o in OBJECTIVES:
                if row[o.column] == row[o.column]:  # known (not NaN)
                    entry[o.field] = row[o.column]
            entry["on_front"] = i in on_front
            top.append(entry)
        return SearchResult(history, top)


def _budget_left(archive: _Archive, budget: int | None, cap: int) -> int:
    return cap if budget is None else min(cap, budget - archive.num_scored)


# ------------------------------------------------------------------ searches
def _offspring(
    space: SlotSpace,
    archive: _Archive,
    parents: list[Arch],
    config: EvolutionConfig,
    want: int,
    rng: np.random.Generator,
    pending: set[str],
) -> tuple[list[Arch], list[str]]:
    """New children of ``parents``: first the mutations, then the crossovers, each with at
    most ``max_tries`` attempts per wanted child (rejected: illegal or already scored)."""
    batch: list[Arch] = []
    origins: list[str] = []
    for origin, count in (("mutation", config.num_mutations), ("crossover", config.num_crossovers)):
        count = min(count, want - len(batch))
        if origin == "crossover" and len(parents) < 2:
            break
        made = 0
        for _ in range(config.max_tries * count):
            if made == count:
                break
            if origin == "mutation":
                parent = parents[int(rng.integers(len(parents)))]
                child = archive.feasible.mutate(parent, config.mutation_prob, rng)
            else:
                i, j = rng.choice(len(parents), size=2, replace=False)
                child = archive.feasible.crossover(
                    parents[int(i)], parents[int(j)], config.crossover_prob, rng
                )
            if archive.accept(child, pending):
                batch.append(child)
                origins.append(origin)
                made += 1
    return batch, origins


def check_budget(config: EvolutionConfig) -> None:
    """Refuse a budget the search cannot spend: at most population x generations distinct
    archs are ever scored, so a larger budget would be capped silently."""
    cap = config.population * config.generations
    if config.budget is not None and config.budget > cap:
        raise ValueError(
            f"budget: {config.budget} exceeds population {config.population} x generations "
            f"{config.generations} = {cap} archs the search can score; raise the generations "
            "or lower the budget"
        )


def evolve(
    space: SlotSpace,
    evaluator: Scorer,
    config: EvolutionConfig | None = None,
    rng: np.random.Generator | int | None = None,
    *,
    mask: Mask | None = None,
    restrict: Collection[Arch] | None = None,
    limits: Budget | None = None,
    latency: LatencyFn | None = None,
    progress: ProgressFn | None = None,
) -> SearchResult:
    """The evolutionary search of NAS-LID (see the module docstring).

    Stops after ``config.generations`` generations, when ``config.budget`` distinct archs are
    scored, or when no new legal arch is left. Every arch meets the hardware ``limits``;
    ``latency`` predicts an arch's latency (needed by a latency limit; recorded in the
    history whenever given).
    """
    config = EvolutionConfig() if config is None else config
    check_budget(config)
    rng = np.random.default_rng(rng)
    archive = _Archive(space, mask, restrict, limits or Budget(), latency)
    for generation in range(config.generations):
        want = _budget_left(archive, config.budget, config.population)
        if want <= 0:
            break
        pending: set[str] = set()
        batch: list[Arch] = []
        origins: list[str] = []
        if generation > 0:
            parents = [archive.archs[i] for i in archive.ranked()[: config.num_parents]]
            batch, origins = _offspring(space, archive, parents, config, want, rng, pending)
        fill = archive.random_new(rng, want - len(batch), pending, config.max_tries)
        batch += fill
        origins += ["random"] * len(fill)
        if not batch:
            break
        archive.record(generation, batch, origins, evaluator)
        if progress is not None:
            progress(generation, archive.rows[archive.ranked()[0]][2])
    return archive.result(config.top_k)


def random_search(
    space: SlotSpace,
    evaluator: Scorer,
    budget: int,
    rng: np.random.Generator | int | None = None,
    *,
    mask: Mask | None = None,
    restrict: Collection[Arch] | None = None,
    limits: Budget | None = None,
    latency: LatencyFn | None = None,
    batch_size: int = 50,
    top_k: int = 10,
    max_tries: int = 10,
    progress: ProgressFn | None = None,
) -> SearchResult:
    """Baseline: ``budget`` distinct legal archs drawn uniformly (within ``limits``), scored in
    batches of ``batch_size`` (the ``generation`` column is the batch index), same rules as
    :func:`evolve`."""
    if budget < 1:
        raise ValueError(f"budget: must be at least 1, got {budget}")
    if batch_size < 1:
        raise ValueError(f"batch_size: must be at least 1, got {batch_size}")
    rng = np.random.default_rng(rng)
    archive = _Archive(space, mask, restrict, limits or Budget(), latency)
    batch_index = 0
    while archive.num_scored < budget:
        pending: set[str] = set()
        batch = archive.random_new(
            rng, min(batch_size, budget - archive.num_scored), pending, max_tries
        )
        if not batch:
            break
        archive.record(batch_index, batch, ["random"] * len(batch), evaluator)
        if progress is not None:
            progress(batch_index, archive.rows[archive.ranked()[0]][2])
        batch_index += 1
    return archive.result(top_k)


# ------------------------------------------------------------------ files
def load_archs(space: SlotSpace, path: str | Path) -> list[Arch]:
    """The archs of a CSV/parquet file's ``arch_str`` column (e.g. a LISSNAS ``space.csv``)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"restrict: file {path} not found")
    frame = read_table(path, "restrict")
    if "arch_str" not in frame.columns:
        raise ValueError(f"restrict: {path} has no 'arch_str' column")
    archs = []
    for text in frame["arch_str"].astype(str):
        try:
            archs.append(space.from_str(text))
        except ValueError as exc:
            raise ValueError(f"restrict: {path}: {exc}") from None
    if not archs:
        raise ValueError(f"restrict: {path} lists no arch")
    return archs


def write_result(result: SearchResult, out: str | Path, meta: dict | None = None) -> Path:
    """``out/top.json`` (best first), ``out/history.parquet``, ``out/history.csv`` and, when
    given, ``out/meta.json`` last, sealed over the folder's files (write any other file of
    the output before); every file written atomically."""
    out = Path(out)
    write_json(out / "top.json", result.top)
    write_table(out / "history.parquet", result.history)
    write_table(out / "history.csv", result.history)
    if meta is not None:
        write_json(out / "meta.json", seal_meta(meta, out))
    return out
