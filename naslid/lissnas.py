"""LISSNAS: locality-based iterative search space shrinkage (Sridhar, Gopal et al., IJCAI 2023).

No public code exists; this follows the paper:

1. *Seed search* (paper 4.1): sample architectures uniformly (one representative per
   isomorphism class), label them with a :data:`Labeller` (every labelled arch is one query),
   fit an XGBoost regressor on the one-hot encoding and measure its Kendall tau on held-out
   labelled archs.
2. *Neighbour generation* (paper 4.2): the top seeds by accuracy (labels where known, else
   predicted) plus all their neighbours up to an edit distance of a third of the largest
   possible one form the shrunk space.
3. *Iterative shrinkage* (paper 4.3): repeat from the shrunk space while its mean accuracy
   rises; when it falls or plateaus, return the previous iteration's space. Only step 1 spends
   queries; the predictor scores every member of later spaces.
4. *Statistics* (paper 4.4): size, reduction factor, mean/max accuracy, the shrink index (a
   binomial tail, shrunk minus original), the error EDF with a two-sample KS test, diversity
   (pairwise cosine distance of encodings) and FLOPs-range coverage.

Baselines (paper appendix H) run on the same labelled samples: naive top-x% of the samples,
seeds without neighbours, and ABS-like operation pruning.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from scipy import stats as sps
from scipy.spatial.distance import pdist

from naslid.spaces.base import Arch, Mask, SlotSpace

Labeller = Callable[[list[Arch]], np.ndarray]
"""Accuracy (percent) of each arch: a benchmark table, a sub-supernet proxy, any callable."""


@dataclass
class LissnasConfig:
    """Paper defaults and the knobs of this implementation, in one place."""

    samples: int = 1000
    """Labelled seed-search samples (paper 4.1: at least 1,000); the whole query budget."""
    top_seeds: int = 3
    """Seeds per iteration. 3 because, on NAS-Bench-201 with 1,000 table labels (bench/lissnas.py,
    RNG seeds 0-29), every k from 2 to 10 keeps a best cell (94.37) in 30 of 30 runs and the
    space under 5% of the 15,625 cells, but each seed adds a radius-2 ball of ~230 classes (the
    ball around the best cell itself averages only 93.1), so more seeds dilute the mean: the
    space's mean test accuracy is >= 93.0 in 29/30 runs with k=2, 26/30 with k=3, 22/30 with
    k=4, 18/30 with k=5 and 3/30 with k=10 (averages 93.17, 93.13, 93.04, 92.97, 92.81). k=2
    spaces are so small (175 archs on average) that the naive top-x% baseline of the same size
    beats them on the shrink index in 10 of 30 runs; from k=3 on LISSNAS beats it in 30 of 30.
    k=3 is the smallest k that beats it every time, and its average keeps a margin above 93.0."""
    distance_divisor: int = 3
    """Neighbour radius = ``max_edit_distance // distance_divisor`` (paper 4.2: one third)."""
    max_iterations: int = 10
    plateau_tol: float = 1e-3
    """A mean accuracy (percentage points) rising by no more than this is a plateau (paper 4.3)."""
    holdout_fraction: float = 0.2
    """Share of the labelled samples held out to measure the predictor's Kendall tau."""
    refit_on_all: bool = True
    """After measuring tau, refit the predictor on every labelled sample (no extra queries)."""
    enumerate_limit: int = 200_000
    """Spaces with at most this many archs are enumerated (NB201: 15,625); larger ones sampled."""
    original_sample: int = 5_000
    """Non-enumerable spaces: uniform draws standing for the original space in the statistics."""
    max_ball_size: int = 5_000
    """Neighbourhoods larger than this are sampled uniformly-by-distance instead of enumerated."""
    # XGBoost regressor (paper 4.1 uses an XGBoost predictor; hyperparameters are ours).
    xgb_n_estimators: int = 300
    xgb_max_depth: int = 6
    xgb_learning_rate: float = 0.05
    xgb_subsample: float = 0.8
    xgb_colsample_bytree: float = 1.0
    xgb_min_child_weight: float = 1.0
    xgb_n_jobs: int = 1
    """One thread: 1,000 x 30 inputs are too small to share; two threads cost 4x the CPU time."""
    # Shrink index (paper 4.4).
    shrink_n: int = 10
    shrink_k: int = 2
    shrink_top_fraction: float = 0.1
    """Threshold = the original space's top-10% accuracy (its 90th percentile)."""
    flops_bins: int = 10
    diversity_sample: int = 3_000
    """Pairwise cosine distances over at most this many members (uniform subsample)."""
    # Baselines (paper appendix H), on the same labelled samples.
    naive_top_fraction: float | None = None
    """H.1: keep this share of the labelled samples; None matches LISSNAS's size (capped at 1)."""
    seeds_only_count: int | None = None
    """H.2: the space is the iteration-1 seeds alone (the best labelled samples, no neighbour
    generation); None keeps ``top_seeds`` of them. (At LISSNAS's size it would equal H.1.)"""
    prune_rounds: int = 1
    """Operation pruning: rounds of dropping the lowest-ranked option of every slot."""

    def radius(self, space: SlotSpace) -> int:
        return max(1, space.max_edit_distance // self.distance_divisor)

    def check(self) -> LissnasConfig:
        if self.samples < 10:
            raise ValueError(f"samples: need at least 10 labelled archs, got {self.samples}")
        if self.top_seeds < 1:
            raise ValueError(f"top_seeds: must be at least 1, got {self.top_seeds}")
        if not 0.0 < self.holdout_fraction < 1.0:
            raise ValueError(f"holdout_fraction: must lie in (0, 1), got {self.holdout_fraction}")
        if not 1 <= self.shrink_k <= self.shrink_n:
            raise ValueError(
                f"shrink_k: must lie in [1, shrink_n={self.shrink_n}], got {self.shrink_k}"
            )
        if not 0.0 < self.shrink_top_fraction < 1.0:
            raise ValueError(
                f"shrink_top_fraction: must lie in (0, 1), got {self.shrink_top_fraction}"
            )
        return self


# ------------------------------------------------------------------ labellers
class TableLabeller:
    """A :data:`Labeller` reading a benchmark table (``naslid.benchmarks.Table``).

    A table is exhaustive and free to read, so the statistics may use it for every member of a
    space; the search itself still counts each labelled arch as a query.
    """

    exhaustive = True

    def __init__(self, table: Any):
        self.table = table

    def __call__(self, archs: list[Arch]) -> np.ndarray:
        return self.table.lookup(archs)


def table_labeller(table: Any) -> TableLabeller:
    """The labeller of a ``naslid.benchmarks.Table`` (``table[arch]`` accuracy)."""
    return TableLabeller(table)


def load_labeller(spec: str) -> Labeller:
    """A labeller from its name: ``table:CSV:COLUMN`` / ``nb201api:...`` (a benchmark table) or
    ``python:MODULE:ATTR`` (any importable callable taking a list of archs)."""
    kind, _, rest = spec.partition(":")
    if kind == "python":
        import importlib

        module, _, attr = rest.rpartition(":")
        if not module or not attr:
            raise ValueError(f"labels {spec!r}: expected python:MODULE:ATTR")
        try:
            fn = getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError) as exc:
            raise ValueError(f"labels {spec!r}: cannot import {module}.{attr} ({exc})") from None
        if not callable(fn):
            raise ValueError(f"labels {spec!r}: {module}.{attr} is not callable")
        return fn
    from naslid.benchmarks import load_table

    return table_labeller(load_table(spec))


