"""Shuffled, augmented, normalised batches of one :class:`ImageData` on one device."""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch
from torch import Tensor

from naslid.data.augment import normalize, random_crop_flip
from naslid.data.images import ImageData


class BatchIterator:
    """Batches of one ImageData on one device; each ``iter()`` is one epoch.

    The images are copied to ``device`` once (uint8); every batch is gathered, augmented
    (random crop with 4-pixel padding + horizontal flip) and normalised there. Shuffling and
    augmentation draw from ``self.generator`` (seeded with ``seed``), which ``state_dict`` /
    ``load_state_dict`` save and restore, so a resumed run sees the same batches.
    """

    def __init__(
        self,
        data: ImageData,
        batch_size: int,
        *,
        shuffle: bool = False,
        augment: bool = False,
        device: str | torch.device = "cpu",
        drop_last: bool = False,
        channels_last: bool = False,
        seed: int = 0,
        pad: int = 4,
    ):
        if batch_size <= 0:
            raise ValueError(f"batch_size: must be positive, got {batch_size}")
        if len(data) == 0:
            raise ValueError(f"{data.name or 'data'} {data.split}: no images")
        if drop_last and len(data) < batch_size:
            raise ValueError(
                f"batch_size: {batch_size} is larger than the {len(data)} images of "
                f"{data.name or 'the data'} {data.split} (drop_last would leave no batch)"
            )
        self.data, self.batch_size = data, batch_size
        self.shuffle, self.augment, self.drop_last = shuffle, augment, drop_last
        self.channels_last, self.pad, self.seed = channels_last, pad, seed
        self.device = torch.device(device)
        self.images = data.images.to(self.device)
        self.labels = data.labels.to(self.device)
        self.mean = torch.tensor(data.mean, dtype=torch.float32, device=self.device).view(
            1, 3, 1, 1
        )
        self.std = torch.tensor(data.std, dtype=torch.float32, device=self.device).view(1, 3, 1, 1)
        self.generator = torch.Generator(device=self.device)
        self.generator.manual_seed(seed)

    def __len__(self) -> int:
        n = len(self.data)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        n = len(self.data)
        if self.shuffle:
            order = torch.randperm(n, generator=self.generator, device=self.device)
        else:
            order = torch.arange(n, device=self.device)
        for b in range(len(self)):
            idx = order[b * self.batch_size : (b + 1) * self.batch_size]
            x = self.images[idx]
            if self.augment:
                x = random_crop_flip(x, self.generator, self.pad)
            x = normalize(x, self.mean, self.std)
            if self.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            yield x, self.labels[idx]

    def state_dict(self) -> dict:
        return {
            "generator": self.generator.get_state(),
            "device": self.device.type,
            "seed": self.seed,
        }

    def load_state_dict(self, state: dict) -> None:
        """Restore the generator; a state saved on another device type cannot be, and says so."""
        if state.get("device") != self.device.type:
            raise ValueError(
                f"data generator: state saved on {state.get('device')!r}, this run uses "
                f"{self.device.type!r}"
            )
        self.generator.set_state(state["generator"].cpu())
