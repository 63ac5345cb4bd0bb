"""LISSNAS's iterative shrinkage (paper 4.3): seed search, neighbour generation and the stop rule."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from naslid.budget import Feasible
from naslid.lissnas.config import LissnasConfig
from naslid.lissnas.neighbourhoods import (
    ball_counts,
    enumerate_distinct,
    neighbourhood,
    sample_distinct,
)
from naslid.lissnas.predictor import KnownOrPredicted, Predictor, QueryCounter, fit_predictor
from naslid.scorer import CountingScorer, Scorer
from naslid.spaces.base import Arch, SlotSpace


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
    score: Scorer,
    cfg: LissnasConfig,
    *,
    seed_score: Scorer | None = None,
    label: Callable[[list[Arch], int], int] | None = None,
    rng: np.random.Generator | None = None,
    progress: Callable[[dict], None] | None = None,
    feasible: Feasible | None = None,
) -> Iterations:
    """Paper 4.3: seed search and neighbour generation, repeated while the mean score rises.

    Iteration t draws ``cfg.seed_pool`` members of the current space (all of them when it is no
    larger; iteration 1: the original), keeps the ``cfg.top_seeds`` best by ``seed_score``
    (default ``score``, the predicted accuracy) as seeds and builds their neighbourhood within
    ``cfg.radius`` (iteration 1 in the whole space, later ones inside the current space). If its
    mean ``score`` exceeds the current one's by more than ``cfg.plateau_tol`` the new space is
    kept and ``label(candidates, cfg.refits())`` labels up to that many of its members (seeds
    first) and refits the predictor behind ``score``; the current mean is then re-scored with the
    refit predictor, so that every comparison uses one predictor. Otherwise the current space is
    returned. ``feasible`` (a hardware budget) drops the neighbours over it: seeds come from
    the current space, which holds none. ``cfg.pocket_filter`` keeps only the neighbours predicted at least at the current
    mean; ``cfg.neighbours`` chooses the paper's neighbours or an ablation (appendix H.2).
    """
    rng = np.random.default_rng(0) if rng is None else rng
    rule, radius, refit_labels = cfg.rule(space), cfg.radius(space), cfg.refits()
    neighbours, seed_pool, max_iterations = cfg.neighbours, cfg.seed_pool, cfg.max_iterations
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
        seeds = top_seeds(pool, seed_score(pool), cfg.top_seeds)
        within = None if it == 1 else current
        ys = None  # the predictions of ``new``, once
        if neighbours == "none":
            new = list(dict.fromkeys(seeds))
        else:
            new = neighbourhood(
                space,
                seeds,
                radius,
                within,
                rng,
                cfg.max_ball_size,
                rule,
                cfg.drop_disconnected,
                feasible,
            )
            if neighbours == "random":  # H.2: as many uniform draws instead of the neighbours
                chosen = list(dict.fromkeys(seeds))
                taken = set(chosen)
                rest = [a for a in current if a not in taken]
                n = min(len(rest), len(new) - len(chosen))
                new = chosen + [rest[i] for i in rng.choice(len(rest), n, replace=False)]
            elif cfg.pocket_filter:
                keep = set(seeds)
                pairs = [(a, y) for a, y in zip(new, score(new)) if a in keep or y >= current_mean]
                new, ys = [a for a, _ in pairs], [y for _, y in pairs]
        if ys is None:
            ys = score(new) if new else []
        new_mean = float(np.mean(ys)) if len(new) else -math.inf
        rose = is_rising(current_mean, new_mean, cfg.plateau_tol)
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
    scorer: KnownOrPredicted
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
    feasible: Feasible | None = None
    """The hardware budget every arch of ``original`` (and so of the result) meets."""


def _original_space(
    space: SlotSpace,
    cfg: LissnasConfig,
    rng: np.random.Generator,
    rule: str,
    feasible: Feasible | None = None,
) -> tuple[list[Arch], bool]:
    """The space LISSNAS starts from (every class, or a uniform sample of them), within the
    hardware budget when one is given: the classes whose representative (the arch LISSNAS
    labels and returns) is within it. A class whose representative is over the budget while
    another member is not is left out (NB201: 187 of 6,466 classes hold members of different
    FLOPs, their dead edges computing nothing)."""
    full = enumerate_distinct(space, limit=cfg.enumerate_limit, rule=rule)
    if full is not None:
        return (full if feasible is None else [a for a in full if feasible.within(a)]), True
    return sample_distinct(space, rng, cfg.original_sample, rule=rule, feasible=feasible), False


def _seed_scorer(cfg: LissnasConfig, current: Callable[[], Predictor]) -> Scorer:
    """The seed choice's score (``cfg.seed_rule``) under the current predictor."""

    def lcb(pool: Sequence[Arch]) -> np.ndarray:
        mean, std = current().predict_std(pool)
        return mean - cfg.ensemble_beta * std

    if cfg.seed_rule == "ensemble_lcb":
        return lcb
    return lambda pool: current().predict(pool)


