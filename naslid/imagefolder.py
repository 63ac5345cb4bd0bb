"""ImageNet-layout data for the transfer (``ROOT/train/<class>/*``, ``ROOT/val/<class>/*``):
locating it (a directory or a store prefix copied to a cache), ProxylessNAS's transforms,
the datasets and their (distributed) loaders, and a tiny tree of digits for smoke runs."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from naslid.distributed import DistEnv

if TYPE_CHECKING:
    from naslid.transfer import TransferConfig


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


def build_loaders(train_ds, val_ds, config: TransferConfig, env: DistEnv):
    """The training loader (its sampler: a ``DistributedSampler`` or None) and the validation
    loader of this process; ``config.batch_size`` is global, split over the processes."""
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
    return train_loader, sampler, val_loader
