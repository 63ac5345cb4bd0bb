"""LISSNAS: locality-based iterative search space shrinkage (Sridhar, Gopal et al., IJCAI 2023).

No public code exists; this follows the paper (``../shared/papers/lissnas-ijcai2023.txt``):

1. *Predictor* (paper 4.3 1(b), appendix F): label ``samples`` uniform architectures (every
   label is one oracle query), fit an XGBoost regressor on the one-hot encoding, measure its
   Kendall tau on held-out labelled archs. Appendix F trains it on a separate labelled set of
   10K pairs; here the labelled set is ``samples`` archs and the seed pool below is drawn apart.
2. *Seed search* (4.3 1(a), 1(c)): draw ``seed_pool`` archs of the current space (at least
   1,000 in the paper), score them with the predictor (predictor queries, counted) and keep the
   ``top_seeds`` best *by predicted accuracy* as seeds.
3. *Neighbour generation* (4.3 2(a)): every member of each seed's isomorphism class and all
   their neighbours up to a third of the largest edit distance; cells with no input-to-output
   path are dropped. Seeds plus neighbours form the new space; from iteration 2 on it is taken
   inside the previous space, so that its cardinality decreases with every iteration (the first
   of the two effectiveness conditions of 4.4).
4. *Iteration* (4.3 2(b), 2(c)): while the space's mean *predicted* accuracy rises, label
   ``refit_labels`` members of the new space (its seeds first, then uniform draws), refit the
   predictor on every label so far and go back to seed search; when the mean falls or
   plateaus, return the previous iteration's space.
5. *Statistics* (4.4, 5.2-5.4): sizes in classes and cells, mean/max accuracy and regret, the
   shrink index at several thresholds (n, k reported), a one-sided KS test against the
   complement with the area between the error EDFs, diversity (mean pairwise edit distance and
   mean cosine distance), FLOPs/params coverage under the labels' data set's cost model.

Baselines (appendix H) at the same number of oracle labels and the same size: naive top-x%
(H.1), no neighbours and random instead of local neighbours (H.2), the predictor's top-N of the
whole space (H.3) and ABS-like operation pruning.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np
from scipy import stats as sps
from scipy.spatial.distance import pdist

from naslid.spaces.base import Arch, Mask, SlotSpace

Labeller = Callable[[list[Arch]], np.ndarray]
"""Accuracy (percent) of each arch: a benchmark table, a sub-supernet proxy, any callable."""

NEIGHBOUR_MODES = ("locality", "random", "none")
SEED_RULES = ("predicted", "ensemble_lcb")


@dataclass
class LissnasConfig:
    """Paper defaults and the knobs of this implementation, in one place."""

    samples: int = 1000
    """Labelled uniform samples that train the predictor (paper 4.3 1(a): at least 1,000)."""
    seed_pool: int = 1000
    """Archs of the current space the predictor scores per iteration to pick seeds (all of
    them when the space is smaller)."""
    refit_labels: int | None = None
    """Members of each kept space labelled to refit the predictor (the seeds first); None:
    ``samples // 10``. Total oracle queries = samples + refit_labels x (kept iterations, at most
    ``max_iterations - 1``)."""
    top_seeds: int = 3
    """Seeds per iteration. The paper gives no number; each NB201 seed adds a radius-2 ball of
    about 200-300 classes, so this sets the space's size. ``bench/lissnas.py --top-seeds``."""
    distance_divisor: int = 3
    """Neighbour radius = ``max_edit_distance // distance_divisor`` (paper 4.3 2(a): one third)."""
    max_iterations: int = 10
    plateau_tol: float = 1e-3
    """A mean predicted accuracy (percentage points) rising by no more than this is a plateau."""
    isomorphism: str | None = None
    """Isomorphism rule (the space's ``isomorphisms``); None: the space's default (NB201:
    ``standard``, 6,466 unique cells)."""
    drop_disconnected: bool = True
    """Neighbours that compute nothing from the input (NB201: no path avoiding ``none``) are
    dropped."""
    neighbours: str = "locality"
    """``locality`` (the paper), ``random`` (H.2 "without locality": as many uniform draws of the
    current space as the neighbourhood would hold) or ``none`` (H.2 "no neighbour": seeds only)."""
    seed_rule: str = "predicted"
    """``predicted`` (the paper: the predictor's mean) or ``ensemble_lcb`` (not in the paper:
    the mean minus ``ensemble_beta`` x the spread of an ``ensemble_size`` bootstrap ensemble,
    i.e. seeds the predictor is sure about)."""
    pocket_filter: bool = False
    """Not in the paper's loop, within its idea ("selectively query pockets of likely
    well-performing networks", section 1): keep only the neighbours whose predicted accuracy
    reaches the current space's mean predicted accuracy (seeds always stay)."""
    ensemble_size: int = 5
    ensemble_beta: float = 1.0
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
    # XGBoost regressor (paper 4.3 uses an XGBoost predictor; hyperparameters are ours).
    xgb_n_estimators: int = 300
    xgb_max_depth: int = 6
    xgb_learning_rate: float = 0.05
    xgb_subsample: float = 0.8
    xgb_colsample_bytree: float = 1.0
    xgb_min_child_weight: float = 1.0
    xgb_n_jobs: int = 1
    """One thread: 1,000 x 30 inputs are too small to share; two threads cost 4x the CPU time."""
    # Shrink index (paper 4.4): "at least 20% good networks" -> k / n = 2 / 10.
    shrink_n: int = 10
    shrink_k: int = 2
    shrink_top_fraction: float = 0.1
    """``shrink_index``'s threshold: the original space's top-10% accuracy. Every space whose
    members all pass it scores the ceiling 1 - P_0, so ``shrink_indices`` adds stricter ones."""
    shrink_top_fractions: tuple[float, ...] = (0.01, 0.05, 0.1)
    flops_bins: int = 10
    diversity_sample: int = 3_000
    """Pairwise distances over at most this many members (uniform subsample)."""
    cost_dataset: str | None = None
    """Cost model of the statistics' FLOPs/params (NB201: cifar10, cifar100, ImageNet16-120);
    None: the space's default (CIFAR-10 for NB201)."""
    # Baselines (paper appendix H), at LISSNAS's number of oracle labels and size.
    baselines: bool = True
    """Build the baselines (they label ``queries - samples`` extra uniform archs)."""
    naive_top_fractions: tuple[float, ...] = (0.05, 0.1, 0.2, 0.3)
    """H.1: the top x% of the uniformly labelled archs (the paper's Top-5 ... Top-30)."""

    def radius(self, space: SlotSpace) -> int:
        return max(1, space.max_edit_distance // self.distance_divisor)

    def refits(self) -> int:
        return self.samples // 10 if self.refit_labels is None else self.refit_labels

    def rule(self, space: SlotSpace) -> str:
        rule = self.isomorphism or space.isomorphisms[0]
        if rule not in space.isomorphisms:
            raise ValueError(
                f"isomorphism {rule!r}: space {space.name} knows {', '.join(space.isomorphisms)}"
            )
        return rule

    def check(self) -> LissnasConfig:
        if self.samples < 10:
            raise ValueError(f"samples: need at least 10 labelled archs, got {self.samples}")
        if self.top_seeds < 1:
            raise ValueError(f"top_seeds: must be at least 1, got {self.top_seeds}")
        if self.max_iterations < 1:
            raise ValueError(
                f"max_iterations: must be at least 1 (0 would return the original space), "
                f"got {self.max_iterations}"
            )
        if self.seed_pool < self.top_seeds:
            raise ValueError(f"seed_pool: must be at least top_seeds, got {self.seed_pool}")
        if self.refits() < 0:
            raise ValueError(f"refit_labels: must be at least 0, got {self.refit_labels}")
        if not 0.0 < self.holdout_fraction < 1.0:
            raise ValueError(f"holdout_fraction: must lie in (0, 1), got {self.holdout_fraction}")
        if not 1 <= self.shrink_k <= self.shrink_n:
            raise ValueError(
                f"shrink_k: must lie in [1, shrink_n={self.shrink_n}], got {self.shrink_k}"
            )
        for f in (self.shrink_top_fraction, *self.shrink_top_fractions, *self.naive_top_fractions):
            if not 0.0 < f < 1.0:
                raise ValueError(f"top fractions: must lie in (0, 1), got {f}")
        if self.neighbours not in NEIGHBOUR_MODES:
            raise ValueError(
                f"neighbours: expected one of {NEIGHBOUR_MODES}, got {self.neighbours!r}"
            )
        if self.seed_rule not in SEED_RULES:
            raise ValueError(f"seed_rule: expected one of {SEED_RULES}, got {self.seed_rule!r}")
        if self.ensemble_size < 1:
            raise ValueError(f"ensemble_size: must be at least 1, got {self.ensemble_size}")
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


def load_labeller(spec: str, kind: str = "accuracy") -> Labeller:
    """A labeller from its name: ``table:CSV:COLUMN`` / ``nb201api:...`` (a benchmark table) or
    ``python:MODULE:ATTR`` (any importable callable taking a list of archs). ``kind``: whether a
    table's values must be percentages (``naslid.benchmarks.LABEL_KINDS``)."""
    source, _, rest = spec.partition(":")
    if source == "python":
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

    return table_labeller(load_table(spec, kind))


def infer_cost_dataset(spec: str) -> str | None:
    """The NAS-Bench-201 data set a label spec names -- the COLUMN of ``table:CSV:COLUMN``,
    the DATASET of ``nb201api:FILE:DATASET:SETTING`` (``c10_...``/``cifar10`` -> cifar10,
    ``c100``/``cifar100`` -> cifar100, ``ImageNet16``/``in16`` -> ImageNet16-120) -- else None."""
    parts = spec.split(":")
    column = (parts[-2] if parts[0] == "nb201api" and len(parts) >= 4 else parts[-1]).lower()
    if column.startswith(("c100", "cifar100")):
        return "cifar100"
    if column.startswith(("c10", "cifar10")):
        return "cifar10"
    if column.startswith(("imagenet16", "in16", "im16")):
        return "ImageNet16-120"
    return None


def cost_dataset_for(space: SlotSpace, spec: str) -> str | None:
    """The cost model a label spec implies for ``space``: the data set its column names when
    the space has per-data-set cost models (NAS-Bench-201), else None (the space's only one)."""
    return infer_cost_dataset(spec) if space.cost_datasets else None


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
def distinct(space: SlotSpace, archs: Iterable[Arch], rule: str | None = None) -> list[Arch]:
    """Canonical representatives of ``archs``, first occurrence order, duplicates removed."""
    seen: dict[Arch, None] = {}
    for a in archs:
        seen.setdefault(space.canonical(a, rule), None)
    return list(seen)


def enumerate_distinct(
    space: SlotSpace, mask: Mask | None = None, limit: int = 200_000, rule: str | None = None
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
            out.setdefault(space.canonical(a, rule), None)
            if len(out) == n:
                return list(out)
    return list(out)


def check_cost_dataset(space: SlotSpace, dataset: str | None) -> None:
    """Refuse a cost model the space does not have, before any label is spent."""
    if dataset is not None and dataset not in space.cost_datasets:
        known = ", ".join(space.cost_datasets) or "none: it has one cost model"
        raise ValueError(f"cost_dataset: {space.name} has no {dataset!r} cost model ({known})")


def cost(space: SlotSpace, archs: Sequence[Arch], kind: str, dataset: str | None) -> np.ndarray:
    """FLOPs or params (millions) of ``archs`` under the data set's cost model."""
    fn = space.flops if kind == "flops" else space.params
    if dataset is None:
        return np.array([fn(a) for a in archs], dtype=np.float64)
    return np.array([fn(a, dataset) for a in archs], dtype=np.float64)  # type: ignore[call-arg]


# ------------------------------------------------------------------ predictor
class QueryCounter:
    """How many archs the predictors were asked about (appendix H.2 counts them)."""

    def __init__(self) -> None:
        self.queries = 0


@dataclass
class Predictor:
    """XGBoost regressor on ``space.encode`` (one-hot per slot); with several models, a
    bootstrap ensemble whose mean is the prediction and whose spread is its uncertainty."""

    space: SlotSpace
    models: list[Any]
    kendall_tau: float
    kendall_pvalue: float
    n_train: int
    n_holdout: int
    counter: QueryCounter = field(default_factory=QueryCounter)

    def _all(self, archs: Sequence[Arch]) -> np.ndarray:
        self.counter.queries += len(archs)
        x = self.space.encode(list(archs))
        return np.stack([m.predict(x).astype(np.float64) for m in self.models])

    def predict(self, archs: Sequence[Arch]) -> np.ndarray:
        if not archs:
            return np.zeros(0)
        return self._all(archs).mean(axis=0)

    def predict_std(self, archs: Sequence[Arch]) -> tuple[np.ndarray, np.ndarray]:
        if not archs:
            return np.zeros(0), np.zeros(0)
        p = self._all(archs)
        return p.mean(axis=0), p.std(axis=0)


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
    space: SlotSpace,
    archs: Sequence[Arch],
    labels: np.ndarray,
    cfg: LissnasConfig,
    seed: int = 0,
    counter: QueryCounter | None = None,
    holdout: bool = True,
) -> Predictor:
    """Fit on ``1 - holdout_fraction`` of the labelled archs, report Kendall tau on the rest,
    then (``refit_on_all``) refit on all. With ``seed_rule="ensemble_lcb"`` the final model is a
    bootstrap ensemble of ``ensemble_size`` (the first member on the data as it is)."""
    labels = np.asarray(labels, dtype=np.float64)
    if len(archs) != len(labels):
        raise ValueError(f"labels: {len(labels)} labels for {len(archs)} archs")
    rng = np.random.default_rng(seed)
    x = space.encode(list(archs))
    tau, pvalue, n_hold, n_train = math.nan, math.nan, 0, len(archs)
    model = None
    if holdout:
        order = rng.permutation(len(archs))
        n_hold = max(2, int(round(cfg.holdout_fraction * len(archs))))
        hold, train = order[:n_hold], order[n_hold:]
        model = _xgb(cfg, seed).fit(x[train], labels[train])
        tau, pvalue = sps.kendalltau(labels[hold], model.predict(x[hold]))
        n_train = len(train)
    if model is None or cfg.refit_on_all:
        model = _xgb(cfg, seed).fit(x, labels)
    models = [model]
    if cfg.seed_rule == "ensemble_lcb":
        for i in range(1, cfg.ensemble_size):
            boot = rng.integers(0, len(archs), size=len(archs))
            models.append(_xgb(cfg, seed + i).fit(x[boot], labels[boot]))
    tau = float(tau) if np.isfinite(tau) else 0.0
    pvalue = float(pvalue) if np.isfinite(pvalue) else 1.0
    return Predictor(space, models, tau, pvalue, n_train, n_hold, counter or QueryCounter())


class Scorer:
    """Accuracy of archs: the label where one is known (queried), else the prediction."""

    def __init__(self, predictor: Predictor, known: Mapping[Arch, float]):
        self.predictor = predictor
        self.known = dict(known)

    def __call__(self, archs: Sequence[Arch]) -> np.ndarray:
        archs = list(archs)
        out = np.zeros(len(archs))
        unknown = [i for i, a in enumerate(archs) if a not in self.known]
        if unknown:
            out[unknown] = self.predictor.predict([archs[i] for i in unknown])
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
    rule: str | None = None,
    drop_disconnected: bool = True,
) -> list[Arch]:
    """Paper 4.3 2(a): seeds plus every neighbour, up to ``radius`` edits, of every member of
    each seed's isomorphism class (``space.class_members``); canonical representatives,
    duplicates removed, and (``drop_disconnected``) cells that compute nothing dropped.

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
    return list(out)


def top_seeds(pool: Sequence[Arch], scores: np.ndarray, k: int) -> list[Arch]:
    """The ``k`` best archs of ``pool`` by score (ties broken by pool order)."""
    order = np.argsort(-np.asarray(scores), kind="stable")[:k]
    return [pool[i] for i in order]


def is_rising(previous_mean: float, mean: float, tol: float) -> bool:
    """Paper 4.3 2(b)-(c)'s continue rule: the mean accuracy rose by more than ``tol``."""
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
    """Iteration 0 (the original) and every iteration run: size, mean score, rose or not."""