class CountingLabeller:
    """Wraps a labeller and counts the archs it was asked about (the query budget)."""

    def __init__(self, labeller: Labeller):
        self.labeller = labeller
        self.queries = 0

    def __call__(self, archs: list[Arch]) -> np.ndarray:
        archs = list(archs)
        out = np.asarray(self.labeller(archs), dtype=np.float64).reshape(-1)
        if out.shape[0] != len(archs):
            raise ValueError(f"labeller: returned {out.shape[0]} labels for {len(archs)} archs")
        if not np.all(np.isfinite(out)):
            raise ValueError("labeller: returned a non-finite accuracy")
        self.queries += len(archs)
        return out


# --------------------------------------------------------- space enumeration
def distinct(space: SlotSpace, archs: Iterable[Arch]) -> list[Arch]:
    """Canonical representatives of ``archs``, first occurrence order, duplicates removed."""
    seen: dict[Arch, None] = {}
    for a in archs:
        seen.setdefault(space.canonical(a), None)
    return list(seen)


def enumerate_distinct(
    space: SlotSpace, mask: Mask | None = None, limit: int = 200_000
) -> list[Arch] | None:
    """Every isomorphism class inside ``mask`` (one representative each), or None if too large."""
    if space.mask_size(mask) > limit:
        return None
    return distinct(space, space.all_archs(mask))


