"""Decoded images in memory (:class:`ImageData`), the data sets' splits and normalisation
constants, where the data sets live (``$NASLID_DATA``), and per-class index selection."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

DATASETS: dict[str, tuple[str, ...]] = {
    "digits": ("train", "valid", "test"),
    "synthetic": ("train", "valid", "test"),
    "cifar10": ("train", "test"),
    "cifar10-valid": ("train", "valid", "test"),
    "cifar100": ("train", "test"),
    "imagefolder": ("train", "valid"),
}

# Normalisation constants of NAS-Bench-201 (Dong & Yang 2020; AutoDL-Projects get_datasets).
CIFAR10_MEAN = (125.3 / 255, 123.0 / 255, 113.9 / 255)
CIFAR10_STD = (63.0 / 255, 62.1 / 255, 66.7 / 255)
CIFAR100_MEAN = (129.3 / 255, 124.1 / 255, 112.4 / 255)
CIFAR100_STD = (68.2 / 255, 65.4 / 255, 70.4 / 255)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
SYNTHETIC_MEAN = (0.5, 0.5, 0.5)
SYNTHETIC_STD = (0.25, 0.25, 0.25)

SPLIT_SEED = 0
"""Seed of the fixed permutations (digits splits, cifar10-valid's stratified halves)."""
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".webp", ".tif", ".tiff")


@dataclass(frozen=True)
class ImageData:
    """A decoded split: ``images`` uint8 [n, 3, H, W], ``labels`` int64 [n]."""

    images: Tensor
    labels: Tensor
    classes: tuple[str, ...]
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    name: str = ""
    split: str = ""

    def __post_init__(self) -> None:
        if self.images.dtype != torch.uint8 or self.images.dim() != 4 or self.images.shape[1] != 3:
            raise ValueError(
                f"images: expected uint8 [n, 3, H, W], got {self.images.dtype} {tuple(self.images.shape)}"
            )
        if self.labels.shape != (self.images.shape[0],):
            raise ValueError(
                f"labels: expected shape ({self.images.shape[0]},), got {tuple(self.labels.shape)}"
            )
        if len(self.labels) and (
            int(self.labels.min()) < 0 or int(self.labels.max()) >= len(self.classes)
        ):
            raise ValueError(f"labels: values outside 0..{len(self.classes) - 1}")

    def __len__(self) -> int:
        return int(self.images.shape[0])

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def image_size(self) -> tuple[int, int]:
        return int(self.images.shape[2]), int(self.images.shape[3])

    def subset(self, index: Sequence[int] | np.ndarray | Tensor) -> ImageData:
        if isinstance(index, Tensor):
            idx = index.to(self.images.device, torch.long)
        else:
            idx = torch.as_tensor(np.asarray(index), dtype=torch.long, device=self.images.device)
        return ImageData(
            self.images[idx],
            self.labels[idx],
            self.classes,
            self.mean,
            self.std,
            self.name,
            self.split,
        )

    def to(self, device: str | torch.device) -> ImageData:
        return ImageData(
            self.images.to(device),
            self.labels.to(device),
            self.classes,
            self.mean,
            self.std,
            self.name,
            self.split,
        )


DATA_ENV = "NASLID_DATA"


def data_home() -> Path:
    """The folder holding the data sets: ``$NASLID_DATA`` (on a cluster the dataset volume),
    else ``~/.cache/naslid/data``."""
    return Path(os.environ.get(DATA_ENV, "~/.cache/naslid/data")).expanduser()


def stratified_sample(labels: np.ndarray, size: int | None, seed: int = 0) -> np.ndarray:
    """Indices of a seeded, class-stratified random subset of ``size`` items, in random order.

    Each class gets its share of ``size`` in proportion to its count (largest remainders
    round, ties to the lower class), drawn at random within the class: never "the first N",
    which on a split sorted by class (CIFAR-10 built from the packed or ImageFolder files) is
    one class. ``size`` ``None`` or at least ``len(labels)``: every index, shuffled.
    """
    labels = np.asarray(labels)
    n = len(labels)
    rng = np.random.default_rng(seed)
    if size is None or size >= n:
        return rng.permutation(n)
    if size < 0:
        raise ValueError(f"size: must be >= 0, got {size}")
    classes, counts = np.unique(labels, return_counts=True)
    quota = counts * size / n
    take = np.floor(quota).astype(np.int64)
    extra = size - int(take.sum())
    order = np.lexsort((np.arange(len(classes)), -(quota - take)))  # largest remainder first
    take[order[:extra]] += 1
    picked = [rng.permutation(np.flatnonzero(labels == c))[:k] for c, k in zip(classes, take) if k]
    chosen = np.concatenate(picked) if picked else np.zeros(0, dtype=np.int64)
    return rng.permutation(chosen)


def limit_per_class(labels: np.ndarray, limit: int | None, seed: int = 0) -> np.ndarray:
    """Sorted indices of at most ``limit`` items: a :func:`stratified_sample` (the loaders'
    ``--limit``; decoded in file order)."""
    return np.sort(stratified_sample(labels, limit, seed))


def stratified_halves(labels: np.ndarray, seed: int = SPLIT_SEED) -> tuple[np.ndarray, np.ndarray]:
    """Split indices in two halves with the same class counts, by a fixed permutation."""
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    first, second = [], []
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        first.append(idx[: len(idx) // 2])
        second.append(idx[len(idx) // 2 :])
    return np.sort(np.concatenate(first)), np.sort(np.concatenate(second))