def iterate(
    space: SlotSpace,
    original: Sequence[Arch],
    score: Callable[[Sequence[Arch]], np.ndarray],
    top_k: int,
    radius: int,
    *,
    seed_score: Callable[[Sequence[Arch]], np.ndarray] | None = None,
    label: Callable[[list[Arch], int], int] | None = None,
    refit_labels: int = 0,
    max_iterations: int = 10,
    plateau_tol: float = 1e-3,
    seed_pool: int = 1000,
    rng: np.random.Generator | None = None,
    max_ball_size: int = 5_000,
    rule: str | None = None,
    drop_disconnected: bool = True,
    neighbours: str = "locality",
    pocket_filter: bool = False,
    progress: Callable[[dict], None] | None = None,
) -> Iterations:
    """Paper 4.3: seed search and neighbour generation, repeated while the mean score rises.

    Iteration t draws ``seed_pool`` members of the current space (all of them when it is no
    larger; iteration 1: the original), keeps the ``top_k`` best by ``seed_score`` (default
    ``score``, the predicted accuracy) as seeds and builds their neighbourhood (iteration 1 in
    the whole space, later ones inside the current space). If its mean ``score`` exceeds the
    current one's by more than ``plateau_tol`` the new space is kept and ``label(candidates,
    refit_labels)`` labels up to ``refit_labels`` of its members (seeds first) and refits the
    predictor behind ``score``; the current mean is then re-scored with the refit predictor, so
    that every comparison uses one predictor. Otherwise the current space is returned.
    ``pocket_filter`` keeps only the neighbours predicted at least at the current mean.
    """
    rng = np.random.default_rng(0) if rng is None else rng
    seed_score = score if seed_score is None else seed_score
    current, current_seeds = list(original), []
    current_mean = float(np.mean(score(current)))
    history = [{"iteration": 0, "size": len(current), "mean_accuracy": current_mean, "rose": True}]
    kept = 0
    for it in range(1, max_iterations + 1):
        if len(current) <= seed_pool:
            pool = current
        else:
            pool = [current[i] for i in rng.choice(len(current), seed_pool, replace=False)]
        seeds = top_seeds(pool, seed_score(pool), top_k)
        within = None if it == 1 else current
        ys = None  # the predictions of ``new``, once
        if neighbours == "none":
            new = list(dict.fromkeys(seeds))
        else:
            new = neighbourhood(
                space, seeds, radius, within, rng, max_ball_size, rule, drop_disconnected
            )
            if neighbours == "random":  # H.2: as many uniform draws instead of the neighbours
                chosen = list(dict.fromkeys(seeds))
                taken = set(chosen)
                rest = [a for a in current if a not in taken]
                n = min(len(rest), len(new) - len(chosen))
                new = chosen + [rest[i] for i in rng.choice(len(rest), n, replace=False)]
            elif pocket_filter:
                keep = set(seeds)
                pairs = [(a, y) for a, y in zip(new, score(new)) if a in keep or y >= current_mean]
                new, ys = [a for a, _ in pairs], [y for _, y in pairs]
        if ys is None:
            ys = score(new) if new else []
        new_mean = float(np.mean(ys)) if len(new) else -math.inf
        rose = is_rising(current_mean, new_mean, plateau_tol)
        entry = {
            "iteration": it,
            "size": len(new),
            "mean_accuracy": new_mean,
            "rose": bool(rose),
            "seeds": [str(s) for s in seeds],
        }
        history.append(entry)
        if progress is not None:
            progress(entry)
        if not rose:
            break
        current, current_seeds, current_mean, kept = new, seeds, new_mean, it
        if label is not None and refit_labels > 0 and it < max_iterations:
            order = rng.permutation(len(new))
            cands = list(dict.fromkeys([*seeds, *(new[i] for i in order)]))
            entry["labelled"] = int(label(cands, refit_labels))
            current_mean = float(np.mean(score(current)))
            entry["mean_accuracy_refit"] = current_mean
    return Iterations(current, current_seeds, kept, history)


