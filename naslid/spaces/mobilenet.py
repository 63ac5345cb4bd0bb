"""The ProxylessNAS mobile block space (Cai, Zhu & Han, ICLR 2019), NAS-LID section 4 / Table 4.

Layout (source: mit-han-lab/proxylessnas, ``search/imagenet_arch_search.py`` defaults
``width_stages=24,40,80,96,192,320``, ``n_cell_stages=4,4,4,4,4,1``,
``stride_stages=2,2,2,1,2,1`` and ``search/models/super_nets/super_proxyless.py``):

- first conv 3x3, 32 channels, stride 2, BN, ReLU6;
- a fixed 3x3 MBConv1 block to 16 channels;
- six stages ``(width, layers, stride)``: (24,4,2) (40,4,2) (80,4,2) (96,4,1) (192,4,2) (320,1,1),
  i.e. **21 searchable layers**; each is an MBConv with kernel {3,5,7} x expansion {3,6}
  (ProxylessNAS ``conv_candidates`` order: 3x3_MBConv3, 3x3_MBConv6, 5x5_MBConv3, ...), and every
  layer that is not the first of its stage may also be ``skip`` (ProxylessNAS ``Zero``);
- feature mix 1x1 conv to 1280 (BN, ReLU6), global average pool, linear classifier.

An MBConv(k, e) from ``c_in`` to ``c_out`` is: 1x1 expansion to ``c_in * e`` (BN, ReLU6), kxk
depthwise conv with the layer's stride (BN, ReLU6), 1x1 projection (BN, no activation). A
non-first layer of a stage adds the identity residual, so ``skip`` (a zero operation) makes
the layer output its input: ``y = x + op(x)`` with ``op = 0``.

**Arch string**: the 21 layer choices joined by ``-``, each ``mb{e}k{k}`` or ``skip``, e.g.
``mb3k5-mb3k3-skip-mb6k3-...``; ``str(Arch.from_str(s)) == s`` for every valid ``s``, and a
string that puts ``skip`` on the first layer of a stage is refused naming the layer.

**Width multiplier**: channel counts are ``make_divisible(c * w, 8)`` as in ProxylessNAS; the
feature-mix width stays 1280 unless ``w > 1``. Where ProxylessNAS decides the residual (and the
Zero candidate) from the channel counts *after* the multiplier, this space fixes them by
position (every non-first layer of a stage, never a first one), so that the same strings and
masks describe the space at every width; the two rules agree at ``w = 1``.

**Input size**: ``stem="imagenet"`` (224x224, total stride 32, 7x7 before pooling) is
ProxylessNAS. ``stem="cifar"`` adapts it to 32x32 inputs the way the common CIFAR MobileNetV2
does (kuangliu/pytorch-cifar ``models/mobilenetv2.py``: "change conv1 stride 2 -> 1" and
"change stride 2 -> 1" of the first stage): the first conv and the first stage's first layer
run at stride 1, total stride 8, 4x4 before pooling.

**Costs** are in closed form: FLOPs are multiply-adds of convolutions and of the classifier's
matrix product (BatchNorm, activations, residual additions, pooling and biases are not counted;
exactly ``torch.utils.flop_counter.FlopCounterMode``'s count / 2), parameters count every conv
weight, affine BatchNorm weight and bias, and the classifier's weight and bias. The defaults are
the ImageNet setting of Table 4 (224x224, 1000 classes, width 1.0).

The OFA elastic space (kernel x expansion x *depth* per unit) is :mod:`naslid.spaces.ofa`:
its depth keeps the first d layers of a unit, so there the layer tuples name networks only in a
canonical form, and sampling, sizes and neighbours are defined on networks.
"""

from __future__ import annotations

from dataclasses import dataclass

from naslid.spaces.base import Arch as _BaseArch
from naslid.spaces.base import SlotSpace, module_api

