"""Training that diverged: a non-finite loss or non-finite weights, never checkpointed,
saved or loaded."""

from __future__ import annotations

import torch


class DivergedError(ValueError):
    """Training produced a non-finite loss or non-finite weights."""


def nonfinite_tensors(state: dict[str, torch.Tensor]) -> list[str]:
    """Names of the floating-point tensors of ``state`` holding NaN or inf."""
    floats = [(k, v) for k, v in state.items() if torch.is_tensor(v) and v.is_floating_point()]
    if not floats:
        return []
    ok = torch.stack([torch.isfinite(v).all() for _, v in floats])
    if bool(ok.all()):
        return []
    return [k for (k, _), good in zip(floats, ok.tolist()) if not good]


def check_finite(state: dict[str, torch.Tensor], where: str) -> None:
    bad = nonfinite_tensors(state)
    if bad:
        more = f" and {len(bad) - 3} more" if len(bad) > 3 else ""
        raise DivergedError(
            f"{where}: the weights are not finite (NaN/inf in {', '.join(bad[:3])}{more}); "
            "lower the learning rate"
        )
