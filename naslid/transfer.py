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

The networks at ImageNet input:

- ``mobilenet``: the ProxylessNAS network of :mod:`naslid.supernets.mobilenet` with its own
  ImageNet stem (stride-2 first conv, 7x7 before pooling), affine BatchNorm.
- ``nb201``: the NAS-Bench-201 network (C = 16 x width, N = 5) has only a stride-1 3x3 stem
  for 32x32 inputs, and NAS-Bench-201 defines no 224x224 variant (its ImageNet16-120 set is
  16x16). Here its stem is replaced by DARTS's ImageNet stem (Liu et al. 2019, ``NetworkImageNet``:
  3x3 conv stride 2 to C/2, BN, ReLU, 3x3 conv stride 2 to C, BN, then ReLU, 3x3 conv stride 2, BN),
  so the three cell stages run at 28, 14 and 7 pixels for a 224 input, as mobile networks do.

Training follows ProxylessNAS's ImageNet recipe (mit-han-lab/proxylessnas
``search/imagenet_run_exp.py``; see :class:`TransferConfig`): SGD with Nesterov momentum,
cosine learning rate per step, label smoothing, no weight decay on BatchNorm, optional EMA of
the weights; bf16 autocast on GPU; several GPUs of one pod with ``torchrun`` (DDP, one process
per GPU, ``WORLD_SIZE`` / ``RANK`` / ``LOCAL_RANK`` from the environment):

    torchrun --nproc_per_node=8 -m naslid transfer --space mobilenet --arch ... --data ... --out ...

