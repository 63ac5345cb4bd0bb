"""Training the found architecture on ImageNet (NAS-LID section 4, "Generalizing to other
spaces", Table 4), and handing it over as a standalone PyTorch program.

``transfer(space, arch, data, out)`` builds the standalone network of ``arch`` for ImageNet
input, optionally starts it from a supernet checkpoint, trains it on an ImageFolder tree
(``data/train/<class>/*``, ``data/val/<class>/*``) and writes to ``out``:

- ``model.pt2``: the trained network as a ``torch.export`` program (normalisation built in:
  feed RGB floats in [0, 1], NCHW, any batch size), loadable without naslid::

      import torch
      model = torch.export.load("out/model.pt2").module()
      probs = model(torch.rand(1, 3, 224, 224)).softmax(-1)

- ``arch.json``: space, arch string, FLOPs (multiply-adds, ``FlopCounterMode`` count / 2) and
  parameters in millions, top-1 / top-5, image size, mean / std, classes;
- ``weights.pt`` + ``meta.json``: the state dict (naslid checksummed file) and how to rebuild it.

The network at ImageNet input is each space's ``imagenet_network`` (:mod:`naslid.supernets`:
ProxylessNAS's own ImageNet network; NAS-Bench-201's cells behind DARTS's ImageNet stem).

Training follows ProxylessNAS's ImageNet recipe (mit-han-lab/proxylessnas
``search/imagenet_run_exp.py``; see :class:`TransferConfig`): SGD with Nesterov momentum,
cosine learning rate per step, label smoothing, no weight decay on BatchNorm, optional EMA of
the weights; bf16 autocast on GPU; several GPUs of one pod with ``torchrun`` (DDP, one process
per GPU, ``WORLD_SIZE`` / ``RANK`` / ``LOCAL_RANK`` from the environment):

    torchrun --nproc_per_node=8 -m naslid transfer --space mobilenet --arch ... --data ... --out ...

Every epoch writes a checkpoint (:mod:`naslid.checkpoints`) to ``checkpoint_dir`` (a
directory or a ``minio://`` / ``s3://`` prefix, :mod:`naslid.store`); a rerun with the same
arguments resumes after the last finished epoch, and a truncated checkpoint is refused.
``data`` may also be a ``minio://`` / ``s3://`` prefix: it is copied to a local cache first
(:func:`naslid.imagefolder.resolve_data`), the hook where the pipeline's store module plugs in.
The data pipeline is :mod:`naslid.imagefolder`, the processes :mod:`naslid.distributed`, the
exported program :mod:`naslid.program`.
"""

from __future__ import annotations

import copy
import math
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from naslid import __version__, supernets
from naslid.batchnorm import batch_norm_layers
from naslid.checkpoints import (
    check_resumable,
    check_shapes,
    latest_checkpoint,
    restore_training_state,
    training_state,
    write_checkpoint,
)
from naslid.data import IMAGENET_MEAN, IMAGENET_STD
from naslid.distributed import DistEnv, init_distributed
from naslid.divergence import DivergedError, check_finite
from naslid.imagefolder import build_datasets, build_loaders, make_digits_imagefolder, resolve_data
from naslid.io import (
    check_meta,
    load_torch,
    read_json,
    save_torch,
    seal_meta,
    verify_meta,
    write_json,
)
from naslid.lock import hold_store, release_store
from naslid.program import count_flops, count_params, export_program
from naslid.spaces import get as get_space
from naslid.store import Store, open_store

__all__ = [  # with the data and export functions that callers take from here
    "TransferConfig",
    "build_optimizer",
    "cosine_lr_factor",
    "evaluate",
    "export_program",
    "init_from_supernet",
    "load_weights",
    "make_digits_imagefolder",
    "param_groups",
    "read_supernet_meta",
    "resolve_data",
    "supernet_width",
    "topk_correct",
    "train_epoch",
    "transfer",
]

KEEP_CHECKPOINTS = 1
"""Epoch checkpoints kept: the last one (a transfer's are large)."""