@dataclass
class ShrinkResult:
    """The shrunk space and everything the search learnt on the way."""

    archs: list[Arch]
    """The returned space (distinct representatives)."""
    seeds: list[Arch]
    """The seeds that generated the returned space."""
    iterations: int
    """Iterations whose space was kept (0: no shrinkage helped, the original is returned)."""
    history: list[dict]
    """Per iteration: size, mean predicted accuracy, rose or not, seeds, labels added."""
    labelled: list[Arch]
    """Every labelled arch: the ``samples`` uniform ones first, then the refit labels."""
    labels: np.ndarray
    predictor: Predictor
    """The last refit predictor."""
    first_predictor: Predictor
    """The predictor fitted on the uniform samples (its Kendall tau is on held-out samples)."""
    scorer: Scorer
    queries: int
    """Oracle queries (labels): samples + refit labels."""
    predictor_queries: int
    """Archs scored by a predictor (seed pools, space means, refit re-scoring)."""
    original: list[Arch]
    """The original space: every class when enumerable, else a uniform sample of it."""
    original_enumerated: bool
    rule: str
    neighbourhoods_sampled: bool = False
    """Neighbourhoods too large to enumerate were sampled (``max_ball_size`` draws per seed):
    the space is then a sample of the union of neighbourhoods, and ``size`` counts the sample."""
    uniform: int = 0
    """How many of ``labelled`` are the uniform samples (the first ones)."""


