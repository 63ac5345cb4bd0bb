"""The Once-for-All MobileNetV3 space (Cai et al., ICLR 2020), NAS-LID section 4 / Table 4.

Layout (source: mit-han-lab/once-for-all, ``ofa/imagenet_classification/elastic_nn/networks/
ofa_mbv3.py``: ``base_stage_width = [16, 24, 40, 80, 112, 160, 960, 1280]``,
``stride_stages = [1, 2, 2, 2, 1, 2]``, ``act_stages = relu, relu, relu, h_swish, h_swish,
h_swish``, ``se_stages = F, F, T, F, T, T``; the NAS-LID reference, marsggbo/NAS-LID
``hyperbox_app/.../networks/ofa/ofa_mbv3.py``, is the same network):

- first conv 3x3, 16 channels, stride 2, BN, h-swish;
- a fixed block: 3x3 depthwise MBConv1 16 -> 16 (BN, ReLU), identity residual;
- **five units** ``(width, stride, activation, squeeze-excite)``: (24, 2, relu, -),
  (40, 2, relu, SE), (80, 2, h-swish, -), (112, 1, h-swish, SE), (160, 2, h-swish, SE), each of
  **depth 2, 3 or 4**; every layer is an MBConv with **kernel {3, 5, 7} x expansion {3, 4, 6}**;
  the first layer of a unit has the unit's stride, the others stride 1 and the identity residual;
- final expand 1x1 to 960 (BN, h-swish), global average pool, feature mix 1x1 to 1280 (no BN,
  no bias, h-swish), linear classifier.

An MBConv(k, e) from ``c_in``: 1x1 expansion to ``c_in * e`` (BN, act), kxk depthwise (BN, act),
squeeze-excite where the unit has it (pool, 1x1 to ``make_divisible(mid // 4)`` with bias, ReLU,
1x1 back with bias, h-sigmoid, scale), 1x1 projection (BN, no activation).

**Depth, honestly.** OFA's elastic depth keeps the *first* d layers of a unit. Here a unit is
four slots: its first two layers choose among the nine (kernel, expansion) options; its third
and fourth also offer ``skip`` -- the layer is not there (its residual carries the input). A
*network* is a tuple in which ``skip`` only ends a unit: ``(a, b, skip, skip)`` is depth 2,
``(a, b, c, skip)`` depth 3, ``(a, b, c, d)`` depth 4. The tuple ``(a, b, skip, d)`` names the
same network as ``(a, b, skip, skip)`` (OFA never runs a layer after the unit ended; neither does
the supernet), so :meth:`OFASpace.canonical` maps it there, the way NB201 maps isomorphic cells
(rule ``depth``): the choices of dropped layers are not part of the architecture.
Consequences, each on networks rather than on tuples:

- ``sample`` is uniform over the networks of a mask: per unit, a depth with probability
  proportional to its number of networks, then uniform layers (a depth-4 unit is 81 times as
  likely as a depth-2 one in the full space: 6,561 against 81 networks);
- ``mask_size`` and ``all_archs`` count and list networks (7,371 per unit, 7,371^5 in all);
- ``edit_distance`` is the Hamming distance of canonical tuples, i.e. one edit per kept layer
  whose choice differs plus one per layer added or dropped; ``neighbours`` lists the networks
  at exactly that distance;
- a mask restricts each layer's (kernel, expansion) options and, through ``skip``, each unit's
  depths: depth 2 needs skip allowed on layers 3 and 4, depth 3 an MBConv on layer 3 and skip
  on layer 4, depth 4 MBConvs on both; every set of depths but {2, 4} is a mask (a split never
  asks for it: it cuts one layer's options).

The space is OFA's own (kernel {3, 5, 7}, expansion {3, 4, 6}, depth {2, 3, 4}); the NAS-LID
reference's search config (``configs/model/network_cfg/ofa.yaml``) narrows it to expansion
{4, 6} and depth {3, 4}, which is a mask of this space (no ``mb3*`` option, no skip on third
layers).

**Input size**: ``stem="imagenet"`` is OFA (224x224, total stride 32). ``stem="cifar"`` runs the
first conv and the first unit's first layer at stride 1 (total stride 8, 4x4 before pooling),
the adaptation :mod:`naslid.spaces.mobilenet` uses for ProxylessNAS.

**Width multiplier** as in OFA: every width ``make_divisible(c * w, 8)``, including 960 and 1280
(Table 4's OFA rows are the width-1.2 network: 9.1 M parameters).

**Costs** in closed form, the conventions of :mod:`naslid.spaces.mobilenet`: FLOPs are the
multiply-adds of convolutions and matrix products (``FlopCounterMode``'s count / 2), parameters
every weight, affine BatchNorm weight and bias, and bias.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from naslid.spaces.base import Arch as _BaseArch
from naslid.spaces.base import Mask, SlotSpace, module_api
from naslid.spaces.mobilenet import make_divisible, mbconv_cost

NAME = "ofa"
KERNELS = (3, 5, 7)
EXPANSIONS = (3, 4, 6)
DEPTHS = (2, 3, 4)
MB_OPS: tuple[str, ...] = tuple(f"mb{e}k{k}" for k in KERNELS for e in EXPANSIONS)
"""The nine (kernel, expansion) options, kernel-major (the naming of the ProxylessNAS space)."""
SKIP = "skip"
OP_SPEC: dict[str, tuple[int, int]] = {f"mb{e}k{k}": (e, k) for k in KERNELS for e in EXPANSIONS}
"""``op -> (expansion, kernel)``."""

STEM_CHANNELS = 16
FIRST_BLOCK_CHANNELS = 16
FINAL_EXPAND_CHANNELS = 960
FEATURE_MIX_CHANNELS = 1280
SE_REDUCTION = 4
UNITS: tuple[tuple[int, int, str, bool], ...] = (
    (24, 2, "relu", False),
    (40, 2, "relu", True),
    (80, 2, "h_swish", False),
    (112, 1, "h_swish", True),
    (160, 2, "h_swish", True),
)
"""``(width, stride, activation, squeeze-excite)`` of the five elastic units (OFA MobileNetV3)."""
MAX_DEPTH = max(DEPTHS)
NUM_UNITS = len(UNITS)
NUM_LAYERS = NUM_UNITS * MAX_DEPTH  # 20 slots
STEMS = ("imagenet", "cifar")
SLOT_OPTIONS: tuple[tuple[str, ...], ...] = tuple(
    MB_OPS + ((SKIP,) if i >= min(DEPTHS) else ())
    for _ in range(NUM_UNITS)
    for i in range(MAX_DEPTH)
)
SKIP_INDEX = len(MB_OPS)
"""The index of ``skip`` among a skippable layer's options (after the nine MBConvs)."""


