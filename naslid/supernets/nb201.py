"""The NAS-Bench-201 network with every candidate operation on every edge.

One class serves as the one-shot supernet, as a sub-supernet (a mask) and as the standalone
network of one cell (a mask with one option per edge): the mask given at construction says
which candidate modules exist; the choice given to ``forward`` says which of them run.

- ``net(x, arch)`` runs one path (single-path / SPOS training, evaluation).
- ``net(x, mask)`` makes each edge output the *sum* of its enabled operations (NAS-LID,
  section 3.2, Eq. 4); ``none`` contributes zeros.
- ``net(x, choice, return_features=True)`` also returns the output of every cell and both
  reduction blocks (3N + 2 tensors), the layers whose LID NAS-LID profiles.
- ``net.export(arch)`` is the standalone network of one cell with the supernet's weights.

Layout (Dong & Yang 2020, Fig. 1): 3x3 conv stem; three stages of N cells at C, 2C, 4C
channels separated by residual reduction blocks; BN-ReLU, global average pool, linear head.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from naslid.spaces.base import Arch, Mask
from naslid.spaces.nb201 import CELLS_PER_STAGE, CHANNELS, EDGES, NUM_NODES, OPS, SPACE
from naslid.supernets.base import MaskedSupernet, SupernetOptions


class ReLUConvBN(nn.Sequential):
    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, affine: bool = True):
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_out, kernel, stride, padding=kernel // 2, bias=False),
            nn.BatchNorm2d(c_out, affine=affine),
        )


def make_op(name: str, channels: int, affine: bool) -> nn.Module:
    """The module of one candidate operation (``none`` has none: it is never run)."""
    if name == "skip_connect":
        return nn.Identity()
    if name == "nor_conv_1x1":
        return ReLUConvBN(channels, channels, 1, 1, affine)
    if name == "nor_conv_3x3":
        return ReLUConvBN(channels, channels, 3, 1, affine)
    if name == "avg_pool_3x3":
        return nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)
    raise ValueError(f"op: no module for {name!r}")


class Cell(nn.Module):
    """A NAS-Bench-201 cell whose edges hold the candidate operations allowed by ``mask``."""

    def __init__(self, channels: int, mask: Mask, affine: bool):
        super().__init__()
        self.edges = nn.ModuleList(
            nn.ModuleDict(
                {OPS[o]: make_op(OPS[o], channels, affine) for o in allowed if OPS[o] != "none"}
            )
            for allowed in mask
        )

    def forward(self, x: Tensor, selection: Sequence[Sequence[int]]) -> Tensor:
        nodes: list[Tensor | None] = [x]
        for dst in range(1, NUM_NODES):
            acc: Tensor | None = None
            for e, (to, src) in enumerate(EDGES):
                if to != dst:
                    continue
                for o in selection[e]:
                    if o == 0:  # none: contributes zeros
                        continue
                    inp = nodes[src]
                    if inp is None:
                        if OPS[o] in ("skip_connect", "avg_pool_3x3"):
                            continue  # identity / pooling of zeros is zeros
                        inp = torch.zeros_like(x)
                    out = self.edges[e][OPS[o]](inp)
                    acc = out if acc is None else acc + out
            nodes.append(acc)
        return nodes[-1] if nodes[-1] is not None else torch.zeros_like(x)


class ResidualReduction(nn.Module):
    """NAS-Bench-201's ResNet basic block with stride 2 between stages."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.conv_a = ReLUConvBN(c_in, c_out, 3, 2)
        self.conv_b = ReLUConvBN(c_out, c_out, 3, 1)
        self.shortcut = nn.Sequential(nn.AvgPool2d(2, 2), nn.Conv2d(c_in, c_out, 1, bias=False))

    def forward(self, x: Tensor) -> Tensor:
        return self.conv_b(self.conv_a(x)) + self.shortcut(x)


