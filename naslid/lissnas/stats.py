"""Statistics of a shrunk space against the original (paper 4.4, 5.2-5.4)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import stats as sps
from scipy.spatial.distance import pdist

from naslid.lissnas.config import LissnasConfig
from naslid.lissnas.costs import cost
from naslid.spaces.base import Arch, SlotSpace


def shrink_probability(
    accuracy: np.ndarray,
    threshold: float,
    n: int = LissnasConfig.shrink_n,
    k: int = LissnasConfig.shrink_k,
) -> float:
    """P(at least ``k`` of ``n`` uniform draws reach ``threshold``): a binomial tail (Theorem 1)."""
    acc = np.asarray(accuracy, dtype=np.float64)
    if acc.size == 0:
        return 0.0
    p = float(np.mean(acc >= threshold))
    return float(sps.binom.sf(k - 1, n, p))


def shrink_index(
    accuracy: np.ndarray,
    original_accuracy: np.ndarray,
    n: int = LissnasConfig.shrink_n,
    k: int = LissnasConfig.shrink_k,
    threshold: float | None = None,
    top_fraction: float = LissnasConfig.shrink_top_fraction,
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
    n: int = LissnasConfig.shrink_n,
    k: int = LissnasConfig.shrink_k,
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


def flops_coverage(
    flops: np.ndarray, original_flops: np.ndarray, bins: int = LissnasConfig.flops_bins
) -> float:
    """How much of the original's FLOPs range ``flops`` still covers (LISSNAS 5.4: shrinkage
    should keep the whole FLOPs range), at a resolution of ``1 / bins`` of that range: the length
    of the range lying within ``h = (max - min) / (2 bins)`` of a shrunk arch's FLOPs, over the
    length lying within ``h`` of an original arch's (1.0: nothing lost); of the first, only the
    part that also lies within ``h`` of an original arch counts.

    Counting occupied equal-width bins was unstable: NB201's FLOPs are discrete and many cells
    sit on a bin edge, so rounding moved the figure between 0.9 and 1.0. This measure moves by
    at most ``|shift| / range`` per arch when FLOPs move, and has no edges."""
    orig = np.asarray(original_flops, dtype=np.float64)
    lo, hi = float(orig.min()), float(orig.max())
    if hi <= lo:
        return 1.0 if len(flops) else 0.0
    h = (hi - lo) / (2 * bins)

    def union(values: np.ndarray) -> list[tuple[float, float]]:
        merged: list[list[float]] = []
        for v in np.unique(np.asarray(values, dtype=np.float64)):  # sorted
            start, end = max(lo, v - h), min(hi, v + h)
            if start >= end:
                continue  # outside the original range
            if merged and start <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], end)
            else:
                merged.append([start, end])
        return [(a, b) for a, b in merged]

    near_orig = union(orig)
    both = sum(max(0.0, min(b, d) - max(a, c)) for a, b in union(flops) for c, d in near_orig)
    return both / sum(b - a for a, b in near_orig)


def cosine_diversity(encodings: np.ndarray) -> tuple[float, float]:
    """Mean and max pairwise cosine distance between rows (0, 0 for fewer than two). The
    paper's diversity (LISSNAS 5.4, Table 7, appendix J) is the *maximum* cosine distance
    between architecture embeddings (``diversity_max``); with one-hot encodings it is 1 for
    almost any space, so the mean (``diversity_mean``) is reported beside it as the figure
    that discriminates."""
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


def edf_at(accuracy: np.ndarray, errors: np.ndarray) -> np.ndarray:
    """The error EDF of ``accuracy`` (:func:`error_edf`) evaluated at ``errors``."""
    err, _ = error_edf(accuracy)
    return np.searchsorted(err, errors, side="right") / len(err)


def edf_area(accuracy: np.ndarray, other_accuracy: np.ndarray) -> tuple[float, float]:
    """Signed and absolute area between the error EDFs, ``integral (F_a - F_b) de``: positive when
    ``a`` has more low-error archs. The signed area equals mean error of b - mean error of a."""
    if not len(accuracy) or not len(other_accuracy):
        return 0.0, 0.0
    grid = np.union1d(error_edf(accuracy)[0], error_edf(other_accuracy)[0])
    widths = np.diff(grid)
    diff = (edf_at(accuracy, grid) - edf_at(other_accuracy, grid))[:-1]
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
    area, area_abs = edf_area(acc, comp)
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
        "diversity": "diversity_max: the paper's (LISSNAS 5.4), max pairwise cosine distance of "
        "one-hot encodings; diversity_mean: the mean, which discriminates",
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
            "shrunk": edf_at(acc, grid).round(4).tolist(),
            "original": edf_at(oacc, grid).round(4).tolist(),
        },
    }
