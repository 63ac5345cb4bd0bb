"""The layers a latency table times, per space: their names and input shapes (:func:`layout`),
the modules that run for each entry (:func:`calls`), and what an arch's network runs
(:func:`usage`). The network is the one of the space's cost model (``space.flops``,
``space.params``): NAS-Bench-201's C=16, N=5 network for CIFAR-10 (Dong & Yang 2020), the
ProxylessNAS (Cai, Zhu & Han 2019) and OFA MobileNetV3 (Cai et al. 2020) networks at ImageNet
224 px, width 1.0, 1000 classes. How the entries add up is in :mod:`naslid.latency`.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from typing import Any

SUM = "sum"
"""NB201's node sum: one tensor addition at the stage's shape, an entry of each stage."""
DEFAULT_RESOLUTION = {"nb201": 32, "mobilenet": 224, "ofa": 224}
"""Input side of each space's cost-model network (CIFAR-10 for NB201, ImageNet otherwise)."""
MIN_RESOLUTION = {"nb201": 4, "mobilenet": 32, "ofa": 32}
"""Smallest input side that leaves every stage at least one pixel (total stride 4 and 32)."""
MAX_RESOLUTION = 1024


def space_of(space: Any):
    """The :class:`~naslid.spaces.base.SlotSpace` of ``space`` (a name, a module or a space)."""
    from naslid import spaces

    if isinstance(space, str):
        return spaces.get(space).SPACE
    return getattr(space, "SPACE", space)


