"""The data sets that need no files: scikit-learn's ``digits`` and ``synthetic`` images."""

from __future__ import annotations

import functools

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from naslid.data.images import DATASETS, SPLIT_SEED, SYNTHETIC_MEAN, SYNTHETIC_STD, ImageData


# ------------------------------------------------------------------------------ digits
@functools.lru_cache(maxsize=1)
def _digits_all() -> tuple[Tensor, Tensor, dict[str, np.ndarray], tuple, tuple]:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = torch.from_numpy(bunch.images).float().mul(255.0 / 16.0).unsqueeze(1)
    x = F.interpolate(x, size=(32, 32), mode="bilinear", align_corners=False)
    images = x.round().clamp(0, 255).to(torch.uint8).expand(-1, 3, -1, -1).contiguous()
    labels = torch.from_numpy(bunch.target.astype(np.int64))
    perm = np.random.default_rng(SPLIT_SEED).permutation(len(labels))
    n_train, n_valid = round(0.6 * len(perm)), round(0.2 * len(perm))
    parts = {
        "train": np.sort(perm[:n_train]),
        "valid": np.sort(perm[n_train : n_train + n_valid]),
        "test": np.sort(perm[n_train + n_valid :]),
    }
    train = images[torch.from_numpy(parts["train"])].float() / 255.0
    mean = tuple(float(v) for v in train.mean(dim=(0, 2, 3)))
    std = tuple(float(v) for v in train.std(dim=(0, 2, 3)))
    return images, labels, parts, mean, std


def digits(split: str = "train") -> ImageData:
    """scikit-learn's digits at 32x32x3; 60/20/20 % train/valid/test of a fixed permutation.

    The mean/std are those of the training split (all three channels are equal).
    """
    if split not in DATASETS["digits"]:
        raise ValueError(f"split: digits has no split {split!r} (it has train, valid, test)")
    images, labels, parts, mean, std = _digits_all()
    idx = torch.from_numpy(parts[split])
    return ImageData(
        images[idx], labels[idx], tuple(str(c) for c in range(10)), mean, std, "digits", split
    )


# ------------------------------------------------------------------------------ synthetic
_SYNTHETIC_SIZES = {"train": 512, "valid": 128, "test": 128}


def synthetic(
    split: str = "train", n: int | None = None, num_classes: int = 10, size: int = 32, seed: int = 0
) -> ImageData:
    """Deterministic images whose class decides their colour and a coarse 4x4 pattern.

    Each class has a prototype (half a random colour, half a random 4x4 pattern upsampled to
    ``size``); an image is its class prototype plus Gaussian noise (sigma 24 of 255). The
    splits share the prototypes and draw independent noise and labels.
    """
    if split not in _SYNTHETIC_SIZES:
        raise ValueError(f"split: synthetic has no split {split!r} (it has train, valid, test)")
    n = _SYNTHETIC_SIZES[split] if n is None else int(n)
    if n <= 0 or num_classes < 2 or size < 4:
        raise ValueError(
            f"synthetic: need n > 0, num_classes >= 2, size >= 4 (got {n}, {num_classes}, {size})"
        )
    proto_rng = np.random.default_rng([seed, 0])
    colours = proto_rng.uniform(40, 215, size=(num_classes, 3, 1, 1)).astype(np.float32)
    coarse = torch.from_numpy(
        proto_rng.uniform(0, 255, size=(num_classes, 3, 4, 4)).astype(np.float32)
    )
    pattern = F.interpolate(coarse, size=(size, size), mode="bilinear", align_corners=False).numpy()
    protos = 0.5 * colours + 0.5 * pattern
    rng = np.random.default_rng([seed, 1 + ("train", "valid", "test").index(split)])
    labels = rng.permutation(np.arange(n) % num_classes)
    images = np.empty((n, 3, size, size), dtype=np.uint8)
    for start in range(0, n, 4096):  # chunks keep the float noise small for large n
        stop = min(n, start + 4096)
        noise = rng.standard_normal((stop - start, 3, size, size), dtype=np.float32) * 24.0
        images[start:stop] = np.clip(np.rint(protos[labels[start:stop]] + noise), 0, 255)
    return ImageData(
        torch.from_numpy(images),
        torch.from_numpy(labels.astype(np.int64)),
        tuple(f"class{c}" for c in range(num_classes)),
        SYNTHETIC_MEAN,
        SYNTHETIC_STD,
        "synthetic",
        split,
    )