def unit_slots(unit: int) -> range:
    """The slots of ``unit`` (0-based): four consecutive layers."""
    return range(unit * MAX_DEPTH, (unit + 1) * MAX_DEPTH)


class Arch(_BaseArch):
    """One choice per layer slot; units are joined by ``_``, their four layers by ``-``:
    ``mb3k3-mb6k5-skip-skip_mb4k7-...`` (five units)."""

    def __str__(self) -> str:
        names = [SLOT_OPTIONS[i][o] for i, o in enumerate(self.ops)]
        return "_".join("-".join(names[s] for s in unit_slots(u)) for u in range(NUM_UNITS))

    @classmethod
    def from_str(cls, text: str) -> Arch:
        text = text.strip()
        units = text.split("_")
        if len(units) != NUM_UNITS:
            raise ValueError(
                f"arch string {text!r}: expected {NUM_UNITS} '_'-separated units, got {len(units)}"
            )
        ops = []
        for u, unit in enumerate(units):
            tokens = unit.split("-")
            if len(tokens) != MAX_DEPTH:
                raise ValueError(
                    f"arch string {text!r}: unit {u + 1} has {len(tokens)} layers, expected "
                    f"{MAX_DEPTH} ('skip' for a layer past the unit's depth)"
                )
            for slot, token in zip(unit_slots(u), tokens):
                if token not in SLOT_OPTIONS[slot]:
                    why = (
                        f"a unit has at least {min(DEPTHS)} layers"
                        if token == SKIP
                        else f"expected one of {MB_OPS + (SKIP,)}"
                    )
                    raise ValueError(
                        f"arch string {text!r}: unit {u + 1} layer {slot % MAX_DEPTH + 1} is "
                        f"{token!r} ({why})"
                    )
                ops.append(SLOT_OPTIONS[slot].index(token))
        return cls(tuple(ops))

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(SLOT_OPTIONS[i][o] for i, o in enumerate(self.ops))

    @property
    def depths(self) -> tuple[int, ...]:
        """Each unit's depth: the layers before its first ``skip``."""
        return tuple(_depth(self.ops[s] for s in unit_slots(u)) for u in range(NUM_UNITS))


def _depth(unit_ops) -> int:
    for i, op in enumerate(unit_ops):
        if op == SKIP_INDEX and i >= min(DEPTHS):
            return i
    return MAX_DEPTH


# ------------------------------------------------------------ network plan
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

    def width(self, channels: int) -> int:
        return make_divisible(channels * self.width_mult)

    @property
    def stem_stride(self) -> int:
        return 2 if self.stem == "imagenet" else 1


IMAGENET = NetConfig()
CIFAR10 = NetConfig(num_classes=10, stem="cifar")