def resolution_of(space_name: str, resolution: int | None) -> int:
    """``resolution``, or the space's default; refused (naming the field) when too small, too
    large, or (NB201, whose reduction blocks halve it twice) not a multiple of 4."""
    res = DEFAULT_RESOLUTION[space_name] if resolution is None else resolution
    low = MIN_RESOLUTION[space_name]
    ok = not isinstance(res, bool) and isinstance(res, int) and low <= res <= MAX_RESOLUTION
    if not ok or (space_name == "nb201" and res % 4):
        step = " and a multiple of 4" if space_name == "nb201" else ""
        raise ValueError(
            f"resolution: {space_name} needs an integer between {low} and {MAX_RESOLUTION}"
            f"{step}, got {res!r}"
        )
    return res


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def _nb201_layout(res: int) -> tuple[list[dict], list[dict]]:
    from naslid.spaces.nb201 import CHANNELS, OPS

    stages = [(CHANNELS, res), (2 * CHANNELS, res // 2), (4 * CHANNELS, res // 4)]
    layers = [
        {"name": f"stage {s + 1}", "input": [c, hw, hw], "ops": [*OPS, SUM]}
        for s, (c, hw) in enumerate(stages)
    ]
    fixed = [{"name": "stem", "input": [3, res, res]}]
    fixed += [{"name": f"reduction {s}", "input": layers[s - 1]["input"]} for s in (1, 2)]
    fixed.append({"name": "head", "input": layers[2]["input"]})
    return layers, fixed


def _mobile_layout(space, res: int) -> tuple[list[dict], list[dict]]:
    """Layer input shapes of the mobile spaces' ImageNet network (``layer_plan``)."""
    from naslid.spaces import mobilenet, ofa

    module = mobilenet if space.name == "mobilenet" else ofa
    config = module.IMAGENET
    plan = module.layer_plan(config)
    c0 = config.stem_channels if module is mobilenet else config.width(ofa.STEM_CHANNELS)
    hw = _ceil_div(res, config.stem_stride)
    fixed = [
        {"name": "stem", "input": [3, res, res]},
        {"name": "first_block", "input": [c0, hw, hw]},
    ]
    layers = []
    for i, spec in enumerate(plan):
        layers.append(
            {
                "name": space.slot_label(i),
                "input": [spec.c_in, hw, hw],
                "ops": list(space.slot_options[i]),
            }
        )
        hw = _ceil_div(hw, spec.stride)
    fixed.append({"name": "head", "input": [plan[-1].c_out, hw, hw]})
    return layers, fixed


def layout(space: Any, resolution: int | None = None) -> dict:
    """What a table of ``space`` at ``resolution`` times: its layers (name, input shape
    [C, H, W], options) and fixed parts (name, input shape), for the space's cost-model network."""
    sp = space_of(space)
    res = resolution_of(sp.name, resolution)
    if sp.name == "nb201":
        layers, fixed = _nb201_layout(res)
    else:
        layers, fixed = _mobile_layout(sp, res)
    return {"space": sp.name, "resolution": res, "layers": layers, "fixed": fixed}


def fingerprint(space: Any, resolution: int | None = None) -> str:
    """16 hex digits of the SHA-256 of :func:`layout`: a table of another network (other
    options, layer shapes, input size) has another fingerprint."""
    text = json.dumps(layout(space, resolution), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


# --------------------------------------------------------------------------- what an arch runs
def _nb201_usage(arch) -> Counter:
    """(layer, op) -> how often the network of ``arch`` runs it (see the module docstring)."""
    from naslid.spaces.nb201 import CELLS_PER_STAGE, EDGES, NUM_NODES, OPS

    per_cell: Counter = Counter()
    alive = [True]
    for dst in range(1, NUM_NODES):
        terms = 0
        for e, (to, src) in enumerate(EDGES):
            op = OPS[arch.ops[e]]
            if to != dst or op == "none":
                continue
            if not alive[src] and op in ("skip_connect", "avg_pool_3x3"):
                continue  # identity / pooling of zeros: Cell.forward skips it
            per_cell[op] += 1
            terms += 1
        per_cell[SUM] += max(terms - 1, 0)
        alive.append(terms > 0)
    return Counter(
        {(f"stage {s}", op): CELLS_PER_STAGE * n for s in (1, 2, 3) for op, n in per_cell.items()}
    )


def usage(space: Any, arch) -> Counter:
    """(layer name, op) -> times ``arch``'s network runs that entry: NB201's ops and node sums
    per stage (:func:`_nb201_usage`), one per layer otherwise; OFA's ``skip``, and every layer
    after it in its unit, run nothing and are left out."""
    sp = space_of(space)
    if isinstance(arch, str):
        arch = sp.from_str(arch)
    if sp.name == "nb201":
        return _nb201_usage(arch)
    if sp.name == "ofa":  # skip ends the unit: it and the layers after it in the unit are idle
        arch = sp.network(arch)
        return Counter(
            {(sp.slot_label(i), op): 1 for i, op in enumerate(arch.names) if op != "skip"}
        )
    return Counter({(sp.slot_label(i), op): 1 for i, op in enumerate(arch.names)})


def _nb201_calls(batch: int, res: int, device) -> tuple[dict, dict]:
    """(layer -> op -> call or None for 0 ms, fixed part -> call) of NB201's network."""
    import torch

    from naslid.spaces.nb201 import CELLS_PER_STAGE, CHANNELS, OPS, SPACE
    from naslid.supernets.nb201 import Supernet, make_op

    arch = SPACE.make([OPS.index("nor_conv_3x3")] * SPACE.num_slots)
    net = Supernet(CHANNELS, CELLS_PER_STAGE, 10, SPACE.arch_mask(arch), affine=True)
    net = net.to(device).eval()
    lay = layout("nb201", res)
    x0 = torch.randn(batch, 3, res, res, device=device)
    calls: dict[str, dict] = {}
    for layer in lay["layers"]:
        c, h, w = layer["input"]
        x = torch.randn(batch, c, h, w, device=device)
        calls[layer["name"]] = {"none": None, SUM: (lambda x=x: x + x)}
        for op in OPS[1:]:
            mod = make_op(op, c, affine=True).to(device).eval()
            calls[layer["name"]][op] = lambda mod=mod, x=x: mod(x)
    inputs = {f["name"]: torch.randn(batch, *f["input"], device=device) for f in lay["fixed"]}
    n = CELLS_PER_STAGE
    fixed = {
        "stem": lambda: net.stem(x0),
        "reduction 1": lambda: net.layers[n](inputs["reduction 1"]),
        "reduction 2": lambda: net.layers[2 * n + 1](inputs["reduction 2"]),
        "head": lambda: net._logits(inputs["head"]),
    }
    return calls, fixed


def _mobile_calls(space, batch: int, res: int, device) -> tuple[dict, dict]:
    """As :func:`_nb201_calls`, for the ProxylessNAS and OFA networks (their own layer modules)."""
    import torch

    from naslid import spaces, supernets

    module = supernets.get(space.name)
    layer_cls = module.MobileLayer if space.name == "mobilenet" else module.OFALayer
    space_module = spaces.get(space.name)
    plan = space_module.layer_plan(space_module.IMAGENET)
    net = module.imagenet_network(space.make([0] * space.num_slots), 1000).to(device).eval()
    lay = layout(space, res)
    calls: dict[str, dict] = {}
    for i, (spec, layer) in enumerate(zip(plan, lay["layers"])):
        x = torch.randn(batch, *layer["input"], device=device)
        options = space.slot_options[i]
        calls[layer["name"]] = {}
        for o, op in enumerate(options):
            if op == "skip" and space.name == "ofa":
                calls[layer["name"]][op] = None  # ends the unit: nothing runs
                continue
            mod = layer_cls(spec, options, [o], True).to(device).eval()
            calls[layer["name"]][op] = lambda mod=mod, x=x, o=o: mod(x, (o,))
    inputs = {f["name"]: torch.randn(batch, *f["input"], device=device) for f in lay["fixed"]}
    if space.name == "mobilenet":
        first = lambda: net.layers[0](inputs["first_block"])  # noqa: E731
    else:
        first = lambda: inputs["first_block"] + net.first(inputs["first_block"])  # noqa: E731
    fixed = {
        "stem": lambda: net.stem(inputs["stem"]),
        "first_block": first,
        "head": lambda: net._logits(inputs["head"]),
    }
    return calls, fixed


def calls(space: Any, batch: int, resolution: int, device) -> tuple[dict, dict]:
    """Per layer and option, the call that runs that entry once on a random input of its shape
    (None where nothing runs: 0 ms), and per fixed part its call; eval-mode modules on
    ``device``. Call it under ``torch.inference_mode``."""
    sp = space_of(space)
    if sp.name == "nb201":
        return _nb201_calls(batch, resolution, device)
    return _mobile_calls(sp, batch, resolution, device)
