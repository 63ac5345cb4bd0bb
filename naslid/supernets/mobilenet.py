"""The ProxylessNAS mobile network with every candidate MBConv on every searchable layer.

Same contract as :mod:`naslid.supernets.nb201`: one class is the one-shot supernet, a
sub-supernet (a mask) and the standalone network of one arch (a mask with one option per
layer); the mask given at construction says which candidate modules exist, the choice given
to ``forward`` says which of them run. Each candidate has its own weights (ProxylessNAS's
``MixedEdge``; no kernel or channel sharing between candidates).

- ``net(x, arch)`` runs one path (single-path / SPOS training, evaluation).
- ``net(x, mask)`` makes each layer's operation the *sum* of its enabled candidates
  (NAS-LID section 3.2, Eq. 4). ``skip`` is ProxylessNAS's zero operation: it contributes
  zeros to that sum. The identity residual is added once, outside the sum, on every layer that
  is not the first of its stage: ``y = x + sum_c op_c(x)``. So a layer whose choice is ``skip``
  alone outputs ``x`` (the residual carries the input), and ``{mb3k3, skip}`` outputs
  ``x + mb3k3(x)``, the same as ``{mb3k3}``. First layers of a stage have neither residual nor
  skip: ``y = sum_c op_c(x)``.
- ``net(x, choice, return_features=True)`` also returns the output of every block (the fixed
  MBConv1 block and the 21 searchable layers: 22 tensors), the layers NAS-LID profiles.
- ``net.export(arch)`` is the standalone network of one arch with the supernet's weights.

BatchNorm as in the NB201 supernet: the candidates' BatchNorms are non-affine in the supernet
unless ``affine=True`` (a non-affine BN equals an affine one with weight 1 and bias 0, so a
standalone network with ``affine=True`` can start from those weights); the stem, the fixed
block and the head have affine BatchNorms; all track running statistics.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from torch import Tensor, nn

from naslid.spaces.base import Arch, Mask
from naslid.spaces.mobilenet import (
    IMAGENET,
    OP_SPEC,
    SKIP,
    SLOT_OPTIONS,
    SPACE,
    STEMS,
    LayerSpec,
    NetConfig,
    layer_plan,
)
from naslid.supernets.base import MaskedSupernet, SupernetOptions


def conv_bn(
    c_in: int,
    c_out: int,
    kernel: int,
    stride: int = 1,
    groups: int = 1,
    act: bool = True,
    affine: bool = True,
) -> list[nn.Module]:
    mods: list[nn.Module] = [
        nn.Conv2d(c_in, c_out, kernel, stride, kernel // 2, groups=groups, bias=False),
        nn.BatchNorm2d(c_out, affine=affine),
    ]
    return mods + [nn.ReLU6(inplace=True)] if act else mods


class MBConv(nn.Module):
    """Inverted residual body (no residual here): 1x1 expand, kxk depthwise, 1x1 project."""

    def __init__(
        self, c_in: int, c_out: int, kernel: int, expand: int, stride: int, affine: bool = True
    ):
        super().__init__()
        mid = c_in * expand
        self.expand = nn.Sequential(*conv_bn(c_in, mid, 1, affine=affine)) if expand != 1 else None
        self.depthwise = nn.Sequential(
            *conv_bn(mid, mid, kernel, stride, groups=mid, affine=affine)
        )
        self.project = nn.Sequential(*conv_bn(mid, c_out, 1, act=False, affine=affine))

    def forward(self, x: Tensor) -> Tensor:
        if self.expand is not None:
            x = self.expand(x)
        return self.project(self.depthwise(x))


class MobileLayer(nn.Module):
    """One searchable layer holding the candidates of ``allowed`` (indices into its options)."""

    def __init__(
        self, spec: LayerSpec, options: Sequence[str], allowed: Sequence[int], affine: bool
    ):
        super().__init__()
        self.options = tuple(options)
        self.residual = spec.residual
        self.candidates = nn.ModuleDict()
        for o in allowed:
            name = self.options[o]
            if name != SKIP:
                expand, kernel = OP_SPEC[name]
                self.candidates[name] = MBConv(
                    spec.c_in, spec.c_out, kernel, expand, spec.stride, affine
                )

    def forward(self, x: Tensor, selected: Sequence[int]) -> Tensor:
        out: Tensor | None = None
        for o in selected:
            name = self.options[o]
            if name == SKIP:  # the zero operation
                continue
            y = self.candidates[name](x)
            out = y if out is None else out + y
        if self.residual:
            return x if out is None else out + x
        if out is None:  # cannot happen: first layers of a stage have no skip option
            raise ValueError("choice: a layer without residual selected no operation")
        return out


@dataclass(frozen=True)
class Options(SupernetOptions):
    """The ProxylessNAS network a profile chooses (the paper's ImageNet one by default)."""

    width_mult: float = field(
        default=IMAGENET.width_mult, metadata={"help": "channel width multiplier"}
    )
    stem: str = field(
        default=IMAGENET.stem, metadata={"help": f"input stem, one of {', '.join(STEMS)}"}
    )
    dropout: float = field(default=0.0, metadata={"help": "dropout before the classifier"})


class Supernet(MaskedSupernet):
    """The ProxylessNAS supernet (width 1.0, ImageNet stem in the paper), restricted to ``mask``."""

    space = SPACE
    slot_name = "layer"
    Options = Options

    def __init__(
        self,
        width_mult: float = Options.width_mult,
        num_classes: int = IMAGENET.num_classes,
        mask: Mask | None = None,
        affine: bool = False,
        stem: str = Options.stem,
        dropout: float = Options.dropout,
    ):
        super().__init__(Options(width_mult, stem, dropout), num_classes, mask, affine)
        cfg = NetConfig(width_mult, num_classes, stem)
        c0, c1 = cfg.stem_channels, cfg.first_block_channels
        self.stem = nn.Sequential(*conv_bn(3, c0, 3, cfg.stem_stride))
        plan = layer_plan(cfg)
        layers: list[nn.Module] = [MBConv(c0, c1, 3, 1, 1)]
        layers.extend(
            MobileLayer(spec, SLOT_OPTIONS[i], self.mask[i], affine) for i, spec in enumerate(plan)
        )
        self.layers = nn.ModuleList(layers)
        self.head = nn.Sequential(*conv_bn(plan[-1].c_out, cfg.last_channels, 1))
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(cfg.last_channels, num_classes)

    def _blocks(self, x: Tensor, sel: Mask) -> Iterator[Tensor]:
        """The fixed MBConv1 block, then the 21 searchable layers: 22 feature maps."""
        out = self.layers[0](self.stem(x))
        yield out
        for layer, selected in zip(self.layers[1:], sel):
            out = layer(out, selected)
            yield out

    def _logits(self, out: Tensor) -> Tensor:
        return self.classifier(self.dropout(self.head(out).mean(dim=(2, 3))))

    def candidates(self, layer: int) -> Iterator[nn.Module]:
        """Searchable ``layer``'s candidate operations."""
        yield self.layers[layer + 1].candidates


# --------------------------------------------------------------- at ImageNet input
NOT_TRANSFERRED: tuple[str, ...] = ()
"""Parameter prefixes that :func:`imagenet_network` does not share with a supernet: none,
the supernet already has the ImageNet stem."""


def supernet_width(config: dict) -> float | None:
    """The width multiplier of a supernet ``config()``, None if it names none."""
    return float(config["width_mult"]) if "width_mult" in config else None


def imagenet_network(
    arch: Arch, num_classes: int, width_mult: float = 1.0, dropout: float = 0.0
) -> Supernet:
    """The standalone ProxylessNAS network of ``arch`` with its own ImageNet stem (stride-2
    first conv, 7x7 before pooling), affine BatchNorm, ``dropout`` before the classifier."""
    return Supernet(
        width_mult,
        num_classes,
        SPACE.arch_mask(arch),
        affine=True,
        stem="imagenet",
        dropout=dropout,
    )
