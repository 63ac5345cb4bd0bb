"""The OFA MobileNetV3 network with every candidate MBConv on every layer slot.

Same contract as :mod:`naslid.supernets.mobilenet`: one class is the one-shot supernet, a
sub-supernet (a mask) and the standalone network of one arch.

**Weight sharing: a plain per-choice supernet.** Each (kernel, expansion) candidate of a
layer has its own weights, as in the ProxylessNAS supernet; OFA's nested sharing (a 7x7
kernel whose centre, through learned transformation matrices, gives the 5x5 and 3x3 ones;
expansions that take the first channels after sorting them by importance; the progressive
shrinking schedule: Cai et al. 2020, "elastic kernel size", "elastic width", "progressive
shrinking") is *not* used, although NAS-LID's public code builds its OFA network from
hyperbox's elastic layers (one ``MBConvLayer`` per block, kernel size and expansion as value
choices). Why: the paper (section 4) says nothing of how its OFA supernet shares weights, and
its method compares a layer's candidates as separate
operations (Eq. 4 sums them, section 3.2 profiles each one's output): with nested weights the
two groups of a split would start from, and keep fine-tuning, copies of one tensor, which is
what few-shot splitting is meant to undo. The depth is shared the OFA way: a unit's layers are
the same modules at every depth, a shallower network is a prefix.

- ``net(x, arch)`` runs one path; the arch is read as its network (``SPACE.canonical``): a
  unit stops at its first ``skip``, later layers do not run (their feature map is the unit's
  output carried on).
- ``net(x, mask)``: each layer's output is ``x + sum_c op_c(x)`` (non-first layers; ``skip``
  adds zero) or ``sum_c op_c(x)`` (first layers), NAS-LID Eq. 4; a layer whose selection is
  ``skip`` alone ends its unit, as in a path.
- ``return_features=True`` returns the fixed block's output and the 20 layer slots' outputs
  (21 maps; a dropped layer's map is its input), the layers NAS-LID profiles.

BatchNorm as in the other supernets: non-affine in the candidates unless ``affine=True``; the
stem, the fixed block and the head affine; all track running statistics.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from torch import Tensor, nn

from naslid.spaces.base import Arch, Mask, SlotSpace
from naslid.spaces.ofa import (
    FEATURE_MIX_CHANNELS,
    FINAL_EXPAND_CHANNELS,
    FIRST_BLOCK_CHANNELS,
    IMAGENET,
    MAX_DEPTH,
    NUM_UNITS,
    OP_SPEC,
    SKIP,
    SKIP_INDEX,
    SLOT_OPTIONS,
    SPACE,
    STEM_CHANNELS,
    STEMS,
    LayerSpec,
    NetConfig,
    layer_plan,
    se_channels,
    unit_slots,
)
from naslid.supernets.base import Choice, MaskedSupernet, SupernetOptions

ACTIVATIONS = {"relu": nn.ReLU, "h_swish": nn.Hardswish}


def conv_bn(
    c_in: int,
    c_out: int,
    kernel: int,
    stride: int = 1,
    groups: int = 1,
    act: str | None = "relu",
    affine: bool = True,
) -> list[nn.Module]:
    mods: list[nn.Module] = [
        nn.Conv2d(c_in, c_out, kernel, stride, kernel // 2, groups=groups, bias=False),
        nn.BatchNorm2d(c_out, affine=affine),
    ]
    return mods + [ACTIVATIONS[act](inplace=True)] if act else mods


class SqueezeExcite(nn.Module):
    """OFA's ``SEModule``: pool, 1x1 reduce (bias), ReLU, 1x1 expand (bias), h-sigmoid, scale."""

    def __init__(self, channels: int):
        super().__init__()
        mid = se_channels(channels)
        self.reduce = nn.Conv2d(channels, mid, 1)
        self.expand = nn.Conv2d(mid, channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        s = self.expand(self.reduce(x.mean(dim=(2, 3), keepdim=True)).relu())
        return x * nn.functional.hardsigmoid(s)


class MBConv(nn.Module):
    """Inverted residual body (no residual here): 1x1 expand, kxk depthwise, SE, 1x1 project."""

    def __init__(self, spec: LayerSpec, kernel: int, expand: int, affine: bool = True):
        super().__init__()
        mid = spec.c_in * expand
        self.expand = nn.Sequential(*conv_bn(spec.c_in, mid, 1, act=spec.act, affine=affine))
        self.depthwise = nn.Sequential(
            *conv_bn(mid, mid, kernel, spec.stride, groups=mid, act=spec.act, affine=affine)
        )
        self.se = SqueezeExcite(mid) if spec.se else nn.Identity()
        self.project = nn.Sequential(*conv_bn(mid, spec.c_out, 1, act=None, affine=affine))

    def forward(self, x: Tensor) -> Tensor:
        return self.project(self.se(self.depthwise(self.expand(x))))


class OFALayer(nn.Module):
    """One layer slot holding the candidates of ``allowed`` (indices into its options)."""

    def __init__(
        self, spec: LayerSpec, options: Sequence[str], allowed: Sequence[int], affine: bool
    ):
        super().__init__()
        self.options, self.residual = tuple(options), spec.residual
        self.candidates = nn.ModuleDict()
        for o in allowed:
            if self.options[o] != SKIP:
                expand, kernel = OP_SPEC[self.options[o]]
                self.candidates[self.options[o]] = MBConv(spec, kernel, expand, affine)

    def forward(self, x: Tensor, selected: Sequence[int]) -> Tensor:
        out: Tensor | None = None
        for o in selected:
            if self.options[o] != SKIP:  # skip: the zero operation
                y = self.candidates[self.options[o]](x)
                out = y if out is None else out + y
        if self.residual:
            return x if out is None else out + x
        if out is None:  # cannot happen: first layers have no skip option
            raise ValueError("choice: a layer without residual selected no operation")
        return out


@dataclass(frozen=True)
class Options(SupernetOptions):
    """The OFA network a profile chooses (OFA's ImageNet one, width 1.0, by default)."""

    width_mult: float = field(
        default=IMAGENET.width_mult, metadata={"help": "channel width multiplier"}
    )
    stem: str = field(
        default=IMAGENET.stem, metadata={"help": f"input stem, one of {', '.join(STEMS)}"}
    )
    dropout: float = field(default=0.0, metadata={"help": "dropout before the classifier"})


class Supernet(MaskedSupernet):
    """The OFA MobileNetV3 supernet, restricted to ``mask``."""

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
        c0, c1 = cfg.width(STEM_CHANNELS), cfg.width(FIRST_BLOCK_CHANNELS)
        self.stem = nn.Sequential(*conv_bn(3, c0, 3, cfg.stem_stride, act="h_swish"))
        self.first = nn.Sequential(
            *conv_bn(c0, c0, 3, groups=c0, act="relu"), *conv_bn(c0, c1, 1, act=None)
        )
        plan = layer_plan(cfg)
        self.layers = nn.ModuleList(
            OFALayer(spec, SLOT_OPTIONS[i], self.mask[i], affine) for i, spec in enumerate(plan)
        )
        c_fe, c_mix = cfg.width(FINAL_EXPAND_CHANNELS), cfg.width(FEATURE_MIX_CHANNELS)
        self.final_expand = nn.Sequential(*conv_bn(plan[-1].c_out, c_fe, 1, act="h_swish"))
        self.feature_mix = nn.Sequential(nn.Conv2d(c_fe, c_mix, 1, bias=False), nn.Hardswish())
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(c_mix, num_classes)

    @property
    def num_layers(self) -> int:
        return 1 + len(self.layers)

    def selection(self, choice: Choice | None) -> Mask:
        """As :meth:`MaskedSupernet.selection`, an arch read as its network, and a layer
        after its unit's first skip idle.

        Idle layers do not run, so what they select does not matter: a sub-supernet split on
        a unit's fourth layer holds no skip there in one child, whose third layer's skip is
        then an option no network of the child has -- yet profiling that layer runs it (the
        unit ending at the third layer, as in the parent). The idle layer takes an option the
        network holds instead of failing; every layer that runs must select held options."""
        if choice is None:
            return self.mask
        if isinstance(choice, Arch):
            sel = [(op,) for op in self.space.canonical(choice).ops]
        else:  # per-slot validity only: a profiled choice may hold no whole network
            sel = [tuple(ops) for ops in SlotSpace.check_mask(self.space, choice)]
        for u in range(NUM_UNITS):
            ended = False
            for slot in unit_slots(u):
                if ended and not set(sel[slot]) <= set(self.mask[slot]):
                    sel[slot] = (self.mask[slot][0],)
                ended = ended or sel[slot] == (SKIP_INDEX,)
        return self.check_held(tuple(sel))

    def _blocks(self, x: Tensor, sel: Mask) -> Iterator[Tensor]:
        """The fixed block, then the 20 layer slots; a unit ends at a layer selecting only
        ``skip``."""
        out = self.stem(x)
        out = out + self.first(out)
        yield out
        ended = False
        for slot, (layer, selected) in enumerate(zip(self.layers, sel)):
            if slot % MAX_DEPTH == 0:
                ended = False
            ended = ended or tuple(selected) == (SKIP_INDEX,)
            if not ended:
                out = layer(out, selected)
            yield out

    def _logits(self, out: Tensor) -> Tensor:
        pooled = self.final_expand(out).mean(dim=(2, 3), keepdim=True)
        return self.classifier(self.dropout(self.feature_mix(pooled).flatten(1)))

    def candidates(self, layer: int) -> Iterator[nn.Module]:
        """Layer slot ``layer``'s candidate operations."""
        yield self.layers[layer].candidates


# --------------------------------------------------------------- at ImageNet input
NOT_TRANSFERRED: tuple[str, ...] = ()
"""Parameter prefixes :func:`imagenet_network` does not share with a supernet: none (the stem
is one 3x3 conv whatever its stride)."""


def supernet_width(config: dict) -> float | None:
    """The width multiplier of a supernet ``config()``, None if it names none."""
    return float(config["width_mult"]) if "width_mult" in config else None


def imagenet_network(
    arch: Arch, num_classes: int, width_mult: float = 1.0, dropout: float = 0.0
) -> Supernet:
    """The standalone OFA network of ``arch`` with the ImageNet stem (stride-2 first conv,
    7x7 before pooling), affine BatchNorm, ``dropout`` before the classifier."""
    return Supernet(
        width_mult,
        num_classes,
        SPACE.arch_mask(SPACE.canonical(arch)),
        affine=True,
        stem="imagenet",
        dropout=dropout,
    )