def _original_space(
    space: SlotSpace, cfg: LissnasConfig, rng: np.random.Generator, rule: str
) -> tuple[list[Arch], bool]:
    full = enumerate_distinct(space, limit=cfg.enumerate_limit, rule=rule)
    if full is not None:
        return full, True
    return sample_distinct(space, rng, cfg.original_sample, rule=rule), False


def _seed_scorer(
    cfg: LissnasConfig, current: Callable[[], Predictor]
) -> Callable[[Sequence[Arch]], np.ndarray]:
    """The seed choice's score (``cfg.seed_rule``) under the current predictor."""

    def lcb(pool: Sequence[Arch]) -> np.ndarray:
        mean, std = current().predict_std(pool)
        return mean - cfg.ensemble_beta * std

    if cfg.seed_rule == "ensemble_lcb":
        return lcb
    return lambda pool: current().predict(pool)


def shrink(
    space: SlotSpace,
    labeller: Labeller,
    cfg: LissnasConfig | None = None,
    seed: int = 0,
    progress: Callable[[dict], None] | None = None,
) -> ShrinkResult:
    """Run LISSNAS on ``space``: ``cfg.samples`` uniform labels, then the iterations of 4.3."""
    cfg = (cfg or LissnasConfig()).check()
    rule = cfg.rule(space)
    rng = np.random.default_rng(seed)
    original, enumerated = _original_space(space, cfg, rng, rule)
    if cfg.samples > len(original) and enumerated:
        raise ValueError(
            f"samples: {cfg.samples} exceeds the {len(original)} distinct archs of space "
            f"{space.name} (isomorphism {rule!r})"
        )

    counter = CountingLabeller(labeller)
    pcount = QueryCounter()
    labelled = sample_distinct(
        space, rng, cfg.samples, population=original if enumerated else None, rule=rule
    )
    if len(labelled) < 10:
        raise ValueError(
            f"space {space.name}: only {len(labelled)} distinct archs, too few to shrink"
        )
    labels = counter(labelled)
    known = dict(zip(labelled, labels.tolist()))
    first = fit_predictor(space, labelled, labels, cfg, seed, pcount)
    state = {"predictor": first}

    def score(archs: Sequence[Arch]) -> np.ndarray:
        return state["predictor"].predict(archs)

    def label(cands: list[Arch], n: int) -> int:
        new = [a for a in cands if a not in known][:n]
        if not new:
            return 0
        for a, y in zip(new, counter(new).tolist()):
            known[a] = y
        archs = list(known)
        state["predictor"] = fit_predictor(
            space, archs, np.array([known[a] for a in archs]), cfg, seed, pcount, holdout=False
        )
        return len(new)

    radius = cfg.radius(space)
    its = iterate(
        space,
        original,
        score,
        cfg.top_seeds,
        radius,
        seed_score=_seed_scorer(cfg, lambda: state["predictor"]),
        label=label,
        refit_labels=cfg.refits(),
        max_iterations=cfg.max_iterations,
        plateau_tol=cfg.plateau_tol,
        seed_pool=cfg.seed_pool,
        rng=rng,
        max_ball_size=cfg.max_ball_size,
        rule=rule,
        drop_disconnected=cfg.drop_disconnected,
        neighbours=cfg.neighbours,
        pocket_filter=cfg.pocket_filter,
        progress=progress,
    )
    archs = list(known)
    predictor = state["predictor"]
    return ShrinkResult(
        archs=its.archs,
        seeds=its.seeds,
        iterations=its.kept,
        history=its.history,
        labelled=archs,
        labels=np.array([known[a] for a in archs]),
        predictor=predictor,
        first_predictor=first,
        scorer=Scorer(predictor, known),
        queries=counter.queries,
        predictor_queries=pcount.queries,
        original=original,
        original_enumerated=enumerated,
        rule=rule,
        neighbourhoods_sampled=sum(ball_counts(space, radius)) > cfg.max_ball_size,
        uniform=len(labelled),
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


def operation_pruning_to_size(
    space: SlotSpace,
    archs: Sequence[Arch],
    labels: np.ndarray,
    size: int,
    count: Callable[[Mask], int],
) -> Mask:
    """ABS-like pruning at a matched size: drop, one at a time, the option whose sampled archs
    have the lowest mean label over all slots (inside the current mask; never sampled ranks
    lowest), and stop at the mask whose ``count`` (its number of classes) is closest to
    ``size``."""
    mask = space.full_mask()
    best, best_gap = mask, abs(count(mask) - size)
    labels = np.asarray(labels, dtype=np.float64)
    while count(mask) > size:
        inside = [i for i, a in enumerate(archs) if space.contains(mask, a)]
        if not inside:
            break
        rank = operation_ranking(space, [archs[i] for i in inside], labels[inside])
        options = [
            (rank[s].get(o, -math.inf), -s, -o, s, o)
            for s, allowed in enumerate(mask)
            if len(allowed) > 1
            for o in allowed
        ]
        if not options:
            break
        *_, s, o = min(options)
        mask = tuple(tuple(x for x in a if x != o) if i == s else a for i, a in enumerate(mask))
        gap = abs(count(mask) - size)
        if gap < best_gap:
            best, best_gap = mask, gap
    return best


# ----------------------------------------------------------------- statistics
def shrink_probability(accuracy: np.ndarray, threshold: float, n: int = 10, k: int = 2) -> float:
    """P(at least ``k`` of ``n`` uniform draws reach ``threshold``): a binomial tail (Theorem 1)."""
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
    """Paper 4.4, eq. 2: P_shrunk(>= k of n reach threshold) - P_original(same); returns
    (index, threshold).

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


def shrink_indices(
    accuracy: np.ndarray,
    original_accuracy: np.ndarray,
    top_fractions: Sequence[float],
    n: int = 10,
    k: int = 2,
) -> dict[str, dict]:
    """The shrink index at the original's top-x% thresholds, with n, k and both shares."""
    acc, oacc = np.asarray(accuracy, float), np.asarray(original_accuracy, float)
    out = {}
    for f in top_fractions:
        index, thr = shrink_index(acc, oacc, n, k, None, f)
        out[f"top_{100 * f:g}%"] = {
            "top_fraction": float(f),
            "threshold": thr,
            "n": n,
            "k": k,
            "share_shrunk": float(np.mean(acc >= thr)),
            "share_original": float(np.mean(oacc >= thr)),
            "p_shrunk": shrink_probability(acc, thr, n, k),
            "p_original": shrink_probability(oacc, thr, n, k),
            "shrink_index": index,
        }
    return out


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
    """Mean and max pairwise cosine distance between rows (0, 0 for fewer than two). The
    paper's diversity (5.4, appendix J) is the mean; the max is 1 for almost any space of one-hot
    encodings and says nothing."""
    enc = np.asarray(encodings, dtype=np.float64)
    if len(enc) < 2:
        return 0.0, 0.0
    d = pdist(enc, metric="cosine")
    return float(d.mean()), float(d.max())


def edit_diversity(archs: Sequence[Arch]) -> float:
    """Mean pairwise edit distance (slots that differ) between the archs (0 for fewer than two)."""
    if len(archs) < 2:
        return 0.0
    ops = np.asarray([a.ops for a in archs])
    return float(pdist(ops, metric="hamming").mean() * ops.shape[1])


def error_edf(accuracy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Empirical distribution of the error (100 - accuracy): sorted errors and F at each."""
    err = np.sort(100.0 - np.asarray(accuracy, dtype=np.float64))
    return err, np.arange(1, len(err) + 1) / len(err)


def edf_area(accuracy: np.ndarray, other_accuracy: np.ndarray) -> tuple[float, float]:
    """Signed and absolute area between the error EDFs, ``integral (F_a - F_b) de``: positive when
    ``a`` has more low-error archs. The signed area equals mean error of b - mean error of a."""
    ea = np.sort(100.0 - np.asarray(accuracy, dtype=np.float64))
    eb = np.sort(100.0 - np.asarray(other_accuracy, dtype=np.float64))
    if not len(ea) or not len(eb):
        return 0.0, 0.0
    grid = np.union1d(ea, eb)
    fa = np.searchsorted(ea, grid, side="right") / len(ea)
    fb = np.searchsorted(eb, grid, side="right") / len(eb)
    widths = np.diff(grid)
    diff = (fa - fb)[:-1]
    return float((diff * widths).sum()), float((np.abs(diff) * widths).sum())


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
    *,
    rule: str | None = None,
    original_cells: int | None = None,
    original_params: np.ndarray | None = None,
) -> dict:
    """Statistics of a space against the original (paper 4.4, 5.2-5.4).

    ``accuracy``/``original_accuracy`` are per member (labels where known, else predicted, or a
    benchmark table's values); ``original`` may be the whole space (one representative per
    class) or a uniform sample of it, ``original_size`` its true number of classes (defaults to
    ``len(original)``) and ``original_cells`` its number of cells. The KS test compares the
    space with its *complement* in ``original`` (independent samples; one-sided: the space's
    errors are smaller), not with the original that contains it.
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
    cells = [len(space.class_members(a, rule)) for a in archs]
    original_cells = space.mask_size() if original_cells is None else original_cells
    index, threshold = shrink_index(
        acc, oacc, cfg.shrink_n, cfg.shrink_k, None, cfg.shrink_top_fraction
    )
    members = set(archs)
    comp = np.array([y for a, y in zip(original, oacc) if a not in members])
    if len(comp):
        method = "exact" if len(acc) * len(comp) <= 10_000 else "asymp"
        ks = sps.ks_2samp(100.0 - acc, 100.0 - comp, alternative="greater", method=method)
        ks_stat, ks_p = float(ks.statistic), float(ks.pvalue)
    else:
        ks_stat, ks_p = 0.0, 1.0
    area, area_abs = edf_area(acc, comp) if len(comp) else (0.0, 0.0)
    sub = list(archs)
    if len(sub) > cfg.diversity_sample:
        sub = [sub[i] for i in rng.choice(len(sub), cfg.diversity_sample, replace=False)]
    div_mean, div_max = cosine_diversity(space.encode(sub))
    ds = cfg.cost_dataset
    flops, params = cost(space, archs, "flops", ds), cost(space, archs, "params", ds)
    oflops = cost(space, original, "flops", ds) if original_flops is None else original_flops
    oparams = cost(space, original, "params", ds) if original_params is None else original_params
    lo = min(100 - acc.max(), 100 - oacc.max())
    hi = max(100 - acc.min(), 100 - oacc.min())
    grid = np.linspace(lo, hi, 50)
    return {
        "size": len(archs),
        "size_cells": int(sum(cells)),
        "original_size": int(original_size),
        "original_cells": int(original_cells),
        "reduction_factor": float(original_size / len(archs)),
        "fraction_of_original": float(len(archs) / original_size),
        "fraction_of_cells": float(sum(cells) / original_cells),
        "mean_accuracy": float(acc.mean()),
        "max_accuracy": float(acc.max()),
        "original_mean_accuracy": float(oacc.mean()),
        "original_max_accuracy": float(oacc.max()),
        "regret": float(oacc.max() - acc.max()),
        "shrink_index": index,
        "shrink_threshold": threshold,
        "shrink_n": cfg.shrink_n,
        "shrink_k": cfg.shrink_k,
        "shrink_probability": shrink_probability(acc, threshold, cfg.shrink_n, cfg.shrink_k),
        "original_shrink_probability": shrink_probability(
            oacc, threshold, cfg.shrink_n, cfg.shrink_k
        ),
        "shrink_indices": shrink_indices(
            acc, oacc, cfg.shrink_top_fractions, cfg.shrink_n, cfg.shrink_k
        ),
        "ks_statistic": ks_stat,
        "ks_pvalue": ks_p,
        "ks_test": "one-sided two-sample KS, space vs its complement: space errors smaller",
        "complement_size": int(len(comp)),
        "edf_area": area,
        "edf_area_abs": area_abs,
        "diversity_edit_distance": edit_diversity(sub),
        "diversity_mean": div_mean,
        "diversity_max": div_max,
        "cost_dataset": ds or "default",
        "flops_coverage": flops_coverage(flops, oflops, cfg.flops_bins),
        "params_coverage": flops_coverage(params, oparams, cfg.flops_bins),
        "flops_min": float(flops.min()),
        "flops_max": float(flops.max()),
        "flops_mean": float(flops.mean()),
        "params_min": float(params.min()),
        "params_max": float(params.max()),
        "edf": {
            "error": grid.round(4).tolist(),
            "shrunk": (np.searchsorted(np.sort(100 - acc), grid, side="right") / len(acc))
            .round(4)
            .tolist(),
            "original": (np.searchsorted(np.sort(100 - oacc), grid, side="right") / len(oacc))
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
    space: SlotSpace,
    res: ShrinkResult,
    labeller: Labeller,
    cfg: LissnasConfig,
    seed: int,
) -> tuple[dict[str, list[Arch]], dict[str, dict]]:
    """Appendix H's baselines at LISSNAS's size and number of oracle labels.

    Each labels ``res.queries`` uniform archs: LISSNAS's ``samples`` uniform ones plus as many
    fresh uniform draws as LISSNAS spent on refits. Returns the spaces and, per baseline, its
    oracle and predictor queries and parameters.
    """
    rule, size = res.rule, len(res.archs)
    rng = np.random.default_rng(seed + 7)
    uniform = res.labelled[: res.uniform]
    extra_n = max(0, res.queries - len(uniform))
    taken = set(uniform)
    rest = [a for a in res.original if a not in taken] if res.original_enumerated else None
    extra = (
        sample_distinct(space, rng, extra_n, population=rest, rule=rule)
        if rest is not None
        else [
            a for a in sample_distinct(space, rng, 2 * extra_n + 10, rule=rule) if a not in taken
        ][:extra_n]
    )
    counter = CountingLabeller(labeller)
    pool = list(uniform) + list(extra)
    labels = np.concatenate([res.labels[: res.uniform], counter(extra) if extra else np.zeros(0)])
    q = len(pool)
    pcount = QueryCounter()
    bp = fit_predictor(space, pool, labels, replace(cfg, seed_rule="predicted"), seed, pcount)
    spaces: dict[str, list[Arch]] = {}
    meta: dict[str, dict] = {}
    # H.1: the top x% of the uniformly labelled archs, and the same at LISSNAS's size.
    for f in cfg.naive_top_fractions:
        name = f"naive_top_{100 * f:g}%"
        spaces[name] = naive_top_fraction(pool, labels, f)
        meta[name] = {"fraction": f, "queries": q, "predictor_queries": 0}
    spaces["naive_top_matched"] = top_seeds(pool, labels, min(size, q))
    meta["naive_top_matched"] = {"queries": q, "predictor_queries": 0, "matched": size <= q}
    # H.2 "no neighbour": seeds alone, as many as LISSNAS's size, chosen by the predictor from
    # as many uniform draws as LISSNAS's seed pools held.
    n_pool = min(len(res.original), max(size, cfg.seed_pool * max(1, res.iterations)))
    draws = sample_distinct(
        space, rng, n_pool, population=res.original if res.original_enumerated else None, rule=rule
    )
    before = pcount.queries
    spaces["no_neighbours"] = top_seeds(draws, bp.predict(draws), size)
    meta["no_neighbours"] = {"queries": q, "predictor_queries": pcount.queries - before}
    # H.2 "without locality": the same loop, random members instead of neighbours.
    rnd = shrink(space, labeller, replace(cfg, neighbours="random"), seed)
    spaces["random_neighbours"] = rnd.archs
    meta["random_neighbours"] = {
        "queries": rnd.queries,
        "predictor_queries": rnd.predictor_queries,
        "iterations": rnd.iterations,
    }
    # H.3: the predictor scores every arch of the original space; its top ones at equal size.
    before = pcount.queries
    spaces["predictor_top"] = top_seeds(res.original, bp.predict(res.original), size)
    meta["predictor_top"] = {"queries": q, "predictor_queries": pcount.queries - before}
    # ABS-like operation pruning at (about) LISSNAS's size.

    def classes(mask: Mask) -> int:
        if space.mask_size(mask) > cfg.enumerate_limit:
            return space.mask_size(mask)
        return len(enumerate_distinct(space, mask, cfg.enumerate_limit, rule) or [])

    mask = operation_pruning_to_size(space, pool, labels, size, classes)
    pruned = enumerate_distinct(space, mask, cfg.enumerate_limit, rule)
    if pruned is None:
        pruned = sample_distinct(space, rng, cfg.original_sample, mask, rule=rule)
    spaces["operation_pruning"] = pruned
    meta["operation_pruning"] = {
        "queries": q,
        "predictor_queries": 0,
        "mask": space.mask_to_json(mask),
        "mask_size": space.mask_size(mask),
    }
    return spaces, meta


def run(
    space: SlotSpace,
    labeller: Labeller,
    cfg: LissnasConfig | None = None,
    seed: int = 0,
    progress: Callable[[dict], None] | None = None,
) -> LissnasRun:
    """Shrink ``space``, build the baselines at equal labels and size, compute statistics.

    With an exhaustive table as labeller, the statistics read every member's accuracy from it
    (free lookups, not queries); otherwise they use labels where known, else predictions.
    """
    cfg = (cfg or LissnasConfig()).check()
    check_cost_dataset(space, cfg.cost_dataset)
    res = shrink(space, labeller, cfg, seed, progress)
    ref = _reference(labeller, res.original) if res.original_enumerated else None
    accuracy = ref if ref is not None else res.scorer
    source = "table" if ref is not None else "labels+predictor"
    cells = space.mask_size()
    original_size = len(res.original) if res.original_enumerated else space.num_classes(res.rule)
    oacc = accuracy(res.original)
    oflops = cost(space, res.original, "flops", cfg.cost_dataset)
    oparams = cost(space, res.original, "params", cfg.cost_dataset)
    rng = np.random.default_rng(seed + 1)

    def stats_of(archs: Sequence[Arch]) -> dict:
        return space_stats(
            space, archs, accuracy(archs), res.original, oacc, original_size, cfg, rng, oflops,
            rule=res.rule, original_cells=cells, original_params=oparams,
        )  # fmt: skip

    stats = stats_of(res.archs)
    spaces, meta = baseline_spaces(space, res, labeller, cfg, seed) if cfg.baselines else ({}, {})
    baselines = {}
    for name, archs in spaces.items():
        b = stats_of(archs)
        b.pop("edf")
        baselines[name] = {**b, **meta[name]}
    stats.update(
        {
            "space": space.name,
            "seed": seed,
            "accuracy_source": source,
            "isomorphism": res.rule,
            "original_enumerated": res.original_enumerated,
            "neighbourhoods_sampled": res.neighbourhoods_sampled,
            "queries": res.queries,
            "label_queries": res.queries,
            "uniform_labels": res.uniform,
            "refit_labels": res.queries - res.uniform,
            "predictor_queries": res.predictor_queries,
            "iterations": res.iterations,
            "iterations_run": len(res.history) - 1,
            "history": res.history,
            "radius": cfg.radius(space),
            "top_seeds": cfg.top_seeds,
            "seed_rule": cfg.seed_rule,
            "seeds": [str(a) for a in res.seeds],
            "predictor_kendall_tau": res.first_predictor.kendall_tau,
            "predictor_kendall_pvalue": res.first_predictor.kendall_pvalue,
            "predictor_train": res.first_predictor.n_train,
            "predictor_holdout": res.first_predictor.n_holdout,
            "baselines": baselines,
            "config": asdict(cfg),
        }
    )
    return LissnasRun(space, res, source, accuracy, stats, baselines, spaces, cfg, seed)


def space_frame(run_: LissnasRun) -> Any:
    """The shrunk space as a table: arch_str, predicted and known accuracy, cells, FLOPs, params."""
    import pandas as pd

    res, space = run_.result, run_.space
    archs = res.archs
    known = np.array([res.scorer.known.get(a, np.nan) for a in archs])
    ds = run_.config.cost_dataset
    frame = pd.DataFrame(
        {
            "arch_str": [str(a) for a in archs],
            "predicted_accuracy": res.predictor.predict(archs),
            "known_accuracy": known,
            "cells": [len(space.class_members(a, res.rule)) for a in archs],
            "flops_M": cost(space, archs, "flops", ds),
            "params_M": cost(space, archs, "params", ds),
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
    shown = ("original", "lissnas", "naive_top_matched", "random_neighbours", "predictor_top",
             "operation_pruning")  # fmt: skip
    paths["edf_png"] = plots.error_edf(
        {k: acc(spaces[k]) for k in shown if k in spaces},
        out / "edf.png",
        title=f"{run_.space.name}: error EDF ({run_.accuracy_source})",
    )
    ds = run_.config.cost_dataset
    paths["flops_png"] = plots.flops_vs_accuracy(
        {
            k: (cost(run_.space, spaces[k], "flops", ds), acc(spaces[k]))
            for k in ("original", "lissnas")
        },
        out / "flops_accuracy.png",
        title=f"{run_.space.name}: FLOPs vs accuracy ({run_.accuracy_source})",
    )
    return {k: str(v) for k, v in paths.items()}
