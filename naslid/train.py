"""Uniform single-path supernet training inside a mask (SPOS / RSPS), with resumable checkpoints.

Every step samples one architecture uniformly from the mask (``space.sample`` with a
dedicated ``numpy`` Generator, Guo et al. 2020 SPOS; Li & Talwalkar 2019 RSPS) and trains
``net(x, arch)`` on one batch: SGD with Nesterov momentum, a per-step cosine schedule,
weight decay, gradient-norm clipping; bf16 autocast and channels_last on a GPU, plain fp32 on
the CPU. Sub-supernets are fine-tuned the same way inside their smaller mask, starting from
their parent's weights (:func:`inherit`, :func:`finetune`).

Checkpoints (:mod:`naslid.checkpoints`, a directory or MinIO for pods that may be
pre-empted) after every epoch hold the model, optimiser, scheduler, every RNG state (python,
numpy, torch, CUDA, the data shuffling/augmentation generator, the path sampler), the epoch
and history; the last ``keep_checkpoints`` are kept. ``train(..., resume=True)`` continues
from the newest valid checkpoint and ends with the same weights, bit for bit on the CPU, as a
run never stopped. A truncated or corrupt checkpoint is refused by its checksum before
anything is loaded.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import random
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from naslid import __version__
from naslid.batchnorm import batch_statistics
from naslid.checkpoints import (
    as_store,
    check_resumable,
    check_shapes,
    checkpoint_keys,
    continuation_state,
    latest_checkpoint,
    load_momentum,
    restore_training_state,
    training_state,
    write_checkpoint,
)
from naslid.data import BatchIterator, ImageData
from naslid.distributed import resolve_device
from naslid.divergence import DivergedError, check_finite
from naslid.lock import check_held, hold_store, release_store
from naslid.saved_model import net_mask, supernet_space
from naslid.spaces.base import Arch, Mask
from naslid.store import Store

CHILD_SCHEDULES = ("continue", "restart")
"""How a sub-supernet's optimiser starts (:attr:`TrainConfig.child_schedule`)."""


@dataclass
class TrainConfig:
    """Supernet training hyper-parameters; defaults are those of NAS-Bench-201 supernet training.

    NAS-LID (He et al. 2023) runs its NAS-Bench-201 experiments in the setting of few-shot NAS
    (Zhao et al. 2021) and GM-NAS (Hu et al. 2022), which train the supernet with
    NAS-Bench-201's weight-sharing recipe; we found no optimiser numbers in the NAS-LID paper
    itself to check against, so each default below names where it comes from:
    [NB201] Dong & Yang 2020, AutoDL-Projects configs/nas-benchmark/algos/weight-sharing.config
    and RANDOM.config (RSPS); [FS] few-shot NAS code, FEW-SHOT-SUPERNET.config; [GM] GM-NAS
    code, nasbench201/train_search.py; [LID] NAS-LID code, configs/experiment/fewshot_search_nb201.yaml.
    """

    epochs: int = 100  # [NB201] weight-sharing.config; [LID] max_epochs=100 (RSPS used 250)
    batch_size: int = 64  # [NB201], [LID], [GM] (few-shot NAS used 48)
    lr: float = 0.025  # [NB201], [FS], [GM]; [LID]'s public config says 0.001: we follow the benchmark recipe
    lr_min: float = 0.001  # cosine annealing floor, eta_min: [NB201], [FS], [GM]
    momentum: float = 0.9  # [NB201], [FS], [GM], [LID]
    nesterov: bool = True  # [NB201], [FS], [LID]
    weight_decay: float = 5e-4  # [NB201], [LID] (few-shot NAS used 1e-4)
    grad_clip: float = 5.0  # max gradient L2 norm: [NB201] RSPS search loop, [GM] --grad_clip 5
    # Epochs each child of a split that is not the last trains (inheriting its parent's
    # weights) before it is profiled and split again: [LID] warmup_epochs=[20, 40, 60, 80],
    # cumulative max_epochs of a trainer resumed from its parent's, i.e. 20 per level.
    warmup_epochs: int = 20
    # Epochs every final sub-supernet (a child of the last split) trains, in all: NAS-LID
    # section 4, "we fine-tune the 16 sub-supernets for 50 epochs" ([LID]'s public config
    # says finetune_epoch=10; the paper's protocol profiles set 50).
    finetune_epochs: int = 10
    # How a child's optimiser starts: "continue" ([LID] resumes its parent's Lightning trainer,
    # resume_from_checkpoint: the SGD momentum buffers and the learning-rate schedule carry
    # on) -- the child starts at its parent's last learning rate with its parent's momentum
    # and anneals to lr_min; "restart": a fresh SGD at the peak lr, momentum zero.
    child_schedule: str = "continue"
    augment: bool = True  # random crop (4-pixel padding) + horizontal flip: [NB201]
    seed: int = 0
    amp: bool = True  # bf16 autocast, on CUDA only (the CPU always runs fp32)
    channels_last: bool = True  # on CUDA only
    keep_checkpoints: int = 2  # the last one and the previous (fallback if the last is damaged)

    def __post_init__(self) -> None:
        if self.child_schedule not in CHILD_SCHEDULES:
            raise ValueError(
                f"train config: child_schedule expected one of {', '.join(CHILD_SCHEDULES)}, "
                f"got {self.child_schedule!r}"
            )
        for name in ("epochs", "batch_size", "keep_checkpoints"):
            if getattr(self, name) < 1:
                raise ValueError(f"train config: {name} must be >= 1, got {getattr(self, name)}")
        for name in (
            "lr",
            "lr_min",
            "momentum",
            "weight_decay",
            "grad_clip",
            "warmup_epochs",
            "finetune_epochs",
        ):
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"train config: {name} must be a finite number >= 0, got {value}")

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> TrainConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"train config: unknown field(s) {', '.join(unknown)}")
        return cls(**data)


