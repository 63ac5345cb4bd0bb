"""LISSNAS's accuracy predictor (paper 4.3 1(b), appendix F): XGBoost on the one-hot encoding."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np
from scipy import stats as sps

from naslid.lissnas.config import LissnasConfig
from naslid.spaces.base import Arch, SlotSpace


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

    def __call__(self, archs: Sequence[Arch]) -> np.ndarray:
        """The :class:`naslid.scorer.Scorer` of the predictor: its predictions."""
        return self.predict(archs)

    def predict_std(self, archs: Sequence[Arch]) -> tuple[np.ndarray, np.ndarray]:
        if not archs:
            return np.zeros(0), np.zeros(0)
        p = self._all(archs)
        return p.mean(axis=0), p.std(axis=0)


def _xgb(cfg: LissnasConfig, seed: int) -> Any:
    import xgboost as xgb

    params = {f.name: getattr(cfg, f.name) for f in fields(cfg) if f.name.startswith("xgb_")}
    return xgb.XGBRegressor(
        **{name.removeprefix("xgb_"): value for name, value in params.items()},
        tree_method="hist",
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


class KnownOrPredicted:
    """A :class:`naslid.scorer.Scorer`: the label where one is known (queried), else the
    prediction."""

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