@dataclass
class TransferConfig:
    """Training settings. Defaults: ProxylessNAS ImageNet training (``imagenet_run_exp.py``:
    300 epochs, lr 0.05 at batch 256, cosine, Nesterov 0.9, weight decay 4e-5 not applied to
    BatchNorm, label smoothing 0.1, random-resized-crop scale from 0.08; ``--dropout 0.1`` for
    the mobile network)."""

    epochs: int = 300
    batch_size: int = 256  # global: split over the processes
    lr: float = 0.05  # at batch 256, scaled linearly with batch_size
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 4e-5
    no_decay_bn: bool = True
    label_smoothing: float = 0.1
    dropout: float = 0.1  # before the classifier (mobilenet only; NB201 has none)
    warmup_epochs: int = 0
    ema_decay: float = 0.0  # 0: no EMA; e.g. 0.9998 per step
    image_size: int = 224
    crop_scale_min: float = 0.08
    val_crop_ratio: float = 0.875  # resize to image_size / ratio, centre-crop image_size
    width_mult: float | None = None  # None: the supernet's width when initialising from one, else 1
    workers: int = 8
    amp: bool = True  # bf16 autocast on CUDA (ignored on CPU)
    compile: bool = False  # torch.compile the training model
    seed: int = 0
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "image_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: must be positive, got {getattr(self, name)}")
        if not 0 <= self.ema_decay < 1:
            raise ValueError(f"ema_decay: must be in [0, 1), got {self.ema_decay}")
        if self.width_mult is not None and not self.width_mult > 0:
            raise ValueError(f"width_mult: must be positive, got {self.width_mult}")
        if not 0 <= self.warmup_epochs < self.epochs:
            raise ValueError(f"warmup_epochs: must be in [0, epochs), got {self.warmup_epochs}")


def supernet_width(meta: dict) -> float | None:
    """The width multiplier of the network described by ``meta.json`` (None if unknown): a
    supernet's (``naslid.saved_model.save_model``: its ``config()`` under ``supernet``) or a
    transfer's (its ``TransferConfig`` under ``config``)."""
    net = meta.get("supernet") or {}
    if "space" in net:
        return supernets.get(net["space"]).supernet_width(net)
    width = (meta.get("config") or {}).get("width_mult")
    return None if width is None else float(width)


def read_supernet_meta(checkpoint: str | os.PathLike) -> dict:
    """The ``meta.json`` beside a supernet checkpoint."""
    path = Path(checkpoint)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such supernet checkpoint")
    return read_json(path.parent / "meta.json")


def init_from_supernet(net: nn.Module, space: str, checkpoint: str | os.PathLike) -> dict:
    """Copy the supernet's weights of ``net``'s path into ``net`` (same names and shapes).

    ``checkpoint`` is a ``.pt`` state dict (naslid format, optionally under ``"model"`` or
    ``"state_dict"``) with a ``meta.json`` beside it whose ``space`` must be ``space``, as
    ``naslid.saved_model.save_model`` writes them (``supernet.pt`` + ``meta.json``). The
    classifier is skipped when the class count differs, and so are the space's
    ``NOT_TRANSFERRED`` modules (NB201's CIFAR stem); a non-affine
    supernet BatchNorm leaves the standalone one at weight 1 / bias 0, the same function.
    """
    meta = read_supernet_meta(checkpoint)
    check_meta(meta, {"space": space}, f"{Path(checkpoint).parent / 'meta.json'}")
    state = load_torch(checkpoint)
    for key in ("model", "state_dict"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict):
        raise ValueError(f"{checkpoint}: not a state dict")
    own = net.state_dict()
    not_transferred = supernets.get(space).NOT_TRANSFERRED
    take = {
        k: v
        for k, v in state.items()
        if k in own and own[k].shape == v.shape and not k.startswith(not_transferred)
    }
    if not any(k in take for k in own if k.startswith("layers.")):
        raise ValueError(
            f"{checkpoint}: no layer weight matches the network (width or space differ?)"
        )
    net.load_state_dict(take, strict=False)
    return {"loaded": len(take), "skipped": sorted(set(own) - set(take))}


