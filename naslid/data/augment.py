"""Augmentation and normalisation of uint8 image batches on their device."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def crop_flip(x: Tensor, dy: Tensor, dx: Tensor, flip: Tensor, pad: int = 4) -> Tensor:
    """Per image: zero-pad by ``pad``, crop at offset (dy, dx), mirror where ``flip``.

    One gather for the whole batch (``x`` [n, c, h, w], any dtype; offsets in 0..2*pad).
    Equals torchvision's RandomCrop(padding=pad) followed by RandomHorizontalFlip.
    """
    n, c, h, w = x.shape
    padded = F.pad(x, (pad, pad, pad, pad)) if pad else x
    dev = x.device
    rows = dy.to(dev, torch.long)[:, None] + torch.arange(h, device=dev)[None]
    cols = torch.arange(w, device=dev)[None].expand(n, w)
    cols = (
        torch.where(flip.to(dev, torch.bool)[:, None], w - 1 - cols, cols)
        + dx.to(dev, torch.long)[:, None]
    )
    b = torch.arange(n, device=dev)[:, None, None, None]
    ch = torch.arange(c, device=dev)[None, :, None, None]
    return padded[b, ch, rows[:, None, :, None], cols[:, None, None, :]]


def random_crop_flip(x: Tensor, generator: torch.Generator, pad: int = 4) -> Tensor:
    """Random crop with ``pad``-pixel zero padding and horizontal flip, drawn from ``generator``."""
    n = x.shape[0]
    draws = torch.randint(0, 2 * pad + 1, (2, n), generator=generator, device=generator.device)
    flip = torch.randint(0, 2, (n,), generator=generator, device=generator.device).bool()
    return crop_flip(x, draws[0], draws[1], flip, pad)


def normalize(x: Tensor, mean: Tensor, std: Tensor) -> Tensor:
    """uint8 images to float, ``(x / 255 - mean) / std`` per channel (``mean``, ``std`` [1, 3, 1, 1])."""
    return (x.float() / 255.0 - mean) / std
