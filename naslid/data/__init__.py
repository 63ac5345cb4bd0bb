"""Image data sets held in memory as uint8 tensors, with augmentation on the device.

``load(name, root, split)`` decodes a data set once into an :class:`ImageData` (uint8 NCHW
images, int64 labels, class names, normalisation mean/std); :class:`BatchIterator` moves it
once to the training device (GPU memory when there is one, RAM otherwise) and cuts
shuffled, augmented, normalised batches there, so no CPU worker has to feed the GPU.
Shuffling and augmentation draw from one seeded ``torch.Generator`` whose state is saved in
training checkpoints (``state_dict`` / ``load_state_dict``).

Data sets (``DATASETS`` lists each one's splits):

- ``digits``: scikit-learn's bundled handwritten digits (1,797 8x8 images in 0..16), scaled
  to 0..255, resized to 32x32 (bilinear) and copied to three channels; train/valid/test are
  60/20/20 % of a fixed permutation. Needs no download: the default of ``make run``.
- ``synthetic``: small, deterministic, class-dependent images (a colour and a coarse pattern
  per class plus noise) that a network can learn; for tests and benchmarks.
- ``cifar10`` / ``cifar100``: from any of three layouts under ``root``: torchvision's
  (``cifar-10-batches-py/`` or ``cifar-100-python/`` pickle batches; ``download=True`` fetches
  it with torchvision where there is a network), an ImageFolder tree (``train/<class>/*.jpg``,
  ``test/<class>/*.jpg``, read in place and decoded in a thread pool) or the packed form
  (``train.npz`` / ``test.npz`` holding ``data``, ``off``, ``y``, ``classes``: every image file's
  bytes concatenated, with offsets).
- ``cifar10-valid``: NAS-Bench-201's "cifar10-valid" setting: the 50,000 training images split
  25,000/25,000 into train/valid, the test set as test. NAS-Bench-201 used a fixed split file
  that we do not have; we use a fixed, class-stratified permutation instead (seed 0), so the
  split is balanced and reproducible but not image-for-image the benchmark's.
- ``imagefolder``: an ImageNet-style tree, ``train/<class>/*`` and ``val/<class>/*`` (split
  ``valid``), resized (shorter side) and centre-cropped to ``image_size``.

The package, one concept per module: :mod:`~naslid.data.images` (:class:`ImageData`, the
splits, normalisation constants, ``data_home``, per-class selection),
:mod:`~naslid.data.decode` (image files to arrays), :mod:`~naslid.data.small` (``digits``,
``synthetic``), :mod:`~naslid.data.cifar`, :mod:`~naslid.data.folder` (class-folder trees,
``imagefolder``), :mod:`~naslid.data.augment` and :mod:`~naslid.data.batches`
(:class:`BatchIterator`); this module holds the entry point, :func:`load`.
"""

from __future__ import annotations

import os
from pathlib import Path

from naslid.data.augment import crop_flip, normalize, random_crop_flip
from naslid.data.batches import BatchIterator
from naslid.data.cifar import _load_cifar
from naslid.data.decode import decode_image, decode_many
from naslid.data.folder import _load_imagefolder
from naslid.data.images import (
    CIFAR10_MEAN,
    CIFAR10_STD,
    CIFAR100_MEAN,
    CIFAR100_STD,
    DATA_ENV,
    DATASETS,
    IMAGE_EXTENSIONS,
    IMAGENET_MEAN,
    IMAGENET_STD,
    SPLIT_SEED,
    SYNTHETIC_MEAN,
    SYNTHETIC_STD,
    ImageData,
    data_home,
    limit_per_class,
    stratified_halves,
    stratified_sample,
)
from naslid.data.small import digits, synthetic

__all__ = [
    "CIFAR10_MEAN",
    "CIFAR10_STD",
    "CIFAR100_MEAN",
    "CIFAR100_STD",
    "DATASETS",
    "DATA_ENV",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "IMAGE_EXTENSIONS",
    "SPLIT_SEED",
    "SYNTHETIC_MEAN",
    "SYNTHETIC_STD",
    "BatchIterator",
    "ImageData",
    "crop_flip",
    "data_home",
    "decode_image",
    "decode_many",
    "digits",
    "limit_per_class",
    "stratified_sample",
    "load",
    "normalize",
    "random_crop_flip",
    "stratified_halves",
    "synthetic",
]

_SPLIT_ALIASES = {"val": "valid", "validation": "valid"}


def load(
    name: str,
    root: str | os.PathLike | None = None,
    split: str = "train",
    *,
    download: bool = False,
    limit: int | None = None,
    image_size: int | None = None,
    workers: int | None = None,
    n: int | None = None,
    num_classes: int | None = None,
    seed: int = 0,
) -> ImageData:
    """Decode ``split`` of data set ``name`` into memory.

    ``root``: the data folder (cifar*, imagefolder; default ``$NASLID_DATA/<name>``).
    ``download``: fetch CIFAR with torchvision when ``root`` holds no copy (needs a network).
    ``limit``: at most this many images, a seeded class-stratified random subset
    (:func:`stratified_sample`, seed ``seed``), and only those are decoded. ``image_size``: side of the square
    images (default 32; other sizes are resized, shorter side, then centre-cropped).
    ``workers``: decoding threads. ``n``, ``num_classes``: synthetic data only; ``seed``: the synthetic data and the
    ``limit`` draw.
    """
    name = name.lower()
    if name not in DATASETS:
        raise ValueError(f"dataset: unknown {name!r}; expected one of {', '.join(DATASETS)}")
    split = _SPLIT_ALIASES.get(split, split)
    if split not in DATASETS[name]:
        raise ValueError(
            f"split: {name} has no split {split!r} (it has {', '.join(DATASETS[name])})"
        )
    if limit is not None and limit <= 0:
        raise ValueError(f"limit: must be positive, got {limit}")
    if name == "digits":
        data = digits(split)
        return data.subset(limit_per_class(data.labels.numpy(), limit, seed)) if limit else data
    if name == "synthetic":
        data = synthetic(
            split, n=n, num_classes=num_classes or 10, size=image_size or 32, seed=seed
        )
        return data.subset(limit_per_class(data.labels.numpy(), limit, seed)) if limit else data
    size = image_size or 32
    if name.startswith("cifar"):
        return _load_cifar(name, _root(name, root), split, download, limit, size, workers, seed)
    return _load_imagefolder(_root(name, root), split, limit, size, workers, seed)


def _root(name: str, root: str | os.PathLike | None) -> Path:
    if root is not None:
        return Path(root).expanduser()
    return data_home() / name.split("-")[0]
