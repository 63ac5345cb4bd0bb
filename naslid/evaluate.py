"""Ranking quality of proxy scores against a benchmark table (NAS-LID section 4).

The measure follows few-shot NAS (Zhao et al., ICML 2021) and NAS-LID: Kendall's tau and
Spearman's rho between the proxy scores (e.g. sub-supernet accuracy with inherited weights)
and the benchmark accuracy, over the table's best 50 / 100 / 150 archs and over archs drawn
uniformly from the space (few-shot NAS reports about 0.50 for one-shot and 0.61 for few-shot NAS
on NAS-Bench-201). Kendall's tau is scipy's tau-b, which corrects for ties.

Rules:

- Only archs that have both a proxy score and a table row count. The *top-k subset* is the k
  most accurate archs of the table **among the archs that have a proxy score** (not the
  table's global top-k, most of which a search never scores); its size ``n`` is reported and
  is smaller than k when fewer archs are scored.
- A correlation is undefined when fewer than two archs remain or either side is constant;
  it is then reported as ``None`` (JSON ``null``) with the reason under ``"undefined"``,
  never as NaN.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from naslid.benchmarks import Table
from naslid.io import read_table

DEFAULT_SUBSETS: tuple[int, ...] = (50, 100, 150)


def correlations(proxy: Sequence[float], truth: Sequence[float]) -> dict:
    """``{"n", "kendall_tau", "spearman_rho"}`` of two paired score lists.

    Undefined cases (n < 2, constant input) give ``None`` values and an ``"undefined"`` reason.
    """
    x = np.asarray(proxy, dtype=np.float64)
    y = np.asarray(truth, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(
            f"correlations: need two 1-D lists of equal length, got {x.shape} and {y.shape}"
        )
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise ValueError("correlations: scores must be finite (no NaN or inf)")
    out: dict = {"n": int(x.size), "kendall_tau": None, "spearman_rho": None}
    if x.size < 2:
        out["undefined"] = f"fewer than 2 archs ({x.size})"
    elif np.all(x == x[0]):
        out["undefined"] = "constant proxy scores"
    elif np.all(y == y[0]):
        out["undefined"] = "constant table accuracies"
    else:
        out["kendall_tau"] = float(stats.kendalltau(x, y).statistic)
        out["spearman_rho"] = float(stats.spearmanr(x, y).statistic)
    return out


def _common(proxy: Mapping[str, float], truth: Table) -> list[str]:
    """Archs with both a proxy score and a table row, sorted by table accuracy (best first,
    ties by string), so that ``[:k]`` is the top-k subset."""
    for arch, score in proxy.items():
        if not np.isfinite(score):
            raise ValueError(f"proxy scores: score of {arch!r} is not finite ({score})")
    common = [a for a in proxy if a in truth]
    return sorted(common, key=lambda a: (-truth[a], a))


def rank_correlation(
    proxy: Mapping[str, float],
    truth: Table,
    subsets: Sequence[int] = DEFAULT_SUBSETS,
    sample: int | None = None,
    rng: np.random.Generator | int | None = None,
    uniform: Sequence[str] | None = None,
) -> dict[str, dict]:
    """Kendall tau / Spearman rho of ``proxy`` (arch string -> score) against ``truth``.

    Keys: ``top{k}`` for each k in ``subsets`` (the k most accurate archs of the table among
    those that have a proxy score), ``all`` (every arch with a score and a table row);
    with ``uniform`` (archs drawn uniformly from the space by the caller, e.g. connected
    NB201 cells), ``uniform{N}`` over exactly those of them that have a score and a row,
    whatever else was scored; with ``sample``, ``scored_sample{N}``: N archs drawn without
    replacement from *all scored* archs (all of them when fewer) -- a sample of what was
    scored, not of the space, so it holds top-k cells whenever those were scored. Each value
    is :func:`correlations`'s dict plus ``covers``, a sentence naming its cells.
    """
    common = _common(proxy, truth)
    if not common:
        raise ValueError(f"proxy scores: none of the {len(proxy)} archs is in table {truth.name}")

    def corr(archs: Sequence[str], covers: str) -> dict:
        return {
            **correlations([proxy[a] for a in archs], truth.lookup(archs).tolist()),
            "covers": covers,
        }

    out: dict[str, dict] = {}
    for k in subsets:
        if k < 1:
            raise ValueError(f"subsets: sizes must be positive, got {k}")
        out[f"top{k}"] = corr(
            common[:k], f"the {k} most accurate archs of {truth.name} among the scored ones"
        )
    out["all"] = corr(common, f"every scored arch that {truth.name} holds")
    if uniform is not None:
        chosen = [a for a in dict.fromkeys(uniform) if a in proxy and a in truth]
        if not chosen:
            raise ValueError("uniform: none of the uniformly drawn archs has a score and a row")
        out[f"uniform{len(chosen)}"] = corr(
            chosen, f"{len(chosen)} archs drawn uniformly from the space (and only those)"
        )
    if sample is not None:
        if sample < 2:
            raise ValueError(f"sample: must be at least 2, got {sample}")
        rng = np.random.default_rng(rng)
        pick = rng.choice(len(common), size=min(sample, len(common)), replace=False)
        out[f"scored_sample{sample}"] = corr(
            [common[int(i)] for i in np.sort(pick)],
            f"{min(sample, len(common))} archs drawn at random from the scored ones",
        )
    return out


def best_found(proxy: Mapping[str, float], truth: Table) -> dict:
    """The arch with the highest proxy score (ties: smallest string) among those in the table,
    with its table accuracy, its rank in the whole table (1 = best) and the table's best."""
    common = _common(proxy, truth)
    if not common:
        raise ValueError(f"proxy scores: none of the {len(proxy)} archs is in table {truth.name}")
    arch = min(common, key=lambda a: (-proxy[a], a))
    acc = truth[arch]
    values = np.fromiter(truth.accuracy.values(), dtype=np.float64)
    return {
        "arch": arch,
        "proxy_score": float(proxy[arch]),
        "accuracy": float(acc),
        "table_rank": int((values > acc).sum()) + 1,
        "table_size": len(truth),
        "table_best": float(values.max()),
    }


