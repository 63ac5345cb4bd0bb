"""LISSNAS's configuration: the paper's defaults and this implementation's knobs, in one place."""

from __future__ import annotations

from dataclasses import dataclass

from naslid.spaces.base import SlotSpace

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
    ``samples // 10``. A deviation: the paper (4.3) refits on the networks of each new space
    without saying how many are labelled; we label this many per kept iteration. Total oracle queries = samples + refit_labels x (kept iterations, at most
    ``max_iterations - 1``)."""
    top_seeds: int = 3
    """Seeds per iteration. The paper gives no number; each NB201 seed adds a radius-2 ball of
    about 200-300 classes, so this sets the space's size. ``bench/lissnas.py --top-seeds``."""
    distance_divisor: int = 3
    """Neighbour radius = ``max_edit_distance // distance_divisor`` (paper 4.3 2(a): one third).
    A deviation: the paper adds "several neighbour networks" of each seed; we add its whole
    neighbourhood within the radius (NB201: every class at edit distance <= 2)."""
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

    def check_samples(self, space: SlotSpace, classes: int) -> None:
        """Refuse more uniform samples than the ``classes`` distinct archs of ``space``."""
        if self.samples > classes:
            raise ValueError(
                f"samples: {self.samples} exceeds the {classes} distinct archs of space "
                f"{space.name} (isomorphism {self.rule(space)!r})"
            )

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