NAME = "mobilenet"
MB_OPS: tuple[str, ...] = ("mb3k3", "mb6k3", "mb3k5", "mb6k5", "mb3k7", "mb6k7")
"""MBConv candidates in ProxylessNAS's ``conv_candidates`` order (kernel-major)."""
SKIP = "skip"
OPS: tuple[str, ...] = MB_OPS + (SKIP,)
OP_SPEC: dict[str, tuple[int, int]] = {op: (int(op[2]), int(op[4])) for op in MB_OPS}
"""``op -> (expansion, kernel)``."""

STEM_CHANNELS = 32
FIRST_BLOCK_CHANNELS = 16
STAGES: tuple[tuple[int, int, int], ...] = (
    (24, 4, 2),
    (40, 4, 2),
    (80, 4, 2),
    (96, 4, 1),
    (192, 4, 2),
    (320, 1, 1),
)
"""``(width, layers, stride)`` of the six searchable stages (ProxylessNAS)."""
FEATURE_MIX_CHANNELS = 1280
STEMS = ("imagenet", "cifar")

FIRST_OF_STAGE: tuple[bool, ...] = tuple(i == 0 for _, n, _ in STAGES for i in range(n))
NUM_LAYERS = len(FIRST_OF_STAGE)  # 21
SLOT_OPTIONS: tuple[tuple[str, ...], ...] = tuple(
    MB_OPS if first else OPS for first in FIRST_OF_STAGE
)


class Arch(_BaseArch):
    """One choice per searchable layer: ``ops[i]`` indexes ``SLOT_OPTIONS[i]`` (skip is 6)."""

    def __str__(self) -> str:
        return "-".join(SLOT_OPTIONS[i][o] for i, o in enumerate(self.ops))

    @classmethod
    def from_str(cls, text: str) -> Arch:
        text = text.strip()
        tokens = text.split("-")
        if len(tokens) != NUM_LAYERS:
            raise ValueError(
                f"arch string {text!r}: expected {NUM_LAYERS} '-'-separated layers, got {len(tokens)}"
            )
        ops = []
        for layer, token in enumerate(tokens):
            if token not in SLOT_OPTIONS[layer]:
                why = (
                    "skip is not allowed on the first layer of a stage"
                    if token == SKIP
                    else f"expected one of {OPS}"
                )
                raise ValueError(f"arch string {text!r}: layer {layer} is {token!r} ({why})")
            ops.append(SLOT_OPTIONS[layer].index(token))
        return cls(tuple(ops))

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(SLOT_OPTIONS[i][o] for i, o in enumerate(self.ops))


# ------------------------------------------------------------ network plan
def make_divisible(v: float, divisor: int = 8) -> int:
    """ProxylessNAS / MobileNet channel rounding: nearest multiple, never below 90 % of ``v``."""
    new_v = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new_v + divisor if new_v < 0.9 * v else new_v


@dataclass(frozen=True)
class NetConfig:
    """The fixed part of a network of this space (the arch is the searchable part)."""

    width_mult: float = 1.0
    num_classes: int = 1000
    stem: str = "imagenet"

    def __post_init__(self) -> None:
        if self.stem not in STEMS:
            raise ValueError(f"stem: {self.stem!r} is not one of {STEMS}")
        if not self.width_mult > 0:
            raise ValueError(f"width_mult: must be positive, got {self.width_mult}")
        if self.num_classes < 1:
            raise ValueError(f"num_classes: must be positive, got {self.num_classes}")

    @property
    def stem_channels(self) -> int:
        return make_divisible(STEM_CHANNELS * self.width_mult)

    @property
    def first_block_channels(self) -> int:
        return make_divisible(FIRST_BLOCK_CHANNELS * self.width_mult)

    @property
    def last_channels(self) -> int:
        w = self.width_mult
        return make_divisible(FEATURE_MIX_CHANNELS * w) if w > 1.0 else FEATURE_MIX_CHANNELS

    @property
    def stem_stride(self) -> int:
        return 2 if self.stem == "imagenet" else 1


IMAGENET = NetConfig()
CIFAR10 = NetConfig(num_classes=10, stem="cifar")


@dataclass(frozen=True)
class LayerSpec:
    """One searchable layer: channels, stride, and whether it has the identity residual."""

    c_in: int
    c_out: int
    stride: int
    residual: bool


