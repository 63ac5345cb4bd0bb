"""The deployed network: a ``torch.export`` program (normalisation built in), loadable
without naslid, and its cost (multiply-adds, parameters)."""

from __future__ import annotations

import copy
import os
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import Tensor, nn
from torch.utils.flop_counter import FlopCounterMode

from naslid.data import IMAGENET_MEAN, IMAGENET_STD


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
