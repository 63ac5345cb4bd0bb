"""The first steps: check the run's parameters, decode the search data once."""

from __future__ import annotations

from pathlib import Path

from naslid.artifacts import DATA, PathLike, artifact_meta, save_data, write_meta
from naslid.config import DEFAULT_PROFILE, PROFILES
from naslid.steps.registry import HOUR, Out, step
from naslid.steps.runtime import local_copy, log, resolve

MAX_ROUNDS = max(p.rounds for p in PROFILES.values())
"""Rounds the compiled pipeline unrolls by default: as many as the deepest profile asks
(``naslid compile --max-rounds`` for more)."""


@step("validate-params", returns=(int, ""), reads_data=True, retry=False, timeout=600)
def validate_params(
    *,
    profile: str = DEFAULT_PROFILE,
    rounds: int = -1,
    max_rounds: int = MAX_ROUNDS,
    criterion: str = "",
    edge_rule: str = "",
    dataset: str = "",
    dataset_uri: str = "",
    labels: str = "",
    search_budget: int = -1,
    flops_max: float = -1.0,
    params_max: float = -1.0,
    latency_max: float = -1.0,
    epochs: int = -1,
    finetune_epochs: int = -1,
    transfer: bool = True,
    transfer_uri: str = "",
    transfer_epochs: int = -1,
    shrink: str | bool = "",
    latency_batch: int = -1,
    seed: int = 0,
    checkpoint_root: str = "",
) -> int:
    """Check every pipeline parameter against the profile, and that the search data (and,
    with transfer on, the transfer data) can be read; return the number of rounds to run.

    Fails in seconds, with one line naming the parameter or the missing data, before any
    GPU is asked for (:mod:`naslid.params`; never retried: a retry would fail the same way).
    """
    values = {k: v for k, v in locals().items() if k != "max_rounds"}  # the run's parameters
    from naslid.params import check_data, check_params

    cfg = check_params(values, max_rounds=max_rounds, local=True)
    check_data(cfg, transfer=transfer)
    log(
        f"profile {cfg.name}: {cfg.dataset}, {cfg.space} {cfg.supernet_options}, {cfg.rounds} rounds of "
        f"{cfg.criterion} splitting, shrink={cfg.shrink}, transfer={transfer}"
    )
    return cfg.rounds


def resize(data, size: int):
    """``data`` with its images resized to ``size`` x ``size`` (bilinear, antialiased)."""
    import torch
    import torch.nn.functional as F

    from naslid.data import ImageData

    if data.image_size == (size, size):
        return data
    images = F.interpolate(data.images.float(), size=(size, size), mode="bilinear", antialias=True)
    images = images.round().clamp_(0, 255).to(torch.uint8)
    return ImageData(images, data.labels, data.classes, data.mean, data.std, data.name, data.split)


@step("prepare-data", outputs={"out": Out("data", DATA)}, reads_data=True, timeout=2 * HOUR)
def prepare_data(
    out: PathLike,
    *,
    profile: str = DEFAULT_PROFILE,
    dataset: str = "",
    dataset_uri: str = "",
    seed: int = 0,
) -> dict:
    """Decode the search data set once: ``train.pt`` and ``valid.pt`` (the ``test`` split where
    a data set has no validation split) into a ``naslid.data`` artifact."""
    from naslid import data as datasets

    cfg = resolve(profile, dataset=dataset, dataset_uri=dataset_uri, seed=seed)
    out = Path(out)
    valid_split = "valid" if "valid" in datasets.DATASETS.get(cfg.dataset, ()) else "test"
    with local_copy(cfg.dataset_uri, "dataset") as root:
        train = datasets.load(cfg.dataset, root, "train", limit=cfg.limit, seed=seed)
        valid = datasets.load(cfg.dataset, root, valid_split, limit=cfg.limit, seed=seed)
    if cfg.image_size:
        train, valid = resize(train, cfg.image_size), resize(valid, cfg.image_size)
    save_data(train, out / "train.pt")
    save_data(valid, out / "valid.pt")
    meta = artifact_meta(
        DATA,
        dataset=cfg.dataset,
        dataset_uri=cfg.dataset_uri,
        valid_split=valid_split,
        num_classes=train.num_classes,
        classes=list(train.classes),
        image_size=list(train.image_size),
        sizes={"train": len(train), "valid": len(valid)},
        profile=cfg.name,
        seed=seed,
    )
    write_meta(out, meta)
    log(
        f"prepare-data: {cfg.dataset} train {len(train)}, valid ({valid_split}) {len(valid)}, "
        f"{train.num_classes} classes"
    )
    return meta