@dataclass(frozen=True)
class Options(SupernetOptions):
    """The NAS-Bench-201 network a profile chooses (the paper's by default)."""

    # the bounds keep a typo (--N 1000000) from building for hours: NAS-Bench-201's network
    # is C=16, N=5; 64 cells per stage and 1024 channels are far beyond any use of the space
    C: int = field(
        default=CHANNELS, metadata={"help": "channels of the first stage", "range": (1, 1024)}
    )
    N: int = field(default=CELLS_PER_STAGE, metadata={"help": "cells per stage", "range": (1, 64)})


class Supernet(MaskedSupernet):
    """The NAS-Bench-201 supernet (C=16, N=5 in the paper), restricted to ``mask`` if given."""

    space = SPACE
    slot_name = "edge"
    Options = Options

    def __init__(
        self,
        C: int = CHANNELS,
        N: int = CELLS_PER_STAGE,
        num_classes: int = 10,
        mask: Mask | None = None,
        affine: bool = False,
    ):
        super().__init__(Options(C, N), num_classes, mask, affine)
        self.stem = nn.Sequential(nn.Conv2d(3, C, 3, padding=1, bias=False), nn.BatchNorm2d(C))
        layers: list[nn.Module] = []
        for stage, width in enumerate((C, 2 * C, 4 * C)):
            if stage:
                layers.append(ResidualReduction(width // 2, width))
            layers.extend(Cell(width, self.mask, affine) for _ in range(N))
        self.layers = nn.ModuleList(layers)
        self.head = nn.Sequential(nn.BatchNorm2d(4 * C), nn.ReLU(inplace=False))
        self.classifier = nn.Linear(4 * C, num_classes)

    def _blocks(self, x: Tensor, sel: Mask) -> Iterator[Tensor]:
        """Each cell's and reduction block's output: 3N + 2 feature maps."""
        out = self.stem(x)
        for layer in self.layers:
            out = layer(out, sel) if isinstance(layer, Cell) else layer(out)
            yield out

    def _logits(self, out: Tensor) -> Tensor:
        return self.classifier(self.head(out).mean(dim=(2, 3)))

    def candidates(self, edge: int) -> Iterator[nn.Module]:
        """``edge``'s candidate operations, in every cell."""
        for layer in self.layers:
            if isinstance(layer, Cell):
                yield layer.edges[edge]


# --------------------------------------------------------------- at ImageNet input
NOT_TRANSFERRED = ("stem.",)
"""Parameter prefixes that :func:`imagenet_network` does not share with a supernet: the
ImageNet stem replaces the CIFAR one."""


def imagenet_stem(C: int) -> nn.Sequential:
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


def imagenet_channels(width_mult: float) -> int:
    """C = the paper's channels (16) x width, even (the stem halves it), at least 2."""
    return max(2, 2 * round(CHANNELS / 2 * width_mult))


def supernet_width(config: dict) -> float | None:
    """The width multiplier of a supernet ``config()`` (C / the paper's 16), None if it
    names no C."""
    return float(config["C"]) / CHANNELS if "C" in config else None


def imagenet_network(
    arch: Arch, num_classes: int, width_mult: float = 1.0, dropout: float = 0.0
) -> Supernet:
    """The standalone network of ``arch`` for 224x224 input (NAS-LID section 4, Table 4).

    The NAS-Bench-201 network (C = 16 x width, the paper's N) has only a stride-1 3x3 stem
    for 32x32 inputs, and NAS-Bench-201 defines no 224x224 variant (its ImageNet16-120 set
    is 16x16). Its stem is replaced by DARTS's ImageNet stem (Liu et al. 2019,
    ``NetworkImageNet``), so the three cell stages run at 28, 14 and 7 pixels, as mobile
    networks do. The network has no dropout: ``dropout`` is accepted for the common signature
    and ignored.
    """
    C = imagenet_channels(width_mult)
    net = Supernet(C=C, num_classes=num_classes, mask=SPACE.arch_mask(arch), affine=True)
    net.stem = imagenet_stem(C)
    return net
