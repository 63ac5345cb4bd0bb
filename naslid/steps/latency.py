"""The measure-latency step: time every candidate operation of every layer on the node pool
the searched network will run on, and write the lookup table (:mod:`naslid.latency`)."""

from __future__ import annotations

from pathlib import Path

from naslid.artifacts import LATENCY, PathLike
from naslid.config import DEFAULT_PROFILE
from naslid.steps.registry import HOUR, Out, step
from naslid.steps.runtime import log, resolve, step_device


def _progress(repeats: int):
    """Log every tenth round of timings (and the last)."""

    def report(done: int) -> None:
        if done == repeats or done % max(1, repeats // 10) == 0:
            log(f"measure-latency: round {done} of {repeats} timed")

    return report


@step(
    "measure-latency",
    outputs={"out": Out("latency", LATENCY)},
    metrics=True,
    gpu=True,
    pool="latency",
    timeout=HOUR,
)
def measure_latency(
    out: PathLike,
    *,
    profile: str = DEFAULT_PROFILE,
    latency_batch: int = -1,
    flops_max: float = -1.0,
    params_max: float = -1.0,
    latency_max: float = -1.0,
    progress: bool = False,
) -> dict:
    """Time each option of each layer of the profile's space, and the network's fixed parts,
    on this pod's device (its GPU, else its CPU) at the profile's batch size (``latency_batch``
    when set); write the ``naslid.latency`` artifact. Returns the metrics. A hardware budget
    (``latency_max`` with ``flops_max`` / ``params_max``) that no arch meets under the
    measured table stops the run here, beside the training, not after it."""
    from naslid import latency
    from naslid.budget import Feasible
    from naslid.spaces import get

    cfg = resolve(
        profile,
        latency_batch=latency_batch,
        flops_max=flops_max,
        params_max=params_max,
        latency_max=latency_max,
    )
    lcfg = cfg.latency
    device = step_device()
    log(
        f"measure-latency: {cfg.space} at batch {lcfg.batch_size} on {device} "
        f"({lcfg.warmup} warm-up, {lcfg.repeats} timed calls per entry)"
    )
    table = latency.measure(
        cfg.space,
        batch_size=lcfg.batch_size,
        warmup=lcfg.warmup,
        repeats=lcfg.repeats,
        device=str(device),
        resolution=lcfg.resolution,
        progress=_progress(lcfg.repeats) if progress else None,
    )
    if cfg.budget.latency_max is not None:
        Feasible(get(cfg.space).SPACE, cfg.budget, latency=table.predict).check()
    latency.write_table(table, Path(out))
    numbers = latency.summary(table)
    log(
        f"measure-latency: {numbers['entries']} entries on {table.device['name']}; archs cost "
        f"{numbers['min_ms']:.2f}-{numbers['max_ms']:.2f} ms"
    )
    return {**numbers, "batch_size": table.batch_size, "resolution": table.resolution}