# Fields that change what the run computes; resuming with others (amp, keep) is allowed.
_RESUME_FIELDS = (
    "epochs",
    "batch_size",
    "lr",
    "lr_min",
    "momentum",
    "nesterov",
    "weight_decay",
    "grad_clip",
    "augment",
    "seed",
)


@dataclass
class TrainResult:
    epochs: int  # epochs completed in total
    start_epoch: int  # epochs already done when this call began (0 unless resumed)
    history: list[dict] = field(
        default_factory=list
    )  # per epoch: epoch, loss, accuracy, lr, seconds
    checkpoint: str | None = None  # key of the last checkpoint written
    continuation: dict | None = None  # the optimiser state a child continues from (below)
    config: TrainConfig | None = None  # what ran (a continuing child: its parent's last lr)


def check_inside(mask: Mask, outer: Mask, what: str = "mask") -> None:
    """Raise unless every slot of ``mask`` allows only options that ``outer`` allows."""
    for slot, (inner, allowed) in enumerate(zip(mask, outer)):
        extra = sorted(set(inner) - set(allowed))
        if extra:
            raise ValueError(
                f"{what}: slot {slot} allows options {extra} that the network does not hold "
                f"(it holds {list(allowed)})"
            )


# ------------------------------------------------------------------------------ one epoch
def build_optimizer(
    net: nn.Module, config: TrainConfig, steps_per_epoch: int
) -> tuple[torch.optim.SGD, torch.optim.lr_scheduler.CosineAnnealingLR]:
    """SGD (Nesterov) over all parameters and a cosine schedule stepped once per batch."""
    opt = torch.optim.SGD(
        net.parameters(),
        lr=config.lr,
        momentum=config.momentum,
        nesterov=config.nesterov and config.momentum > 0,
        weight_decay=config.weight_decay,
    )
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(
        opt, T_max=max(1, config.epochs * steps_per_epoch), eta_min=config.lr_min
    )
    return opt, sched