# ---------------------------------------------------------------- training
def cosine_lr_factor(step: int, total: int, warmup: int = 0) -> float:
    """Linear warm-up over ``warmup`` steps, then cosine from 1 to 0 at ``total``."""
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def param_groups(net: nn.Module, weight_decay: float, no_decay_bn: bool) -> list[dict]:
    bn = {id(p) for m in batch_norm_layers(net) for p in m.parameters()}
    decay = [p for p in net.parameters() if not (no_decay_bn and id(p) in bn)]
    rest = [p for p in net.parameters() if no_decay_bn and id(p) in bn]
    return [{"params": decay, "weight_decay": weight_decay}, {"params": rest, "weight_decay": 0.0}]


def topk_correct(logits: Tensor, target: Tensor, ks: Sequence[int] = (1, 5)) -> Tensor:
    """How many rows have the target among the top-k logits, per k (k capped at #classes)."""
    kmax = min(max(ks), logits.shape[1])
    hit = logits.topk(kmax, dim=1).indices.eq(target[:, None])
    return torch.stack([hit[:, : min(k, kmax)].any(dim=1).sum() for k in ks])


def evaluate(net: nn.Module, loader, env: DistEnv, amp_dtype: torch.dtype | None = None) -> dict:
    """Top-1 / top-5 accuracy (%) and mean loss; summed over processes when distributed."""
    net.eval()
    sums = torch.zeros(4, dtype=torch.float64, device=env.device)  # top1, top5, loss, n
    with torch.no_grad():
        for x, y in loader:
            x, y = x.to(env.device, non_blocking=True), y.to(env.device, non_blocking=True)
            with torch.autocast(env.device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
                logits = net(x).float()
            loss = nn.functional.cross_entropy(logits, y, reduction="sum")
            sums[:2] += topk_correct(logits, y)
            sums[2] += loss
            sums[3] += len(y)
    if env.distributed:
        torch.distributed.all_reduce(sums)
    top1, top5, loss, n = sums.tolist()
    n = max(1.0, n)
    return {"top1": 100 * top1 / n, "top5": 100 * top5 / n, "loss": loss / n, "n": int(n)}


def _epoch_seed(seed: int, epoch: int, rank: int) -> int:
    return (seed * 1_000_003 + epoch * 7919 + rank) % (2**31)


def build_optimizer(net: nn.Module, config: TransferConfig, steps_per_epoch: int):
    """SGD (Nesterov) with the batch-scaled learning rate, a per-step cosine schedule with
    linear warm-up, and the EMA of the weights (None without ``ema_decay``)."""
    optimizer = torch.optim.SGD(
        param_groups(net, config.weight_decay, config.no_decay_bn),
        lr=config.lr * config.batch_size / 256,
        momentum=config.momentum,
        nesterov=config.nesterov,
    )
    total, warm = config.epochs * steps_per_epoch, config.warmup_epochs * steps_per_epoch
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: cosine_lr_factor(s, total, warm)
    )
    ema = None
    if config.ema_decay > 0:
        from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

        ema = AveragedModel(
            net, multi_avg_fn=get_ema_multi_avg_fn(config.ema_decay), use_buffers=True
        )
    return optimizer, scheduler, ema


def _resume(store: Store, run_meta: dict, net, optimizer, scheduler, ema, env: DistEnv):
    """Load the newest valid checkpoint of this run into the training state; its epoch and
    history (0 and [] without one)."""
    found = latest_checkpoint(store, map_location=env.device)
    if found is None:
        return 0, []
    key, state = found
    where = f"{store.uri}/{key}"
    check_resumable(state["meta"], run_meta, where)
    check_shapes(state["model"], net.state_dict(), where)
    restore_training_state(state, net, optimizer, scheduler)
    if ema is not None:
        ema.load_state_dict(state["ema"])
    return int(state["epoch"]), list(state["history"])


def check_training(train_loss: float, net: nn.Module, epoch: int, config: TransferConfig) -> None:
    """Stop a diverged run before it is checkpointed or exported (a NaN model was written
    with ``loss: NaN`` and exit 0): a non-finite loss or weights is a :class:`DivergedError`."""
    lr = config.lr * config.batch_size / 256
    if not math.isfinite(train_loss):
        raise DivergedError(
            f"transfer: epoch {epoch + 1}: the training loss is {train_loss} (diverged at "
            f"lr {lr:g} = --lr x --batch-size / 256); lower --lr or --batch-size"
        )
    check_finite(net.state_dict(), f"transfer: epoch {epoch + 1}")