@dataclass(frozen=True)
class LayerSpec:
    """One layer slot: channels, stride, residual, activation, squeeze-excite."""

    c_in: int
    c_out: int
    stride: int
    residual: bool
    act: str
    se: bool


def layer_plan(config: NetConfig = IMAGENET) -> tuple[LayerSpec, ...]:
    """The 20 layer slots of a network with ``config`` (all four layers of every unit)."""
    plan, c_in = [], config.width(FIRST_BLOCK_CHANNELS)
    for u, (width, stride, act, se) in enumerate(UNITS):
        c_out = config.width(width)
        s = 1 if (u == 0 and config.stem == "cifar") else stride
        for i in range(MAX_DEPTH):
            plan.append(LayerSpec(c_in, c_out, s if i == 0 else 1, i > 0, act, se))
            c_in = c_out
    return tuple(plan)


# --------------------------------------------------------------- cost model
def se_channels(mid: int) -> int:
    """OFA's ``SEModule``: the squeeze width of ``mid`` channels."""
    return make_divisible(mid // SE_REDUCTION)


def layer_cost(spec: LayerSpec, op: str, hw: int) -> tuple[int, int, int]:
    """(multiply-adds, parameters, output size) of one MBConv layer at input size ``hw``."""
    expand, kernel = OP_SPEC[op]
    macs, params, out = mbconv_cost(spec.c_in, spec.c_out, kernel, expand, spec.stride, hw)
    if spec.se:
        mid, sq = spec.c_in * expand, se_channels(spec.c_in * expand)
        macs += 2 * mid * sq
        params += 2 * mid * sq + sq + mid
    return macs, params, out


def cost(arch: Arch, config: NetConfig = IMAGENET, resolution: int = 224) -> tuple[int, int]:
    """(multiply-adds, parameters) of ``arch``'s network, exact integers (dropped layers
    cost nothing)."""
    arch = SPACE.canonical(arch)
    c0, c1 = config.width(STEM_CHANNELS), config.width(FIRST_BLOCK_CHANNELS)
    hw = -(-resolution // config.stem_stride)
    macs, params = hw * hw * 27 * c0, 27 * c0 + 2 * c0  # first conv + BN
    m, p, hw = mbconv_cost(c0, c1, 3, 1, 1, hw)  # fixed MBConv1
    macs, params = macs + m, params + p
    for spec, op in zip(layer_plan(config), arch.names):
        if op != SKIP:
            m, p, hw = layer_cost(spec, op, hw)
            macs, params = macs + m, params + p
    c_last = layer_plan(config)[-1].c_out
    c_fe, c_mix = config.width(FINAL_EXPAND_CHANNELS), config.width(FEATURE_MIX_CHANNELS)
    macs += hw * hw * c_last * c_fe + c_fe * c_mix + c_mix * config.num_classes
    params += c_last * c_fe + 2 * c_fe + c_fe * c_mix + c_mix * config.num_classes
    return macs, params + config.num_classes


def flops(arch: Arch, config: NetConfig = IMAGENET, resolution: int = 224) -> float:
    """Multiply-adds in millions (default: ImageNet 224x224, 1000 classes, width 1.0)."""
    return cost(arch, config, resolution)[0] / 1e6


def params(arch: Arch, config: NetConfig = IMAGENET) -> float:
    """Parameters in millions (they do not depend on the input size)."""
    return cost(arch, config, 224)[1] / 1e6


# ------------------------------------------------------------------- space
def _unit_networks(mask: Mask, unit: int) -> list[tuple[tuple[int, ...], ...]]:
    """Per depth 2, 3, 4: the product factors (allowed options per layer) of the unit's
    networks inside ``mask``; an empty list where the mask holds none of that depth."""
    m = [mask[s] for s in unit_slots(unit)]
    out = []
    for depth in DEPTHS:
        kept = [tuple(o for o in m[i] if o != SKIP_INDEX) for i in range(depth)]
        dropped = [SKIP_INDEX in m[i] for i in range(depth, MAX_DEPTH)]
        if all(kept) and all(dropped):
            out.append(tuple(kept) + ((SKIP_INDEX,),) * (MAX_DEPTH - depth))
        else:
            out.append(())
    return out


class OFASpace(SlotSpace):
    """Slots whose tuples name networks only in canonical form (see the module docstring)."""

    isomorphisms = ("depth",)

    def check_mask(self, mask: Mask) -> Mask:
        mask = super().check_mask(mask)
        for u in range(NUM_UNITS):
            if not any(_unit_networks(mask, u)):
                raise ValueError(
                    f"mask: unit {u + 1} holds no network (a depth needs its layers' options "
                    f"and skip on every layer past it)"
                )
        return mask

    def canonical(self, arch: Arch, rule: str | None = None) -> Arch:
        """The network ``arch`` names: every layer after a unit's first skip is skip."""
        ops = list(arch.ops)
        for u in range(NUM_UNITS):
            slots = unit_slots(u)
            depth = _depth(ops[s] for s in slots)
            for s in slots[depth:]:
                ops[s] = SKIP_INDEX
        return self.arch_type(tuple(ops))

    def network(self, arch: Arch) -> Arch:
        return self.canonical(arch)

    def class_members(self, arch: Arch, rule: str | None = None) -> tuple[Arch, ...]:
        """Every tuple naming ``arch``'s network (a depth-2 unit's fourth layer is free)."""
        arch = self.canonical(arch)
        per_unit = []
        for u in range(NUM_UNITS):
            ops = [arch.ops[s] for s in unit_slots(u)]
            if _depth(ops) == min(DEPTHS):
                per_unit.append([(*ops[:-1], o) for o in range(len(SLOT_OPTIONS[-1]))])
            else:
                per_unit.append([tuple(ops)])
        return tuple(
            self.arch_type(tuple(itertools.chain(*units))) for units in itertools.product(*per_unit)
        )

    def num_classes(self, rule: str | None = None) -> int:
        return self.mask_size()

    def mask_size(self, mask: Mask | None = None) -> int:
        """The number of networks inside ``mask``."""
        mask = self.full_mask() if mask is None else mask
        return math.prod(
            sum(math.prod(len(f) for f in fac) for fac in _unit_networks(mask, u) if fac)
            for u in range(NUM_UNITS)
        )

    def contains(self, mask: Mask, arch: Arch) -> bool:
        return super().contains(mask, self.canonical(arch))

    def all_archs(self, mask: Mask | None = None) -> Iterator[Arch]:
        mask = self.full_mask() if mask is None else mask
        units = [
            [t for fac in _unit_networks(mask, u) if fac for t in itertools.product(*fac)]
            for u in range(NUM_UNITS)
        ]
        for combo in itertools.product(*units):
            yield self.arch_type(tuple(itertools.chain(*combo)))

    def sample(self, rng: np.random.Generator, n: int, mask: Mask | None = None) -> list[Arch]:
        """``n`` independent draws, uniform over the networks inside ``mask``."""
        mask = self.check_mask(self.full_mask() if mask is None else mask)
        cols: list[np.ndarray] = []
        for u in range(NUM_UNITS):
            facs = _unit_networks(mask, u)
            counts = np.array([math.prod(len(f) for f in fac) if fac else 0 for fac in facs])
            depth = rng.choice(len(DEPTHS), size=n, p=counts / counts.sum())
            for i in range(MAX_DEPTH):
                col = np.full(n, SKIP_INDEX)
                for d, fac in enumerate(facs):
                    rows = np.flatnonzero(depth == d)
                    if fac and rows.size:
                        col[rows] = np.asarray(fac[i])[rng.integers(0, len(fac[i]), rows.size)]
                cols.append(col)
        return [self.arch_type(tuple(int(c[j]) for c in cols)) for j in range(n)]

    def edit_distance(self, a: Arch, b: Arch) -> int:
        """Layers whose choice differs between the two networks, a dropped or added layer
        counting one."""
        return super().edit_distance(self.canonical(a), self.canonical(b))

    def neighbours(self, arch: Arch, distance: int, mask: Mask | None = None) -> list[Arch]:
        """The networks (inside ``mask``) at exactly ``distance`` from ``arch``'s network."""
        near = super().neighbours(self.canonical(arch), distance, mask)
        return [b for b in near if self.is_network(b)]

    def encode(self, archs: Arch | Sequence[Arch]) -> np.ndarray:
        """One-hot encoding of the networks (their canonical tuples)."""
        if isinstance(archs, _BaseArch):
            return super().encode(self.canonical(archs))
        return super().encode([self.canonical(a) for a in archs])

    def flops(self, arch: Arch) -> float:
        return flops(arch)

    def params(self, arch: Arch) -> float:
        return params(arch)

    def layer_choices(self, arch: Arch) -> list[tuple[str, int, int] | None]:
        """Per layer slot: (its unit, kernel, expansion), or None past the unit's depth."""
        return [
            None if op == SKIP else (f"unit {s // MAX_DEPTH + 1}", OP_SPEC[op][1], OP_SPEC[op][0])
            for s, op in enumerate(self.canonical(arch).names)
        ]

    def slot_label(self, slot: int) -> str:
        """``unit 2 layer 3``: the slot's unit and its place in it, counted from 1."""
        return f"unit {slot // MAX_DEPTH + 1} layer {slot % MAX_DEPTH + 1}"


SPACE = OFASpace(NAME, SLOT_OPTIONS, Arch)

__getattr__ = module_api(SPACE, __name__)
"""The module-level functions, the same in every space module (``base.MODULE_API``)."""