def sample_distinct(
    space: SlotSpace,
    rng: np.random.Generator,
    n: int,
    mask: Mask | None = None,
    population: Sequence[Arch] | None = None,
) -> list[Arch]:
    """``n`` distinct archs drawn uniformly, one representative per isomorphism class.

    With ``population`` (the enumerated classes) the draw is uniform over classes without
    replacement; otherwise cells are drawn uniformly, canonicalised and deduplicated until
    ``n`` classes are found (or the space is exhausted).
    """
    if population is not None:
        idx = rng.choice(len(population), size=min(n, len(population)), replace=False)
        return [population[i] for i in idx]
    out: dict[Arch, None] = {}
    for _ in range(50):
        for a in space.sample(rng, 2 * (n - len(out)) + 16, mask):
            out.setdefault(space.canonical(a), None)
            if len(out) == n:
                return list(out)
    return list(out)


# ------------------------------------------------------------------ predictor
@dataclass
class Predictor:
    """XGBoost regressor on ``space.encode`` (one-hot per slot)."""

    space: SlotSpace
    model: Any
    kendall_tau: float
    kendall_pvalue: float
    n_train: int
    n_holdout: int

    def predict(self, archs: Sequence[Arch]) -> np.ndarray:
        if not archs:
            return np.zeros(0)
        return self.model.predict(self.space.encode(list(archs))).astype(np.float64)


def _xgb(cfg: LissnasConfig, seed: int) -> Any:
    import xgboost as xgb

    return xgb.XGBRegressor(
        n_estimators=cfg.xgb_n_estimators,
        max_depth=cfg.xgb_max_depth,
        learning_rate=cfg.xgb_learning_rate,
        subsample=cfg.xgb_subsample,
        colsample_bytree=cfg.xgb_colsample_bytree,
        min_child_weight=cfg.xgb_min_child_weight,
        tree_method="hist",
        n_jobs=cfg.xgb_n_jobs,
        random_state=seed,
    )


def fit_predictor(
    space: SlotSpace, archs: Sequence[Arch], labels: np.ndarray, cfg: LissnasConfig, seed: int = 0
) -> Predictor:
    """Fit on ``1 - holdout_fraction`` of the labelled archs, report Kendall tau on the rest."""
    labels = np.asarray(labels, dtype=np.float64)
    if len(archs) != len(labels):
        raise ValueError(f"labels: {len(labels)} labels for {len(archs)} archs")
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(archs))
    n_hold = max(2, int(round(cfg.holdout_fraction * len(archs))))
    hold, train = order[:n_hold], order[n_hold:]
    x = space.encode(list(archs))
    model = _xgb(cfg, seed).fit(x[train], labels[train])
    tau, pvalue = sps.kendalltau(labels[hold], model.predict(x[hold]))
    if cfg.refit_on_all:
        model = _xgb(cfg, seed).fit(x, labels)
    tau = float(tau) if np.isfinite(tau) else 0.0
    pvalue = float(pvalue) if np.isfinite(pvalue) else 1.0
    return Predictor(space, model, tau, pvalue, len(train), len(hold))


class Scorer:
    """Accuracy of archs: the label where one is known (queried), else the prediction."""

    def __init__(self, predictor: Predictor, known: Mapping[Arch, float]):
        self.predictor = predictor
        self.known = dict(known)

    def __call__(self, archs: Sequence[Arch]) -> np.ndarray:
        archs = list(archs)
        out = self.predictor.predict(archs)
        for i, a in enumerate(archs):
            if a in self.known:
                out[i] = self.known[a]
        return out


# ------------------------------------------------------- neighbour generation
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
    max_ball_size: int = 5_000,
) -> list[Arch]:
    """Seeds plus all their neighbours up to ``radius`` edits, deduplicated via canonical().

    ``within`` (the current space, distinct representatives) restricts the result to its
    members: the iterations of paper 4.3 shrink *from the shrunk space*. A neighbourhood larger
    than ``max_ball_size`` is not enumerated: inside ``within`` its members are found by edit
    distance, otherwise ``max_ball_size`` draws of it stand for it.
    """
    rng = np.random.default_rng(0) if rng is None else rng
    allowed = None if within is None else set(within)
    big = sum(ball_counts(space, radius)) > max_ball_size
    out: dict[Arch, None] = {}
    if big and within is not None:
        ops = np.asarray([a.ops for a in within])
        near = np.zeros(len(within), dtype=bool)
        for s in seeds:
            near |= (ops != np.asarray(s.ops)).sum(axis=1) <= radius
        return [a for a, keep in zip(within, near) if keep]
    for s in seeds:
        if big:
            cands = [s, *sample_ball(space, s, radius, max_ball_size, rng)]
        else:
            cands = [s] + [n for d in range(1, radius + 1) for n in space.neighbours(s, d)]
        for c in cands:
            c = space.canonical(c)
            if allowed is None or c in allowed:
                out.setdefault(c, None)
    return list(out)