def check_labels_vary(labels: np.ndarray) -> None:
    """Refuse labels that are all equal (or not finite): the predictor learns nothing from
    them, every arch is predicted alike and the "shrunk" space was the original, with exit 0."""
    labels = np.asarray(labels, dtype=np.float64)
    if not np.isfinite(labels).all():
        raise ValueError(
            f"labels: {int((~np.isfinite(labels)).sum())} of {len(labels)} are not finite"
        )
    if len(labels) and float(np.ptp(labels)) == 0.0:
        raise ValueError(
            f"labels: all {len(labels)} sampled archs have the same label ({labels[0]:g}); the "
            "predictor can learn nothing from them (check the labels' source or column)"
        )


def shrink(
    space: SlotSpace,
    labeller: Scorer,
    cfg: LissnasConfig | None = None,
    seed: int = 0,
    progress: Callable[[dict], None] | None = None,
    feasible: Feasible | None = None,
) -> ShrinkResult:
    """Run LISSNAS on ``space``: ``cfg.samples`` uniform labels, then the iterations of 4.3.

    With ``feasible`` (a hardware budget) the original space is the archs within it: the
    uniform samples, the seeds and the neighbours all meet it. The paper shrinks "ImageNet
    under mobile constraints" (section 5, its Table 2) without saying how the constraint
    enters the shrinkage; here it bounds the space before any label, so that no label is spent
    on an arch the search may not return."""
    cfg = (cfg or LissnasConfig()).check()
    rule = cfg.rule(space)
    rng = np.random.default_rng(seed)
    if feasible is not None:
        feasible.check()  # a budget nothing meets: before any label is spent
    original, enumerated = _original_space(space, cfg, rng, rule, feasible)
    if enumerated:
        cfg.check_samples(space, len(original))

    counter = CountingScorer(labeller)
    pcount = QueryCounter()
    labelled = sample_distinct(
        space,
        rng,
        cfg.samples,
        population=original if enumerated else None,
        rule=rule,
        feasible=feasible,
    )
    if len(labelled) < 10:
        raise ValueError(
            f"space {space.name}: only {len(labelled)} distinct archs, too few to shrink"
        )
    labels = counter(labelled)
    check_labels_vary(labels)
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
        cfg,
        seed_score=_seed_scorer(cfg, lambda: state["predictor"]),
        label=label,
        rng=rng,
        progress=progress,
        feasible=feasible,
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
        scorer=KnownOrPredicted(predictor, known),
        queries=counter.queries,
        predictor_queries=pcount.queries,
        original=original,
        original_enumerated=enumerated,
        rule=rule,
        neighbourhoods_sampled=sum(ball_counts(space, radius)) > cfg.max_ball_size,
        uniform=len(labelled),
        feasible=feasible,
    )
