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

import torch
from torch import Tensor, nn

from naslid.spaces.base import Arch, Mask
from naslid.spaces.nb201 import EDGES, NUM_NODES, OPS, SPACE

Choice = Arch | Mask


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


class Supernet(nn.Module):
    """The NAS-Bench-201 supernet (C=16, N=5 in the paper), restricted to ``mask`` if given."""

    space = SPACE

    def __init__(
        self,
        C: int = 16,
        N: int = 5,
        num_classes: int = 10,
        mask: Mask | None = None,
        affine: bool = False,
    ):
        super().__init__()
        self.C, self.N, self.num_classes, self.affine = C, N, num_classes, affine
        self.mask: Mask = SPACE.full_mask() if mask is None else SPACE.check_mask(mask)
        self.stem = nn.Sequential(nn.Conv2d(3, C, 3, padding=1, bias=False), nn.BatchNorm2d(C))
        layers: list[nn.Module] = []
        for stage, width in enumerate((C, 2 * C, 4 * C)):
            if stage:
                layers.append(ResidualReduction(width // 2, width))
            layers.extend(Cell(width, self.mask, affine) for _ in range(N))
        self.layers = nn.ModuleList(layers)
        self.head = nn.Sequential(nn.BatchNorm2d(4 * C), nn.ReLU(inplace=False))
        self.classifier = nn.Linear(4 * C, num_classes)

    @property
    def num_layers(self) -> int:
        """Cells plus reduction blocks: the length of the feature list (3N + 2)."""
        return len(self.layers)

    def config(self) -> dict:
        return {
            "space": SPACE.name,
            "C": self.C,
            "N": self.N,
            "num_classes": self.num_classes,
            "affine": self.affine,
            "mask": SPACE.mask_to_json(self.mask),
        }

    def selection(self, choice: Choice | None) -> Mask:
        """Per edge, the option indices that run for ``choice`` (an Arch or a Mask)."""
        if choice is None:
            return self.mask
        sel = SPACE.arch_mask(choice) if isinstance(choice, Arch) else SPACE.check_mask(choice)
        for e, (ops, allowed) in enumerate(zip(sel, self.mask)):
            missing = set(ops) - set(allowed)
            if missing:
                raise ValueError(
                    f"choice: edge {e} asks for {[OPS[o] for o in sorted(missing)]}, "
                    f"which this network does not hold (it holds {[OPS[o] for o in allowed]})"
                )
        return sel

    def forward(
        self, x: Tensor, choice: Choice | None = None, return_features: bool = False
    ) -> Tensor | tuple[Tensor, list[Tensor]]:
        sel = self.selection(choice)
        out = self.stem(x)
        feats = []
        for layer in self.layers:
            out = layer(out, sel) if isinstance(layer, Cell) else layer(out)
            if return_features:
                feats.append(out)
        logits = self.classifier(self.head(out).mean(dim=(2, 3)))
        return (logits, feats) if return_features else logits

    def iter_features(self, x: Tensor, choice: Choice | None = None) -> Iterator[Tensor]:
        """Yield each layer's output in turn, so a consumer can drop it before the next."""
        sel = self.selection(choice)
        out = self.stem(x)
        for layer in self.layers:
            out = layer(out, sel) if isinstance(layer, Cell) else layer(out)
            yield out

    def candidate_parameters(self, edge: int) -> Iterator[nn.Parameter]:
        """The parameters of ``edge``'s candidate operations, in every cell."""
        for layer in self.layers:
            if isinstance(layer, Cell):
                yield from layer.edges[edge].parameters()

    def shared_parameters(self, edge: int) -> list[nn.Parameter]:
        """Every parameter that does not belong to a candidate operation of ``edge``."""
        own = {id(p) for p in self.candidate_parameters(edge)}
        return [p for p in self.parameters() if id(p) not in own]

    def restrict(self, mask: Mask) -> Supernet:
        """A network holding only ``mask``'s candidates, with this network's weights."""
        net = Supernet(self.C, self.N, self.num_classes, mask, self.affine)
        own = self.state_dict()
        net.load_state_dict({k: own[k] for k in net.state_dict()})
        return net.to(next(self.parameters()).device)

    def export(self, arch: Arch) -> Supernet:
        """The standalone network of ``arch`` with this supernet's weights."""
        return self.restrict(SPACE.arch_mask(arch))


def build(config: dict) -> Supernet:
    """A supernet from the ``config()`` of another (as stored in a checkpoint's meta)."""
    if config.get("space", SPACE.name) != SPACE.name:
        raise ValueError(
            f"supernet config: space is {config.get('space')!r}, expected {SPACE.name!r}"
        )
    mask = SPACE.mask_from_json(config["mask"]) if "mask" in config else None
    return Supernet(
        config["C"], config["N"], config["num_classes"], mask, config.get("affine", False)
    )