def top_seeds(pool: Sequence[Arch], scores: np.ndarray, k: int) -> list[Arch]:
    """The ``k`` best archs of ``pool`` by score (ties broken by pool order)."""
    order = np.argsort(-np.asarray(scores), kind="stable")[:k]
    return [pool[i] for i in order]


def is_rising(previous_mean: float, mean: float, tol: float) -> bool:
    """Paper 4.3's continue rule: the mean accuracy rose by more than ``tol``."""
    return mean > previous_mean + tol


# ------------------------------------------------------------------ shrinkage
@dataclass
class Iterations:
    """What the iterative shrinkage (paper 4.3) returns."""

    archs: list[Arch]
    """The returned space (distinct representatives)."""
    seeds: list[Arch]
    """The seeds that generated it (empty when no iteration raised the mean)."""
    kept: int
    """Iterations whose space was kept (0: the original is returned)."""
    history: list[dict]
    """Iteration 0 (the original) and every iteration run: size, mean accuracy, rose or not."""


def iterate(
    space: SlotSpace,
    original: Sequence[Arch],
    first_pool: Sequence[Arch],
    score: Callable[[Sequence[Arch]], np.ndarray],
    top_k: int,
    radius: int,
    max_iterations: int = 10,
    plateau_tol: float = 1e-3,
    draws_per_iteration: int = 1000,
    rng: np.random.Generator | None = None,
    max_ball_size: int = 5_000,
    progress: Callable[[dict], None] | None = None,
) -> Iterations:
    """Paper 4.2-4.3: seeds plus neighbours, repeated from the shrunk space while it improves.

    Iteration 1 takes the ``top_k`` best of ``first_pool`` (the labelled samples: paper Fig. 3,
    "the best samples are taken as the seed networks") and their neighbourhoods in the whole
    space. Iteration t > 1 draws ``draws_per_iteration`` members of the previous space (all of
    them when it is no larger), takes the ``top_k`` best by ``score`` as seeds and keeps the
    previous space's members within ``radius`` of a seed. As soon as a space's mean score does
    not exceed the previous one's by more than ``plateau_tol``, the previous space is returned.
    """
    rng = np.random.default_rng(0) if rng is None else rng
    current, current_seeds = list(original), []
    current_mean = float(np.mean(score(current)))
    history = [{"iteration": 0, "size": len(current), "mean_accuracy": current_mean, "rose": True}]
    kept = 0
    for it in range(1, max_iterations + 1):
        if it == 1:
            draws = list(first_pool)
        elif len(current) <= draws_per_iteration:
            draws = current
        else:
            draws = [
                current[i] for i in rng.choice(len(current), draws_per_iteration, replace=False)
            ]
        seeds = top_seeds(draws, score(draws), top_k)
        new = neighbourhood(space, seeds, radius, None if it == 1 else current, rng, max_ball_size)
        new_mean = float(np.mean(score(new))) if new else -math.inf
        rose = is_rising(current_mean, new_mean, plateau_tol)
        entry = {"iteration": it, "size": len(new), "mean_accuracy": new_mean, "rose": bool(rose)}
        history.append(entry)
        if progress is not None:
            progress(entry)
        if not rose:
            break
        current, current_seeds, current_mean, kept = new, seeds, new_mean, it
    return Iterations(current, current_seeds, kept, history)


@dataclass
class ShrinkResult:
    """The shrunk space and everything the search learnt on the way."""

    archs: list[Arch]
    """The returned space (distinct representatives)."""
    seeds: list[Arch]
    """The seeds that generated the returned space."""
    first_seeds: list[Arch]
    """The seeds of iteration 1 (the best labelled samples)."""
    iterations: int
    """Iterations whose space was kept (0: no shrinkage helped, the original is returned)."""
    history: list[dict]
    """Per iteration: size, mean accuracy (labels where known else predicted), rose or not."""
    labelled: list[Arch]
    labels: np.ndarray
    predictor: Predictor
    scorer: Scorer
    queries: int
    original: list[Arch]
    """The original space: every class when enumerable, else a uniform sample of it."""
    original_enumerated: bool
    neighbourhoods_sampled: bool = False
    """Neighbourhoods too large to enumerate were sampled (``max_ball_size`` draws per seed):
    the space is then a sample of the union of neighbourhoods, and ``size`` counts the sample."""