def layer_plan(config: NetConfig = IMAGENET) -> tuple[LayerSpec, ...]:
    """The 21 searchable layers of a network with ``config``."""
    plan, c_in = [], config.first_block_channels
    for stage, (width, n, stride) in enumerate(STAGES):
        c_out = make_divisible(width * config.width_mult)
        s = 1 if (stage == 0 and config.stem == "cifar") else stride
        for i in range(n):
            plan.append(LayerSpec(c_in, c_out, s if i == 0 else 1, residual=i > 0))
            c_in = c_out
    return tuple(plan)


# --------------------------------------------------------------- cost model
def _out_size(hw: int, stride: int) -> int:
    return -(-hw // stride)  # "same" padding k//2 with odd k: ceil(hw / stride)


def mbconv_cost(
    c_in: int, c_out: int, kernel: int, expand: int, stride: int, hw: int
) -> tuple[int, int, int]:
    """(multiply-adds, parameters, output size) of one MBConv at input size ``hw``."""
    mid = c_in * expand
    out = _out_size(hw, stride)
    macs = out * out * mid * (kernel * kernel + c_out)
    params = mid * kernel * kernel + 2 * mid + mid * c_out + 2 * c_out
    if expand != 1:
        macs += hw * hw * c_in * mid
        params += c_in * mid + 2 * mid
    return macs, params, out


def cost(arch: Arch, config: NetConfig = IMAGENET, resolution: int = 224) -> tuple[int, int]:
    """(multiply-adds, parameters) of ``arch``'s standalone network, exact integers."""
    c0, c1 = config.stem_channels, config.first_block_channels
    hw = _out_size(resolution, config.stem_stride)
    macs, params = hw * hw * 27 * c0, 27 * c0 + 2 * c0  # first conv + BN
    m, p, hw = mbconv_cost(c0, c1, 3, 1, 1, hw)  # fixed MBConv1
    macs, params = macs + m, params + p
    for spec, op in zip(layer_plan(config), arch.names):
        if op == SKIP:
            continue
        expand, kernel = OP_SPEC[op]
        m, p, hw = mbconv_cost(spec.c_in, spec.c_out, kernel, expand, spec.stride, hw)
        macs, params = macs + m, params + p
    c_last, c_mix, classes = layer_plan(config)[-1].c_out, config.last_channels, config.num_classes
    macs += hw * hw * c_last * c_mix + c_mix * classes
    params += c_last * c_mix + 2 * c_mix + c_mix * classes + classes
    return macs, params


def flops(arch: Arch, config: NetConfig = IMAGENET, resolution: int = 224) -> float:
    """Multiply-adds in millions (default: ImageNet 224x224, 1000 classes, width 1.0)."""
    return cost(arch, config, resolution)[0] / 1e6


def params(arch: Arch, config: NetConfig = IMAGENET) -> float:
    """Parameters in millions (they do not depend on the input size)."""
    return cost(arch, config, 224)[1] / 1e6


# ------------------------------------------------------------------- space
class _MobileSpace(SlotSpace):
    def flops(self, arch: Arch) -> float:
        return flops(arch)

    def params(self, arch: Arch) -> float:
        return params(arch)

    def slot_label(self, slot: int) -> str:
        """``layer 7``: the slot's index among the searched layers."""
        return f"layer {slot}"

    def layer_choices(self, arch: Arch) -> list[tuple[str, int, int] | None]:
        """Per searched layer: (its stage, kernel, expansion), or None where it is skipped."""
        stages = [f"stage {s + 1}" for s, (_, n, _) in enumerate(STAGES) for _ in range(n)]
        return [
            None if op == SKIP else (stage, OP_SPEC[op][1], OP_SPEC[op][0])
            for stage, op in zip(stages, arch.names)
        ]


SPACE = _MobileSpace(NAME, SLOT_OPTIONS, Arch)

__getattr__ = module_api(SPACE, __name__)
"""The module-level functions, the same in every space module (``base.MODULE_API``)."""