Every epoch writes a checkpoint (naslid's checksummed format) to ``checkpoint_dir`` (a
directory or a ``minio://`` / ``s3://`` prefix, :mod:`naslid.store`); a rerun with the same
arguments resumes after the last finished epoch, and a truncated checkpoint is refused.
``data`` may also be a ``minio://`` / ``s3://`` prefix: it is copied to a local cache first
(:func:`resolve_data`), the hook where the pipeline's store module plugs in.
"""

from __future__ import annotations

import copy
import math
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.flop_counter import FlopCounterMode

from naslid import __version__
from naslid.batchnorm import batch_norm_layers
from naslid.io import (
    check_meta,
    read_json,
    save_torch,
    torch_from_bytes,
    torch_to_bytes,
    write_json,
)
from naslid.spaces import get as get_space

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CHECKPOINT_KEY = "transfer-last.pt"


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


# ---------------------------------------------------------------- networks
def darts_imagenet_stem(C: int) -> nn.Sequential:
    """DARTS's ImageNet stem (stem0 + stem1): three stride-2 3x3 convs, 224 -> 28."""
    return nn.Sequential(
        nn.Conv2d(3, C // 2, 3, 2, 1, bias=False),
        nn.BatchNorm2d(C // 2),
        nn.ReLU(inplace=True),
        nn.Conv2d(C // 2, C, 3, 2, 1, bias=False),
        nn.BatchNorm2d(C),
        nn.ReLU(inplace=True),
        nn.Conv2d(C, C, 3, 2, 1, bias=False),
        nn.BatchNorm2d(C),
    )


def nb201_channels(width_mult: float) -> int:
    """NB201's C = 16 x width, even (the stem halves it), at least 2."""
    return max(2, 2 * round(8 * width_mult))


def build_network(
    space: str, arch: str, num_classes: int, width_mult: float = 1.0, dropout: float = 0.0
) -> nn.Module:
    """The standalone network of ``arch`` for ImageNet-sized input (``net(x)`` runs the arch)."""
    mod = get_space(space)
    a = mod.from_str(arch)
    mask = mod.SPACE.arch_mask(a)
    if space == "mobilenet":
        from naslid.supernets.mobilenet import Supernet

        return Supernet(
            width_mult, num_classes, mask, affine=True, stem="imagenet", dropout=dropout
        )
    from naslid.supernets.nb201 import Supernet as NB201

    C = nb201_channels(width_mult)
    net = NB201(C=C, N=5, num_classes=num_classes, mask=mask, affine=True)
    net.stem = darts_imagenet_stem(C)
    return net


_NOT_TRANSFERRED = {"nb201": ("stem.",), "mobilenet": ()}
"""Modules that differ between the supernet and the ImageNet network beyond their shapes."""


def supernet_width(meta: dict) -> float | None:
    """The width multiplier of the supernet described by ``meta.json`` (None if unknown)."""
    cfg = meta.get("supernet") or meta.get("config") or {}  # naslid.train.save_model: "supernet"
    if "width_mult" in cfg:
        return float(cfg["width_mult"])
    if "C" in cfg:
        return float(cfg["C"]) / 16
    return None


def read_supernet_meta(checkpoint: str | os.PathLike) -> dict:
    path = Path(checkpoint)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such supernet checkpoint")
    return read_json(path.parent / "meta.json")


def init_from_supernet(net: nn.Module, space: str, checkpoint: str | os.PathLike) -> dict:
    """Copy the supernet's weights of ``net``'s path into ``net`` (same names and shapes).

    ``checkpoint`` is a ``.pt`` state dict (naslid format, optionally under ``"model"`` or
    ``"state_dict"``) with a ``meta.json`` beside it whose ``space`` must be ``space``, as
    ``naslid.train.save_model`` writes them (``supernet.pt`` + ``meta.json``). The
    classifier is skipped when the class count differs, NB201's CIFAR stem always; a non-affine
    supernet BatchNorm leaves the standalone one at weight 1 / bias 0, the same function.
    """
    from naslid.io import load_torch

    meta = read_supernet_meta(checkpoint)
    check_meta(meta, {"space": space}, f"{Path(checkpoint).parent / 'meta.json'}")
    state = load_torch(checkpoint)
    for key in ("model", "state_dict"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict):
        raise ValueError(f"{checkpoint}: not a state dict")
    own = net.state_dict()
    take = {
        k: v
        for k, v in state.items()
        if k in own and own[k].shape == v.shape and not k.startswith(_NOT_TRANSFERRED[space])
    }
    if not any(k in take for k in own if k.startswith("layers.")):
        raise ValueError(
            f"{checkpoint}: no layer weight matches the network (width or space differ?)"
        )
    net.load_state_dict(take, strict=False)
    return {"loaded": len(take), "skipped": sorted(set(own) - set(take))}


def count_flops(net: nn.Module, image_size: int) -> int:
    """Multiply-adds of one image (``FlopCounterMode``'s count / 2), on a CPU copy in eval mode."""
    model = copy.deepcopy(net).float().cpu().eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(torch.zeros(1, 3, image_size, image_size))
    return counter.get_total_flops() // 2


def count_params(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


class Normalized(nn.Module):
    """``net`` behind ``(x - mean) / std``: the deployed program takes RGB in [0, 1]."""

    def __init__(self, net: nn.Module, mean: Sequence[float], std: Sequence[float]):
        super().__init__()
        self.net = net
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1))

    def forward(self, x: Tensor) -> Tensor:
        return self.net((x - self.mean) / self.std)


def export_program(
    net: nn.Module,
    path: str | os.PathLike,
    image_size: int,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
) -> Path:
    """Write ``net`` (eval mode, float32, CPU, normalisation inside) as a ``torch.export`` .pt2."""
    model = Normalized(copy.deepcopy(net).float().cpu().eval(), mean, std).eval()
    example = torch.rand(2, 3, image_size, image_size)
    batch = torch.export.Dim("batch", min=1, max=65536)
    program = torch.export.export(model, (example,), dynamic_shapes={"x": {0: batch}})
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")  # torch.export.save wants a .pt2 name
    torch.export.save(program, tmp)
    os.replace(tmp, path)
    return path


# -------------------------------------------------------------------- data
def make_digits_imagefolder(
    root: str | os.PathLike,
    train_per_class: int = 20,
    val_per_class: int = 5,
    size: int = 32,
    seed: int = 0,
) -> Path:
    """A tiny ImageNet-layout tree (``train/``, ``val/``, 10 classes) of scikit-learn's digits.

    The 8x8 grey digits are scaled to 0..255, upscaled (bilinear) to ``size`` and saved as RGB PNG.
    """
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    rng = np.random.default_rng(seed)
    root = Path(root)
    for label in range(10):
        idx = rng.permutation(np.flatnonzero(digits.target == label))
        if len(idx) < train_per_class + val_per_class:
            raise ValueError(
                f"train_per_class + val_per_class: at most {len(idx)} digits of class {label}"
            )
        for split, take in (
            ("train", idx[:train_per_class]),
            ("val", idx[train_per_class : train_per_class + val_per_class]),
        ):
            folder = root / split / str(label)
            folder.mkdir(parents=True, exist_ok=True)
            for i in take:
                grey = (digits.images[i] * (255.0 / 16.0)).round().astype(np.uint8)
                img = (
                    Image.fromarray(grey, mode="L")
                    .resize((size, size), Image.BILINEAR)
                    .convert("RGB")
                )
                img.save(folder / f"{i:04d}.png")
    return root


def resolve_data(location: str | os.PathLike, cache_dir: str | os.PathLike | None = None) -> Path:
    """A local ImageFolder root for ``location``: a directory, or a store prefix copied to ``cache_dir``.

    Hook for the pipeline: ``minio://BUCKET/PREFIX`` (or ``s3://``) is downloaded with
    :func:`naslid.store.download_prefix` (credentials from the environment) unless the cache
    already holds ``train/`` and ``val/``.
    """
    from naslid import store

    if store.is_remote(str(location)):
        if cache_dir is None:
            raise ValueError(f"data: {location} is remote; give a local cache directory")
        cache = Path(cache_dir)
        if not ((cache / "train").is_dir() and (cache / "val").is_dir()):
            store.download_prefix(store.open_store(str(location)), "", cache)
        root = cache
    else:
        root = Path(location)
    for split in ("train", "val"):
        if not (root / split).is_dir():
            raise FileNotFoundError(
                f"data: {root / split} is not a directory (expected the ImageNet layout train/ val/)"
            )
    return root


def build_transforms(image_size: int, train: bool, config: TransferConfig):
    from torchvision.transforms import v2

    if train:
        head = [
            v2.RandomResizedCrop(image_size, scale=(config.crop_scale_min, 1.0), antialias=True),
            v2.RandomHorizontalFlip(),
        ]
    else:
        head = [
            v2.Resize(int(round(image_size / config.val_crop_ratio)), antialias=True),
            v2.CenterCrop(image_size),
        ]
    return v2.Compose(
        [
            *head,
            v2.ToImage(),
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize(list(config.mean), list(config.std)),
        ]
    )


def load_image(path: str):
    """An ImageFolder file as an RGB PIL image; a file that is no image is one ValueError
    naming it (not a PIL traceback from inside a loader worker)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with open(path, "rb") as f:
            return Image.open(f).convert("RGB")
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise ValueError(f"{path}: not a readable image ({type(exc).__name__})") from None


def build_datasets(root: Path, config: TransferConfig):
    from torchvision.datasets import ImageFolder

    train = ImageFolder(
        str(root / "train"),
        transform=build_transforms(config.image_size, True, config),
        loader=load_image,
    )
    val = ImageFolder(
        str(root / "val"),
        transform=build_transforms(config.image_size, False, config),
        loader=load_image,
    )
    if train.classes != val.classes:
        raise ValueError(
            f"data: {root / 'val'} has classes {val.classes[:5]}..., {root / 'train'} has {train.classes[:5]}..."
        )
    return train, val


# ------------------------------------------------------------- distributed
@dataclass
class DistEnv:
    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def init_distributed(device: str | None = None) -> DistEnv:
    """Read torchrun's ``WORLD_SIZE`` / ``RANK`` / ``LOCAL_RANK``; start the process group if > 1."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank, local = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    want = device or ("cuda" if torch.cuda.is_available() else "cpu")
    if want.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError("device: cuda requested but no GPU is available")
    dev = torch.device(f"cuda:{local}") if want == "cuda" else torch.device(want)
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    if world > 1 and not torch.distributed.is_initialized():
        torch.distributed.init_process_group("nccl" if dev.type == "cuda" else "gloo")
    return DistEnv(rank, local, world, dev)


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


def _open_checkpoints(location: str | os.PathLike):
    from naslid.store import open_store

    return open_store(str(location))


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
    config = config or TransferConfig()
    mod = get_space(space)
    arch = str(mod.from_str(arch))  # validates, canonical text
    out = Path(out)
    env = init_distributed(device)
    root = resolve_data(data, out / "data-cache")
    train_ds, val_ds = build_datasets(root, config)
    num_classes = len(train_ds.classes)

    torch.manual_seed(config.seed)  # the initial weights
    meta_in = read_supernet_meta(supernet) if supernet else None
    width = config.width_mult or (meta_in and supernet_width(meta_in)) or 1.0
    net = build_network(space, arch, num_classes, width, config.dropout)
    init_report = init_from_supernet(net, space, supernet) if supernet else None
    net.to(env.device)
    channels_last = env.device.type == "cuda"
    if channels_last:
        net = net.to(memory_format=torch.channels_last)
    amp_dtype = torch.bfloat16 if (config.amp and env.device.type == "cuda") else None

    # ------------------------------------------------------------ loaders
    per_proc = max(1, config.batch_size // env.world_size)
    if env.distributed:
        from torch.utils.data.distributed import DistributedSampler

        sampler = DistributedSampler(
            train_ds, env.world_size, env.rank, shuffle=True, seed=config.seed
        )
        val_part = torch.utils.data.Subset(val_ds, range(env.rank, len(val_ds), env.world_size))
    else:
        sampler, val_part = None, val_ds
    n_local = len(train_ds) // env.world_size
    common = {
        "num_workers": config.workers,
        "pin_memory": env.device.type == "cuda",
        "persistent_workers": False,
    }  # fresh worker seeds each epoch: a resumed run repeats them
    train_loader = torch.utils.data.DataLoader(
        train_ds,
        batch_size=per_proc,
        sampler=sampler,
        shuffle=sampler is None,
        drop_last=n_local >= per_proc,
        **common,
    )
    val_loader = torch.utils.data.DataLoader(val_part, batch_size=per_proc, shuffle=False, **common)
    steps_per_epoch = len(train_loader)
    if steps_per_epoch == 0:
        raise ValueError(f"data: {root / 'train'} has no image")

    # ---------------------------------------------------------- optimiser
    lr = config.lr * config.batch_size / 256
    optimizer = torch.optim.SGD(
        param_groups(net, config.weight_decay, config.no_decay_bn),
        lr=lr,
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

    # -------------------------------------------------------------- resume
    ckpts = _open_checkpoints(checkpoint_dir or out / "checkpoints")
    start, history = 0, []
    if ckpts.exists(CHECKPOINT_KEY):
        state = torch_from_bytes(
            ckpts.get_bytes(CHECKPOINT_KEY),
            f"{ckpts.uri}/{CHECKPOINT_KEY}",
            map_location=env.device,
        )
        check_meta(state["meta"], run_meta, f"{ckpts.uri}/{CHECKPOINT_KEY}")
        net.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        if ema is not None:
            ema.load_state_dict(state["ema"])
        start, history = int(state["epoch"]), list(state["history"])

    train_model: nn.Module = net
    if env.distributed:
        train_model = nn.parallel.DistributedDataParallel(
            net, device_ids=[env.local_rank] if env.device.type == "cuda" else None
        )
    if config.compile:
        train_model = torch.compile(train_model)

    # ------------------------------------------------------------- epochs
    from tqdm.auto import tqdm

    end = config.epochs if stop_after is None else min(config.epochs, start + stop_after)
    for epoch in range(start, end):
        # augmentation, dropout and shuffling: seeded per epoch, so a resumed run repeats them
        torch.manual_seed(_epoch_seed(config.seed, epoch, env.rank))
        if sampler is not None:
            sampler.set_epoch(epoch)
        train_model.train()
        totals = torch.zeros(2, dtype=torch.float64, device=env.device)  # loss sum, images
        bar = tqdm(
            train_loader,
            desc=f"transfer epoch {epoch + 1}/{config.epochs}",
            leave=False,
            disable=not (progress and env.main),
        )
        for x, y in bar:
            x, y = x.to(env.device, non_blocking=True), y.to(env.device, non_blocking=True)
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            with torch.autocast(env.device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
                loss = criterion(train_model(x), y)
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
        eval_net = ema.module if ema is not None else net
        metrics = evaluate(eval_net, val_loader, env, amp_dtype)
        history.append(
            {
                "epoch": epoch + 1,
                "train_loss": float(totals[0]) / max(1.0, float(totals[1])),
                "lr": scheduler.get_last_lr()[0],
                **metrics,
            }
        )
        if env.main:
            ckpts.put_bytes(
                CHECKPOINT_KEY,
                torch_to_bytes(
                    {
                        "epoch": epoch + 1,
                        "model": net.state_dict(),
                        "optimizer": optimizer.state_dict(),
                        "scheduler": scheduler.state_dict(),
                        "ema": ema.state_dict() if ema is not None else None,
                        "history": history,
                        "meta": run_meta,
                    }
                ),
            )
        if env.distributed:
            torch.distributed.barrier()
        if progress and env.main:
            tqdm.write(
                f"epoch {epoch + 1}: train loss {history[-1]['train_loss']:.4f}, "
                f"top-1 {metrics['top1']:.2f}, top-5 {metrics['top5']:.2f}"
            )

    if end < config.epochs:
        return {"finished": False, "epoch": end, "history": history}

    # ------------------------------------------------------------- results
    final = copy.deepcopy(ema.module if ema is not None else net).float().cpu().eval()
    metrics = history[-1]
    result = {
        "finished": True,
        "space": space,
        "arch": arch,
        "flops_M": count_flops(final, config.image_size) / 1e6,
        "params_M": count_params(final) / 1e6,
        "top1": metrics["top1"],
        "top5": metrics["top5"],
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
        out.mkdir(parents=True, exist_ok=True)
        if export:
            export_program(final, out / "model.pt2", config.image_size, config.mean, config.std)
        save_torch(final.state_dict(), out / "weights.pt")
        write_json(
            out / "meta.json",
            {**run_meta, "config": asdict(config), "stem": "imagenet", "code_version": __version__},
        )
        write_json(
            out / "arch.json", {k: v for k, v in result.items() if k not in ("history", "finished")}
        )
        write_json(out / "history.json", history)
    if env.distributed:
        torch.distributed.barrier()
    return result


def load_weights(out: str | os.PathLike) -> nn.Module:
    """Rebuild the trained network of a ``transfer`` output directory (with naslid)."""
    from naslid.io import load_torch

    out = Path(out)
    meta = read_json(out / "meta.json")
    for key in ("space", "arch", "num_classes", "width_mult"):
        if key not in meta:
            raise ValueError(f"{out / 'meta.json'}: no field {key!r}")
    net = build_network(
        meta["space"],
        meta["arch"],
        meta["num_classes"],
        meta["width_mult"],
        meta.get("config", {}).get("dropout", 0.0),
    )
    net.load_state_dict(load_torch(out / "weights.pt"))
    return net.eval()