def train_epoch(model, net, batches, optimizer, scheduler, ema, criterion, env, amp_dtype):
    """One pass over ``batches`` training ``model`` (``net``, or its DDP / compiled wrapper);
    the mean training loss over every process."""
    channels_last = env.device.type == "cuda"
    model.train()
    totals = torch.zeros(2, dtype=torch.float64, device=env.device)  # loss sum, images
    for x, y in batches:
        x, y = x.to(env.device, non_blocking=True), y.to(env.device, non_blocking=True)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(env.device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
            loss = criterion(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        if ema is not None:
            ema.update_parameters(net)
        totals[0] += loss.detach() * len(y)
        totals[1] += len(y)
    if env.distributed:
        torch.distributed.all_reduce(totals)
    return float(totals[0]) / max(1.0, float(totals[1]))


def transfer(
    space: str,
    arch: str,
    data: str | os.PathLike,
    out: str | os.PathLike,
    config: TransferConfig | None = None,
    supernet: str | os.PathLike | None = None,
    checkpoint_dir: str | os.PathLike | None = None,
    device: str | None = None,
    stop_after: int | None = None,
    export: bool = True,
    progress: bool = True,
) -> dict[str, Any]:
    """Train ``arch`` of ``space`` on the ImageFolder tree ``data``; write the results to ``out``.

    ``checkpoint_dir`` (default ``out/checkpoints``) receives a checkpoint after every epoch and
    is resumed from; ``stop_after`` leaves after that many epochs of *this* run (a time-boxed pod),
    returning ``{"finished": False, ...}``. Returns the metrics written to ``arch.json``.
    """
    from tqdm.auto import tqdm

    config = config or TransferConfig()
    if stop_after is not None and stop_after < 1:
        raise ValueError(f"stop_after: must be >= 1 (epochs of this run), got {stop_after}")
    arch = str(get_space(space).network(get_space(space).from_str(arch)))  # validates; canonical
    out = Path(out)
    env = init_distributed(device)
    root = resolve_data(data, out / "data-cache")
    train_ds, val_ds = build_datasets(root, config)
    num_classes = len(train_ds.classes)

    torch.manual_seed(config.seed)  # the initial weights
    meta_in = read_supernet_meta(supernet) if supernet else None
    width = config.width_mult or (meta_in and supernet_width(meta_in)) or 1.0
    net = supernets.imagenet_network(space, arch, num_classes, width, config.dropout)
    init_report = init_from_supernet(net, space, supernet) if supernet else None
    net.to(env.device)
    if env.device.type == "cuda":
        net = net.to(memory_format=torch.channels_last)
    amp_dtype = torch.bfloat16 if (config.amp and env.device.type == "cuda") else None

    train_loader, sampler, val_loader = build_loaders(train_ds, val_ds, config, env)
    if len(train_loader) == 0:
        raise ValueError(f"data: {root / 'train'} has no image")
    optimizer, scheduler, ema = build_optimizer(net, config, len(train_loader))
    criterion = nn.CrossEntropyLoss(label_smoothing=config.label_smoothing)
    run_meta = {
        "space": space,
        "arch": arch,
        "num_classes": num_classes,
        "width_mult": width,
        "epochs": config.epochs,
        "batch_size": config.batch_size,
        "image_size": config.image_size,
        "ema_decay": config.ema_decay,
        "supernet": str(supernet) if supernet else None,
    }
    ckpts = open_store(str(checkpoint_dir or out / "checkpoints"))
    if env.main:  # the one writer of the checkpoints (ranks > 0 only read them)
        hold_store(ckpts, "transfer checkpoints")
    try:
        start, history = _resume(ckpts, run_meta, net, optimizer, scheduler, ema, env)

        train_model: nn.Module = net
        if env.distributed:
            train_model = nn.parallel.DistributedDataParallel(
                net, device_ids=[env.local_rank] if env.device.type == "cuda" else None
            )
        if config.compile:
            train_model = torch.compile(train_model)

        end = config.epochs if stop_after is None else min(config.epochs, start + stop_after)
        for epoch in range(start, end):
            # augmentation, dropout and shuffling: seeded per epoch, so a resumed run repeats them
            torch.manual_seed(_epoch_seed(config.seed, epoch, env.rank))
            if sampler is not None:
                sampler.set_epoch(epoch)
            quiet = not (progress and env.main)
            batches = tqdm(
                train_loader,
                desc=f"transfer epoch {epoch + 1}/{config.epochs}",
                leave=False,
                disable=quiet,
            )
            train_loss = train_epoch(
                train_model, net, batches, optimizer, scheduler, ema, criterion, env, amp_dtype
            )
            check_training(train_loss, net, epoch, config)
            metrics = evaluate(ema.module if ema is not None else net, val_loader, env, amp_dtype)
            history.append(
                {
                    "epoch": epoch + 1,
                    "train_loss": train_loss,
                    "lr": scheduler.get_last_lr()[0],
                    **metrics,
                }
            )
            if env.main:
                state = {
                    **training_state(net, optimizer, scheduler),
                    "ema": ema.state_dict() if ema is not None else None,
                    "history": history,
                    "meta": run_meta,
                }
                write_checkpoint(ckpts, epoch + 1, state, KEEP_CHECKPOINTS)
            if env.distributed:
                torch.distributed.barrier()
            if not quiet:
                tqdm.write(
                    f"epoch {epoch + 1}: train loss {train_loss:.4f}, "
                    f"top-1 {metrics['top1']:.2f}, top-5 {metrics['top5']:.2f}"
                )

        if end < config.epochs:
            return {"finished": False, "epoch": end, "history": history}
        final = copy.deepcopy(ema.module if ema is not None else net).float().cpu().eval()
        result = {
            "finished": True,
            "space": space,
            "arch": arch,
            "flops_M": count_flops(final, config.image_size) / 1e6,
            "params_M": count_params(final) / 1e6,
            "top1": history[-1]["top1"],
            "top5": history[-1]["top5"],
            "image_size": config.image_size,
            "mean": list(config.mean),
            "std": list(config.std),
            "num_classes": num_classes,
            "classes": list(train_ds.classes),
            "width_mult": width,
            "epochs": config.epochs,
            "ema": config.ema_decay > 0,
            "program": "model.pt2" if export else None,
            "input": "RGB float in [0, 1], NCHW; normalisation is inside model.pt2",
            "init": init_report and {"supernet": str(supernet), "loaded": init_report["loaded"]},
            "history": history,
        }
        if env.main:
            _write_outputs(
                out, final, result, {**run_meta, "config": asdict(config)}, config, export
            )
        if env.distributed:
            torch.distributed.barrier()
        return result
    finally:
        if env.main:
            release_store(ckpts)


def _write_outputs(
    out: Path, net: nn.Module, result: dict, meta: dict, config: TransferConfig, export: bool
) -> None:
    """``model.pt2`` (unless not ``export``), ``weights.pt``, ``meta.json``, ``arch.json``,
    ``history.json``; ``meta.json`` last, sealed over the others."""
    out.mkdir(parents=True, exist_ok=True)
    if export:
        export_program(net, out / "model.pt2", config.image_size, config.mean, config.std)
    save_torch(net.state_dict(), out / "weights.pt")
    write_json(
        out / "arch.json", {k: v for k, v in result.items() if k not in ("history", "finished")}
    )
    write_json(out / "history.json", result["history"])
    meta = {**meta, "stem": "imagenet", "code_version": __version__}
    write_json(out / "meta.json", seal_meta(meta, out))


def load_weights(out: str | os.PathLike) -> nn.Module:
    """Rebuild the trained network of a ``transfer`` output directory (with naslid)."""
    out = Path(out)
    meta = read_json(out / "meta.json")
    verify_meta(meta, out, str(out / "meta.json"))  # weights.pt is under the seal
    for key in ("space", "arch", "num_classes", "width_mult"):
        if key not in meta:
            raise ValueError(f"{out / 'meta.json'}: no field {key!r}")
    net = supernets.imagenet_network(
        meta["space"],
        meta["arch"],
        meta["num_classes"],
        meta["width_mult"],
        meta.get("config", {}).get("dropout", 0.0),
    )
    net.load_state_dict(load_torch(out / "weights.pt"))
    return net.eval()