def evaluate_scores(
    proxy: Mapping[str, float],
    truth: Table,
    subsets: Sequence[int] = DEFAULT_SUBSETS,
    sample: int | None = None,
    rng: np.random.Generator | int | None = None,
) -> dict:
    """Everything ``naslid evaluate`` writes: counts, correlations and the best arch found."""
    common = _common(proxy, truth)
    return {
        "table": truth.name,
        "column": truth.column,
        "num_scores": len(proxy),
        "num_in_table": len(common),
        "num_missing_in_table": len(proxy) - len(common),
        "correlations": rank_correlation(proxy, truth, subsets, sample, rng),
        "best": best_found(proxy, truth),
    }


def load_scores(path: str | Path, column: str = "score") -> dict[str, float]:
    """Proxy scores from a CSV or parquet file with an ``arch_str`` (or ``arch``) column and
    a ``column`` of scores (e.g. an ``evolve`` history). Repeated archs must agree."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"scores: file {path} not found")
    frame = read_table(path, "scores")
    key = next((c for c in ("arch_str", "arch") if c in frame.columns), None)
    if key is None:
        raise ValueError(f"scores: {path} has no 'arch_str' or 'arch' column")
    if column not in frame.columns:
        raise ValueError(
            f"scores: {path} has no column {column!r} (columns: {', '.join(map(str, frame.columns))})"
        )
    if frame[column].isna().any():
        raise ValueError(f"scores: column {column!r} of {path} has empty cells")
    values = pd.to_numeric(frame[column], errors="coerce")
    if values.isna().any():
        i = int(values.isna().to_numpy().argmax())
        raise ValueError(
            f"scores: {path} column {column!r}, row {i + 2}: {frame[column].iloc[i]!r} is not a number"
        )
    scores: dict[str, float] = {}
    for arch, score in zip(frame[key].astype(str).str.strip(), values):
        if arch in scores and scores[arch] != score:
            raise ValueError(
                f"scores: {path} gives arch {arch!r} two scores ({scores[arch]} and {score})"
            )
        scores[arch] = float(score)
    return scores