def _original_space(
    space: SlotSpace, cfg: LissnasConfig, rng: np.random.Generator
) -> tuple[list[Arch], bool]:
    full = enumerate_distinct(space, limit=cfg.enumerate_limit)
    if full is not None:
        return full, True
    return sample_distinct(space, rng, cfg.original_sample), False


def shrink(
    space: SlotSpace,
    labeller: Labeller,
    cfg: LissnasConfig | None = None,
    seed: int = 0,
    progress: Callable[[dict], None] | None = None,
) -> ShrinkResult:
    """Run LISSNAS on ``space``, spending exactly the ``cfg.samples`` seed-search queries."""
    cfg = (cfg or LissnasConfig()).check()
    rng = np.random.default_rng(seed)
    original, enumerated = _original_space(space, cfg, rng)

    # 1. Seed search: label uniform samples (the only queries), fit the predictor.
    counter = CountingLabeller(labeller)
    labelled = sample_distinct(space, rng, cfg.samples, population=original if enumerated else None)
    if len(labelled) < 10:
        raise ValueError(
            f"space {space.name}: only {len(labelled)} distinct archs, too few to shrink"
        )
    labels = counter(labelled)
    predictor = fit_predictor(space, labelled, labels, cfg, seed)
    scorer = Scorer(predictor, dict(zip(labelled, labels)))

    # 2-3. Neighbour generation and iterative shrinkage; the predictor does the scoring.
    its = iterate(
        space,
        original,
        labelled,
        scorer,
        cfg.top_seeds,
        cfg.radius(space),
        cfg.max_iterations,
        cfg.plateau_tol,
        cfg.samples,
        rng,
        cfg.max_ball_size,
        progress,
    )
    return ShrinkResult(
        archs=its.archs,
        seeds=its.seeds,
        first_seeds=top_seeds(labelled, labels, cfg.top_seeds),
        iterations=its.kept,
        history=its.history,
        labelled=labelled,
        labels=labels,
        predictor=predictor,
        scorer=scorer,
        queries=counter.queries,
        original=original,
        original_enumerated=enumerated,
        neighbourhoods_sampled=sum(ball_counts(space, cfg.radius(space))) > cfg.max_ball_size,
    )


# ------------------------------------------------------------------ baselines
def naive_top_fraction(labelled: Sequence[Arch], labels: np.ndarray, fraction: float) -> list[Arch]:
    """Paper appendix H.1: the top ``fraction`` of the uniformly sampled labelled archs."""
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"naive_top_fraction: must lie in (0, 1], got {fraction}")
    k = max(1, int(round(fraction * len(labelled))))
    return top_seeds(labelled, labels, k)


def operation_ranking(
    space: SlotSpace, archs: Sequence[Arch], labels: np.ndarray
) -> list[dict[int, float]]:
    """Per slot, the mean label of the sampled archs using each option (ABS-like ranking)."""
    ops = np.asarray([a.ops for a in archs])
    labels = np.asarray(labels, dtype=np.float64)
    out = []
    for s in range(space.num_slots):
        out.append({int(o): float(labels[ops[:, s] == o].mean()) for o in np.unique(ops[:, s])})
    return out


def operation_pruning(
    space: SlotSpace,
    archs: Sequence[Arch],
    labels: np.ndarray,
    rounds: int = 1,
    mask: Mask | None = None,
) -> Mask:
    """Drop the lowest-ranked option of every slot, ``rounds`` times (ranked on the archs inside
    the mask at each round; an option never sampled ranks lowest; a slot keeps one option)."""
    mask = space.full_mask() if mask is None else space.check_mask(mask)
    for _ in range(rounds):
        inside = [i for i, a in enumerate(archs) if space.contains(mask, a)]
        if not inside:
            break
        rank = operation_ranking(space, [archs[i] for i in inside], np.asarray(labels)[inside])
        new = []
        for s, allowed in enumerate(mask):
            if len(allowed) == 1:
                new.append(allowed)
                continue
            worst = min(allowed, key=lambda o: (rank[s].get(o, -math.inf), -o))
            new.append(tuple(o for o in allowed if o != worst))
        mask = tuple(new)
    return mask


# ----------------------------------------------------------------- statistics
def shrink_probability(accuracy: np.ndarray, threshold: float, n: int = 10, k: int = 2) -> float:
    """P(at least ``k`` of ``n`` uniform draws reach ``threshold``): a binomial tail."""
    acc = np.asarray(accuracy, dtype=np.float64)
    if acc.size == 0:
        return 0.0
    p = float(np.mean(acc >= threshold))
    return float(sps.binom.sf(k - 1, n, p))