def train_epoch(
    net: nn.Module,
    batches: BatchIterator,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None,
    archs: Sequence[Arch | Mask | None],
    *,
    grad_clip: float = 5.0,
    amp: bool = False,
    bar=None,
    report_every: int = 10,
    epoch: int | None = None,
) -> dict:
    """One pass over ``batches``; batch ``i`` trains ``net(x, archs[i])``. Returns loss/accuracy.

    A non-finite loss stops training with :class:`DivergedError` naming the epoch and step
    (checked without a device sync at every report point and at the end of the epoch; the
    step named is the first one whose loss was NaN/inf).
    """
    if len(archs) < len(batches):
        raise ValueError(f"archs: {len(archs)} given for {len(batches)} batches")
    net.train()
    device = batches.device
    params = [p for p in net.parameters() if p.requires_grad]
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), device=device, dtype=torch.long)
    seen = 0
    every = max(1, len(batches) // report_every)
    n = len(batches)
    first_bad = torch.full((), n, device=device, dtype=torch.long)  # first non-finite step

    def check() -> None:
        bad = int(first_bad.item())
        if bad < n:
            where = f"epoch {epoch}, step {bad + 1}" if epoch is not None else f"step {bad + 1}"
            raise DivergedError(
                f"training diverged at {where} of {n}: the loss is not finite (NaN/inf); "
                "lower the learning rate"
            )

    for step, ((x, y), arch) in enumerate(zip(batches, archs)):
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            logits = net(x, arch)
        loss = F.cross_entropy(logits.float(), y)
        first_bad = torch.where(
            (~torch.isfinite(loss.detach())) & (first_bad == n),
            torch.full_like(first_bad, step),
            first_bad,
        )
        if device.type == "cpu" or (step + 1) % every == 0:
            check()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if grad_clip > 0:
            nn.utils.clip_grad_norm_(params, grad_clip)
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        loss_sum += loss.detach() * len(y)
        correct += (logits.detach().argmax(1) == y).sum()
        seen += len(y)
        if bar is not None:
            bar.update(1)
            if (step + 1) % every == 0 or step + 1 == len(batches):
                bar.set_postfix(
                    loss=f"{loss_sum.item() / seen:.3f}",
                    acc=f"{100.0 * correct.item() / seen:.1f}",
                    lr=f"{optimizer.param_groups[0]['lr']:.4f}",
                    refresh=False,
                )
    check()
    return {
        "loss": loss_sum.item() / max(1, seen),
        "accuracy": 100.0 * correct.item() / max(1, seen),
    }


# ------------------------------------------------------------------------------ RNG states
def _rng_state(batches: BatchIterator, paths: np.random.Generator) -> dict:
    cuda = None
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        cuda = torch.cuda.get_rng_state_all()
    return {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
        "cuda": cuda,
        "data": batches.state_dict(),
        "paths": paths.bit_generator.state,
    }


def _set_rng_state(
    state: dict, batches: BatchIterator, paths: np.random.Generator, epoch: int
) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if state.get("cuda") is not None and torch.cuda.is_available():
        if len(state["cuda"]) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(state["cuda"])
        else:
            warnings.warn(
                "checkpoint: CUDA RNG states of another device count are not restored", stacklevel=3
            )
    try:
        batches.load_state_dict(state["data"])
    except (
        ValueError
    ) as exc:  # saved on GPU, resumed on CPU (or back): same epochs, other batch order
        warnings.warn(
            f"{exc}; re-seeding it, so batches differ from an uninterrupted run", stacklevel=3
        )
        batches.generator.manual_seed(batches.seed * 1_000_003 + epoch)
    paths.bit_generator.state = state["paths"]


def _check_resumable(
    ckpt: dict,
    key: str,
    config: TrainConfig,
    mask_json: list,
    net_config: dict | None,
    steps: int,
    state: dict,
) -> None:
    check_resumable(ckpt["config"], {name: getattr(config, name) for name in _RESUME_FIELDS}, key)
    if ckpt["mask"] != mask_json:
        raise ValueError(
            f"{key}: checkpoint trained mask {ckpt['mask']}, this run asks for {mask_json}"
        )
    if net_config is not None and ckpt.get("net_config") not in (None, net_config):
        raise ValueError(
            f"{key}: checkpoint's network config {ckpt['net_config']} differs from {net_config}"
        )
    if ckpt["steps_per_epoch"] != steps:
        raise ValueError(
            f"{key}: checkpoint had {ckpt['steps_per_epoch']} batches per epoch, this run has "
            f"{steps} (a different data set or size?)"
        )
    check_shapes(ckpt["model"], state, key)


# ------------------------------------------------------------------------------ training
def train(
    net: nn.Module,
    data: ImageData,
    config: TrainConfig,
    mask: Mask | None = None,
    *,
    store: Store | str | Path | None = None,
    resume: bool = False,
    device: str | torch.device = "auto",
    progress: bool = True,
    desc: str = "train",
    on_epoch_end: Callable[[int, dict], None] | None = None,
    initial: dict | None = None,
) -> TrainResult:
    """Train ``net`` in place for ``config.epochs``, one uniform path of ``mask`` per batch.

    ``mask``: the sub-space to sample from (default: everything ``net`` holds).
    ``store``: where epoch checkpoints go (a Store, a directory or a ``minio://`` URI);
    without one nothing is written. ``resume``: continue from the store's newest valid
    checkpoint (without it, an existing checkpoint is an error rather than overwritten).
    ``on_epoch_end(epoch, stats)`` is called after each epoch's checkpoint is written.
    ``initial``: a parent's :func:`continuation_state` whose momentum buffers seed the
    optimiser (a fresh run only; a resumed one restores its own). The result's
    ``continuation`` is this run's, for its children.
    """
    device = resolve_device(device)
    space = supernet_space(net)
    mask = net_mask(net) if mask is None else space.check_mask(mask)
    check_inside(mask, net_mask(net))
    mask_json = space.mask_to_json(mask)
    net_config = net.config() if hasattr(net, "config") else None
    cuda = device.type == "cuda"
    amp, channels_last = config.amp and cuda, config.channels_last and cuda
    if cuda:
        torch.backends.cudnn.benchmark = True
    net.to(device, memory_format=torch.channels_last if channels_last else torch.preserve_format)

    batches = BatchIterator(
        data,
        config.batch_size,
        shuffle=True,
        augment=config.augment,
        device=device,
        drop_last=len(data) >= config.batch_size,
        channels_last=channels_last,
        seed=config.seed,
    )
    steps = len(batches)
    paths = np.random.default_rng([config.seed, 0x5A7])  # the path sampler's own stream
    optimizer, scheduler = build_optimizer(net, config, steps)
    store = as_store(store) if store is not None else None

    with contextlib.ExitStack() as held:
        if store is not None:
            hold_store(store)  # one writer per checkpoint location, before anything is read
            held.callback(release_store, store)
            if hasattr(store, "cleanup"):  # temporaries / uploads that a killed writer left
                store.cleanup()
        start, history, last_key = 0, [], None
        if store is not None:
            found = latest_checkpoint(store) if resume else None
            if found is None and not resume and checkpoint_keys(store):
                raise ValueError(
                    f"{store.uri}: already holds checkpoints; resume them (--resume) or use "
                    "another checkpoint location"
                )
            if found is not None:
                key, ckpt = found
                _check_resumable(ckpt, key, config, mask_json, net_config, steps, net.state_dict())
                restore_training_state(ckpt, net, optimizer, scheduler)
                _set_rng_state(ckpt["rng"], batches, paths, ckpt["epoch"])
                start, history = ckpt["epoch"], list(ckpt["history"])
                last_key = key
        if start == 0 and initial is not None:
            load_momentum(net, optimizer, initial)

        from tqdm.auto import tqdm

        with tqdm(
            total=config.epochs * steps,
            initial=start * steps,
            desc=desc,
            unit="batch",
            disable=not progress,
            dynamic_ncols=True,
            leave=False,
        ) as bar:
            for epoch in range(start + 1, config.epochs + 1):
                t0 = time.perf_counter()
                archs = space.sample(paths, steps, mask)
                stats = train_epoch(
                    net,
                    batches,
                    optimizer,
                    scheduler,
                    archs,
                    grad_clip=config.grad_clip,
                    amp=amp,
                    bar=bar,
                    epoch=epoch,
                )
                # a finite loss with non-finite weights (a huge step): never checkpoint those
                check_finite(
                    net.state_dict(), f"training diverged at epoch {epoch}, step {steps} of {steps}"
                )
                stats = {
                    "epoch": epoch,
                    **stats,
                    "lr": optimizer.param_groups[0]["lr"],
                    "seconds": time.perf_counter() - t0,
                }
                history.append(stats)
                bar.set_description(f"{desc} {epoch}/{config.epochs}")
                if store is not None:
                    ckpt = {
                        "steps_per_epoch": steps,
                        **training_state(net, optimizer, scheduler),
                        "rng": _rng_state(batches, paths),
                        "config": config.to_json(),
                        "mask": mask_json,
                        "net_config": net_config,
                        "history": history,
                        "naslid_version": __version__,
                    }
                    check_held(store)  # a lease lost to another writer: stop, do not overwrite
                    last_key = write_checkpoint(store, epoch, ckpt, config.keep_checkpoints)
                if on_epoch_end is not None:
                    on_epoch_end(epoch, stats)
        return TrainResult(
            config.epochs, start, history, last_key, continuation_state(net, optimizer), config
        )


# ------------------------------------------------------------------------------ evaluation
@torch.no_grad()
def evaluate(
    net: nn.Module,
    data: ImageData | BatchIterator,
    choice: Arch | Mask | None = None,
    *,
    batch_size: int = 512,
    device: str | torch.device | None = None,
    bn: str = "batch",
) -> float:
    """Top-1 accuracy in percent (as NAS-Bench-201's tables) of ``net(x, choice)`` on ``data``.

    ``bn="batch"`` (default): BatchNorm uses each evaluation batch's statistics, as the
    one-shot supernets of NAS-Bench-201 do; a supernet's running statistics mix every path
    sampled in training and can put a single path at chance level. ``bn="running"``: the
    stored running statistics (a standalone network, or after recalibration). ``data`` is not
    augmented; ``device`` defaults to the network's. Pass a non-shuffling, non-augmenting
    BatchIterator to evaluate many paths without copying the images to the device each time.
    """
    if bn not in ("batch", "running"):
        raise ValueError(f"bn: expected 'batch' or 'running', got {bn!r}")
    if device is None:
        device = next(net.parameters()).device
    device = resolve_device(device)
    if isinstance(data, ImageData):
        data = BatchIterator(data, batch_size, device=device)
    was_training = net.training
    net.eval()
    amp = device.type == "cuda"
    correct = torch.zeros((), dtype=torch.long, device=device)
    seen = 0
    try:
        with batch_statistics(net) if bn == "batch" else contextlib.nullcontext():
            for x, y in data:
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
                    logits = net(x.to(device), choice)
                correct += (logits.argmax(1) == y.to(device)).sum()
                seen += len(y)
    finally:
        net.train(was_training)
    return 100.0 * correct.item() / max(1, seen)