def shrink_index(
    accuracy: np.ndarray,
    original_accuracy: np.ndarray,
    n: int = 10,
    k: int = 2,
    threshold: float | None = None,
    top_fraction: float = 0.1,
) -> tuple[float, float]:
    """Paper 4.4: P_shrunk(>= k of n above threshold) - P_original(same); returns (index, threshold).

    The threshold defaults to the original space's top-``top_fraction`` accuracy (its
    ``1 - top_fraction`` quantile); an arch reaching it counts as above.
    """
    if threshold is None:
        threshold = float(
            np.quantile(np.asarray(original_accuracy, dtype=np.float64), 1.0 - top_fraction)
        )
    idx = shrink_probability(accuracy, threshold, n, k) - shrink_probability(
        original_accuracy, threshold, n, k
    )
    return float(idx), float(threshold)


def flops_coverage(flops: np.ndarray, original_flops: np.ndarray, bins: int = 10) -> float:
    """Share of the original FLOPs range, cut in ``bins`` equal bins, that ``flops`` still covers:
    occupied bins of the shrunk space over occupied bins of the original."""
    orig = np.asarray(original_flops, dtype=np.float64)
    lo, hi = float(orig.min()), float(orig.max())
    if hi <= lo:
        return 1.0 if len(flops) else 0.0
    edges = np.linspace(lo, hi, bins + 1)

    def occupied(values: np.ndarray) -> set[int]:
        values = np.asarray(values, dtype=np.float64)
        values = values[(values >= lo) & (values <= hi)]
        return set(np.clip(np.searchsorted(edges, values, side="right") - 1, 0, bins - 1).tolist())

    return len(occupied(flops) & occupied(orig)) / len(occupied(orig))


def cosine_diversity(encodings: np.ndarray) -> tuple[float, float]:
    """Mean and max pairwise cosine distance between rows (0, 0 for fewer than two)."""
    enc = np.asarray(encodings, dtype=np.float64)
    if len(enc) < 2:
        return 0.0, 0.0
    d = pdist(enc, metric="cosine")
    return float(d.mean()), float(d.max())


def error_edf(accuracy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Empirical distribution of the error (100 - accuracy): sorted errors and F at each."""
    err = np.sort(100.0 - np.asarray(accuracy, dtype=np.float64))
    return err, np.arange(1, len(err) + 1) / len(err)


def space_stats(
    space: SlotSpace,
    archs: Sequence[Arch],
    accuracy: np.ndarray,
    original: Sequence[Arch],
    original_accuracy: np.ndarray,
    original_size: int | None = None,
    cfg: LissnasConfig | None = None,
    rng: np.random.Generator | None = None,
    original_flops: np.ndarray | None = None,
) -> dict:
    """Statistics of a space against the original (paper 4.4).

    ``accuracy``/``original_accuracy`` are per member (labels where known, else predicted, or a
    benchmark table's values); ``original`` may be the whole space or a uniform sample of it,
    ``original_size`` its true number of distinct archs (defaults to ``len(original)``);
    ``original_flops`` saves recomputing the original's FLOPs.
    """
    cfg = cfg or LissnasConfig()
    rng = np.random.default_rng(0) if rng is None else rng
    acc = np.asarray(accuracy, dtype=np.float64)
    oacc = np.asarray(original_accuracy, dtype=np.float64)
    if len(archs) != len(acc) or len(original) != len(oacc):
        raise ValueError("space_stats: one accuracy per member is required")
    if len(archs) == 0:
        raise ValueError("space_stats: the space is empty")
    original_size = len(original) if original_size is None else original_size
    index, threshold = shrink_index(
        acc, oacc, cfg.shrink_n, cfg.shrink_k, None, cfg.shrink_top_fraction
    )
    ks = sps.ks_2samp(100.0 - acc, 100.0 - oacc)
    members = list(archs)
    if len(members) > cfg.diversity_sample:
        members = [
            members[i] for i in rng.choice(len(members), cfg.diversity_sample, replace=False)
        ]
    div_mean, div_max = cosine_diversity(space.encode(members))
    flops = np.array([space.flops(a) for a in archs])
    oflops = (
        np.array([space.flops(a) for a in original]) if original_flops is None else original_flops
    )
    grid = np.linspace(
        min(100 - acc.max(), 100 - oacc.max()), max(100 - acc.min(), 100 - oacc.min()), 50
    )
    return {
        "size": len(archs),
        "original_size": int(original_size),
        "reduction_factor": float(original_size / len(archs)),
        "fraction_of_original": float(len(archs) / original_size),
        "mean_accuracy": float(acc.mean()),
        "max_accuracy": float(acc.max()),
        "original_mean_accuracy": float(oacc.mean()),
        "original_max_accuracy": float(oacc.max()),
        "shrink_index": index,
        "shrink_threshold": threshold,
        "shrink_probability": shrink_probability(acc, threshold, cfg.shrink_n, cfg.shrink_k),
        "original_shrink_probability": shrink_probability(
            oacc, threshold, cfg.shrink_n, cfg.shrink_k
        ),
        "ks_statistic": float(ks.statistic),
        "ks_pvalue": float(ks.pvalue),
        "diversity_mean": div_mean,
        "diversity_max": div_max,
        "flops_coverage": flops_coverage(flops, oflops, cfg.flops_bins),
        "flops_min": float(flops.min()),
        "flops_max": float(flops.max()),
        "edf": {
            "error": grid.round(4).tolist(),
            "shrunk": np.searchsorted(np.sort(100 - acc), grid, side="right")
            .__truediv__(len(acc))
            .round(4)
            .tolist(),
            "original": np.searchsorted(np.sort(100 - oacc), grid, side="right")
            .__truediv__(len(oacc))
            .round(4)
            .tolist(),
        },
    }


# ------------------------------------------------------------------ the run
@dataclass
class LissnasRun:
    """A shrinkage, its baselines and their statistics, ready to be written out."""

    space: SlotSpace
    result: ShrinkResult
    accuracy_source: str
    """``table`` (an exhaustive table scores every member) or ``labels+predictor``."""
    accuracy: Callable[[Sequence[Arch]], np.ndarray]
    stats: dict
    baselines: dict[str, dict]
    baseline_archs: dict[str, list[Arch]] = field(default_factory=dict)
    config: LissnasConfig = field(default_factory=LissnasConfig)
    seed: int = 0


def _reference(
    labeller: Labeller, original: Sequence[Arch]
) -> Callable[[Sequence[Arch]], np.ndarray] | None:
    """An exhaustive, free accuracy source for the statistics: a table that has every member."""
    table = getattr(labeller, "table", None)
    if (
        getattr(labeller, "exhaustive", False)
        and table is not None
        and all(a in table for a in original)
    ):
        return lambda archs: table.lookup(list(archs))
    return None


def baseline_spaces(
    space: SlotSpace, res: ShrinkResult, size: int, cfg: LissnasConfig, rng: np.random.Generator
) -> tuple[dict[str, list[Arch]], dict[str, dict]]:
    """The baselines' spaces, built from the same labelled samples as ``res`` (no new queries).

    ``size`` is LISSNAS's space size: the shrink index rewards concentration whatever the size
    (a handful of top archs scores best), so the size-free baselines are compared at equal size.
    """
    fraction = (
        cfg.naive_top_fraction
        if cfg.naive_top_fraction is not None
        else min(1.0, size / len(res.labelled))
    )
    n_seeds = cfg.seeds_only_count if cfg.seeds_only_count is not None else cfg.top_seeds
    mask = operation_pruning(space, res.labelled, res.labels, cfg.prune_rounds)
    pruned = enumerate_distinct(space, mask, cfg.enumerate_limit)
    if pruned is None:
        pruned = sample_distinct(space, rng, cfg.original_sample, mask)
    spaces = {
        # H.1: the top x% of the uniformly sampled labelled archs.
        "naive_top_fraction": naive_top_fraction(res.labelled, res.labels, fraction),
        # H.2: the seeds without their neighbours.
        "seeds_only": top_seeds(res.labelled, res.labels, n_seeds),
        # ABS-like: drop the lowest-ranked option of every slot.
        "operation_pruning": pruned,
        # Not in the paper: the predictor's top archs of the original space, at equal size
        # (locality versus the predictor alone).
        "predictor_top": top_seeds(res.original, res.scorer(res.original), size),
    }
    extra = {
        "naive_top_fraction": {"fraction": float(fraction)},
        "seeds_only": {"count": n_seeds},
        "operation_pruning": {"mask": space.mask_to_json(mask), "mask_size": space.mask_size(mask)},
        "predictor_top": {"count": size},
    }
    return spaces, extra


def run(
    space: SlotSpace,
    labeller: Labeller,
    cfg: LissnasConfig | None = None,
    seed: int = 0,
    progress: Callable[[dict], None] | None = None,
) -> LissnasRun:
    """Shrink ``space``, build the baselines on the same labelled samples, compute statistics.

    With an exhaustive table as labeller, the statistics read every member's accuracy from it
    (free lookups, not queries); otherwise they use labels where known, else predictions.
    """
    cfg = (cfg or LissnasConfig()).check()
    res = shrink(space, labeller, cfg, seed, progress)
    ref = _reference(labeller, res.original) if res.original_enumerated else None
    accuracy = ref if ref is not None else res.scorer
    source = "table" if ref is not None else "labels+predictor"
    cells = space.mask_size()
    original_size = len(res.original) if res.original_enumerated else cells
    oacc = accuracy(res.original)
    oflops = np.array([space.flops(a) for a in res.original])
    rng = np.random.default_rng(seed + 1)

    def stats_of(archs: Sequence[Arch]) -> dict:
        out = space_stats(
            space, archs, accuracy(archs), res.original, oacc, original_size, cfg, rng, oflops
        )
        out["fraction_of_cells"] = len(archs) / cells
        return out

    stats = stats_of(res.archs)
    spaces, extra = baseline_spaces(space, res, len(res.archs), cfg, rng)
    baselines = {}
    for name, archs in spaces.items():
        b = stats_of(archs)
        b.pop("edf")
        baselines[name] = {**b, **extra[name]}
    stats.update(
        {
            "space": space.name,
            "seed": seed,
            "accuracy_source": source,
            "original_cells": cells,
            "original_enumerated": res.original_enumerated,
            "neighbourhoods_sampled": res.neighbourhoods_sampled,
            "queries": res.queries,
            "iterations": res.iterations,
            "history": res.history,
            "radius": cfg.radius(space),
            "top_seeds": cfg.top_seeds,
            "seeds": [str(a) for a in res.seeds],
            "predictor_kendall_tau": res.predictor.kendall_tau,
            "predictor_kendall_pvalue": res.predictor.kendall_pvalue,
            "predictor_train": res.predictor.n_train,
            "predictor_holdout": res.predictor.n_holdout,
            "baselines": baselines,
            "config": asdict(cfg),
        }
    )
    return LissnasRun(space, res, source, accuracy, stats, baselines, spaces, cfg, seed)


def space_frame(run_: LissnasRun) -> Any:
    """The shrunk space as a table: arch_str, predicted and known accuracy, FLOPs, params."""
    import pandas as pd

    res, space = run_.result, run_.space
    archs = res.archs
    known = np.array([res.scorer.known.get(a, np.nan) for a in archs])
    frame = pd.DataFrame(
        {
            "arch_str": [str(a) for a in archs],
            "predicted_accuracy": res.predictor.predict(archs),
            "known_accuracy": known,
            "flops_M": [space.flops(a) for a in archs],
            "params_M": [space.params(a) for a in archs],
        }
    )
    if run_.accuracy_source == "table":
        frame["table_accuracy"] = run_.accuracy(archs)
    return frame.sort_values("predicted_accuracy", ascending=False, kind="stable").reset_index(
        drop=True
    )


def write_outputs(run_: LissnasRun, out_dir: Any) -> dict[str, str]:
    """DIR/space.csv, DIR/space.parquet, DIR/stats.json, DIR/edf.png, DIR/flops_accuracy.png."""
    from pathlib import Path

    from naslid import plots
    from naslid.io import write_json, write_table

    out = Path(out_dir)
    frame = space_frame(run_)
    paths = {
        "space_csv": write_table(out / "space.csv", frame),
        "space_parquet": write_table(out / "space.parquet", frame),
        "stats": write_json(out / "stats.json", run_.stats),
    }
    res, acc = run_.result, run_.accuracy
    spaces = {"original": res.original, "lissnas": res.archs, **run_.baseline_archs}
    accs = {name: acc(archs) for name, archs in spaces.items()}
    paths["edf_png"] = plots.error_edf(
        {
            k: accs[k]
            for k in (
                "original",
                "lissnas",
                "naive_top_fraction",
                "operation_pruning",
                "predictor_top",
            )
        },
        out / "edf.png",
        title=f"{run_.space.name}: error EDF ({run_.accuracy_source})",
    )
    paths["flops_png"] = plots.flops_vs_accuracy(
        {k: ([run_.space.flops(a) for a in spaces[k]], accs[k]) for k in ("original", "lissnas")},
        out / "flops_accuracy.png",
        title=f"{run_.space.name}: FLOPs vs accuracy ({run_.accuracy_source})",
    )
    return {k: str(v) for k, v in paths.items()}
