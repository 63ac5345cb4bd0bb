"""The OFA MobileNetV3 space and its supernet: layout, canonical form, sampling over networks,
distances, closed-form costs, depth semantics."""

from __future__ import annotations

import itertools
from collections import Counter

import numpy as np
import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from naslid.spaces import ofa as O
from naslid.supernets.ofa import Supernet

S = O.SPACE
MAX_ARCH = O.Arch((O.MB_OPS.index("mb6k7"),) * O.NUM_LAYERS)
MIN_TEXT = "_".join(["mb3k3-mb3k3-skip-skip"] * 5)
PER_UNIT = 9**2 + 9**3 + 9**4  # depth 2, 3, 4


def counted(net: torch.nn.Module, x: torch.Tensor) -> tuple[int, int]:
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        net(x)
    return counter.get_total_flops() // 2, sum(p.numel() for p in net.parameters())


def standalone(arch, cfg: O.NetConfig) -> Supernet:
    return Supernet(cfg.width_mult, cfg.num_classes, S.arch_mask(arch), True, cfg.stem).eval()


# ------------------------------------------------------------------- layout
def test_layout_follows_ofa_mobilenet_v3():
    assert S.num_slots == 20 and len(O.MB_OPS) == 9
    assert [len(o) for o in S.slot_options] == [9, 9, 10, 10] * 5  # skip on layers 3, 4
    plan = O.layer_plan()
    assert [p.c_out for p in plan] == [w for w in (24, 40, 80, 112, 160) for _ in range(4)]
    assert [i for i, p in enumerate(plan) if p.stride == 2] == [0, 4, 8, 16]
    assert [p.residual for p in plan] == [i % 4 > 0 for i in range(20)]
    assert [p.se for p in plan[::4]] == [False, True, False, True, True]
    assert [p.act for p in plan[::4]] == ["relu", "relu", "h_swish", "h_swish", "h_swish"]
    assert O.layer_plan(O.CIFAR10)[0].stride == 1
    assert [O.NetConfig(width_mult=1.2).width(c) for c in (16, 24, 112, 960, 1280)] == [
        24,
        32,
        136,
        1152,
        1536,
    ]


# ------------------------------------------------------------------- string
def test_arch_string_round_trip_and_errors():
    arch = S.from_str(MIN_TEXT)
    assert str(arch) == MIN_TEXT and arch.depths == (2,) * 5
    assert MAX_ARCH.depths == (4,) * 5 and S.from_str(str(MAX_ARCH)) == MAX_ARCH
    with pytest.raises(ValueError, match="unit 1 layer 2 is 'skip' .a unit has at least 2 layers"):
        S.from_str("mb3k3-skip-skip-skip" + MIN_TEXT[21:])
    with pytest.raises(ValueError, match="unit 3 has 3 layers"):
        S.from_str("_".join(["mb3k3-mb3k3-skip-skip"] * 2 + ["mb3k3-mb3k3-skip"] * 3))
    with pytest.raises(ValueError, match="expected 5 '_'-separated units"):
        S.from_str(MIN_TEXT.replace("_", "-"))


# ------------------------------------------------------------ canonical form
def test_canonical_form_drops_the_choices_of_dropped_layers():
    tokens = MIN_TEXT.split("_")
    tokens[1] = "mb3k3-mb3k3-skip-mb6k7"  # depth 2; the fourth layer's choice is meaningless
    loose = S.from_str("_".join(tokens))
    assert not S.is_network(loose) and S.canonical(loose) == S.from_str(MIN_TEXT)
    assert S.edit_distance(loose, S.from_str(MIN_TEXT)) == 0
    assert S.contains(S.arch_mask(S.from_str(MIN_TEXT)), loose)
    members = S.class_members(S.from_str(MIN_TEXT))
    assert len(members) == 10**5 and len(set(members)) == 10**5  # 10 choices per unit's 4th layer
    assert all(S.canonical(m) == S.from_str(MIN_TEXT) for m in members[:50])
    assert S.class_members(MAX_ARCH) == (MAX_ARCH,)
    assert np.array_equal(S.encode(loose), S.encode(S.from_str(MIN_TEXT)))


def test_edit_distance_counts_added_and_dropped_layers():
    tokens = MIN_TEXT.split("_")
    deeper = S.from_str("_".join(["mb3k3-mb3k3-mb6k5-mb4k7"] + tokens[1:]))  # depth 2 -> 4
    assert S.edit_distance(S.from_str(MIN_TEXT), deeper) == 2
    n1 = S.neighbours(S.from_str(MIN_TEXT), 1)
    # per unit: 2 x 8 substitutions of a kept layer + 9 ways to add a third layer
    assert len(n1) == 5 * (2 * 8 + 9) and all(S.is_network(b) for b in n1)
    # a depth-4 unit: 4 x 8 substitutions + dropping its last layer; x5 units
    assert len(S.neighbours(MAX_ARCH, 1)) == 5 * (4 * 8 + 1)


# ------------------------------------------------------------------ counting
def test_mask_size_counts_networks_and_all_archs_lists_them():
    assert S.mask_size() == PER_UNIT**5 == S.num_classes()
    # a small mask: two options on the first two layers of unit 1, skip or one op after
    mask = [(0,) for _ in range(20)]
    mask[0], mask[1], mask[2], mask[3] = (0, 1), (0, 2), (3, O.SKIP_INDEX), (O.SKIP_INDEX, 5)
    mask = S.check_mask(tuple(mask))
    archs = list(S.all_archs(mask))
    # depth 2: 4, depth 3: 4, depth 4: 4 networks
    assert len(archs) == len(set(archs)) == S.mask_size(mask) == 12
    assert all(S.is_network(a) and S.contains(mask, a) for a in archs)
    brute = {S.canonical(S.make(ops)) for ops in itertools.product(*mask)}
    assert set(archs) == brute
    with pytest.raises(ValueError, match="unit 1 holds no network"):
        S.check_mask(tuple([(0,), (0,), (O.SKIP_INDEX,), (5,)] + list(mask[4:])))


def test_sampling_is_uniform_over_networks_not_tuples():
    """Depths 2, 3, 4 are drawn with probability 81, 729, 6561 in 7371 (uniform over
    networks); uniform tuples would give a depth-2 unit one time in ten."""
    archs = S.sample(np.random.default_rng(0), 4000)
    depths = Counter(d for a in archs for d in a.depths)
    n = sum(depths.values())
    for depth, count in ((2, 81), (3, 729), (4, 6561)):
        expected = n * count / PER_UNIT
        assert abs(depths[depth] - expected) < 4 * np.sqrt(expected), (depth, depths)
    assert all(S.is_network(a) for a in archs)
    # inside a mask: uniform over its 12 networks
    mask = [(0,) for _ in range(20)]
    mask[0], mask[1], mask[2], mask[3] = (0, 1), (0, 2), (3, O.SKIP_INDEX), (O.SKIP_INDEX, 5)
    seen = Counter(S.sample(np.random.default_rng(1), 6000, tuple(mask)))
    assert len(seen) == 12 and max(seen.values()) - min(seen.values()) < 200  # ~500 each


# ----------------------------------------------------------------------- costs
@pytest.mark.parametrize(
    "cfg,side",
    [(O.IMAGENET, 224), (O.NetConfig(width_mult=1.2), 224), (O.CIFAR10, 32)],
    ids=["w1.0", "w1.2", "cifar"],
)
def test_closed_form_matches_flop_counter(cfg, side, one_thread):
    for arch in [MAX_ARCH, S.from_str(MIN_TEXT)] + S.sample(np.random.default_rng(2), 1):
        assert counted(standalone(arch, cfg), torch.randn(1, 3, side, side)) == O.cost(
            arch, cfg, side
        ), str(arch)


def test_costs_of_the_extremes():
    # OFA's largest MobileNetV3 (d4, k7, e6 everywhere), width 1.0: the 7.7 M parameters OFA
    # reports for its full network
    assert O.params(MAX_ARCH) == pytest.approx(7.66476)
    assert O.flops(S.from_str(MIN_TEXT)) < O.flops(MAX_ARCH)
    loose = S.from_str(MIN_TEXT.replace("skip-skip", "skip-mb6k7", 1))
    assert O.cost(loose) == O.cost(S.from_str(MIN_TEXT))  # dropped layers cost nothing


# -------------------------------------------------------------------- supernet
def test_a_unit_ends_at_its_first_skip(one_thread):
    torch.manual_seed(0)
    net = Supernet(0.25, 10, stem="cifar").eval()
    x = torch.randn(2, 3, 16, 16)
    tokens = MIN_TEXT.split("_")
    loose = S.from_str("_".join(["mb3k3-mb3k3-skip-mb6k7"] + tokens[1:]))
    with torch.no_grad():
        torch.testing.assert_close(net(x, loose), net(x, S.canonical(loose)))
        _, feats = net(x, S.from_str(MIN_TEXT), return_features=True)
        assert len(feats) == 21
        torch.testing.assert_close(feats[3], feats[2])  # a dropped layer carries its input
        torch.testing.assert_close(feats[4], feats[2])
        # mask mode: a layer selecting skip alone ends its unit too (the 4th layer's ops idle)
        mask = list(S.full_mask())
        mask[2] = (O.SKIP_INDEX,)
        _, mfeats = net(x, tuple(mask), return_features=True)
        torch.testing.assert_close(mfeats[4], mfeats[2])
        # skip among others adds zero: {mb3k3, skip} == {mb3k3} on a residual layer
        a, b = list(S.full_mask()), list(S.full_mask())
        a[2], b[2] = (0, O.SKIP_INDEX), (0,)
        torch.testing.assert_close(net(x, tuple(a)), net(x, tuple(b)))
    sub = net.export(S.from_str(MIN_TEXT))
    assert not any(len(sub.layers[s].candidates) for s in (2, 3))  # dropped: no weights
    # a child split on a unit's 4th layer holds no skip there; profiling its 3rd layer's skip
    # (the unit of depth 2, 4th layer idle) runs as in the parent instead of failing
    mask = list(S.full_mask())
    mask[3] = tuple(o for o in mask[3] if o != O.SKIP_INDEX)
    child = net.restrict(tuple(mask)).eval()
    shallow = S.from_str(MIN_TEXT)  # unit 0 of depth 2: its canonical 4th layer is skip
    assert shallow.ops[3] == O.SKIP_INDEX
    fixed = list(mask)
    fixed[2] = (O.SKIP_INDEX,)
    with torch.no_grad():
        torch.testing.assert_close(child(x, shallow), net(x, shallow))
        torch.testing.assert_close(child(x, tuple(fixed)), net(x, tuple(fixed)))
    with pytest.raises(ValueError, match="does not hold"):  # a layer that runs must be held
        child(x, S.from_str("_".join(["mb3k3-mb3k3-mb3k3-skip"] + tokens[1:])))


# ---------------------------------------------------------------------- report
def test_layer_choices_and_the_network_figure(tmp_path):
    from naslid.report.plots import mobile_network
    from naslid.spaces import mobilenet

    layers = S.layer_choices(S.from_str(MIN_TEXT.replace("skip-skip", "mb6k5-skip", 1)))
    assert layers[:4] == [("unit 1", 3, 3), ("unit 1", 3, 3), ("unit 1", 5, 6), None]
    assert sum(c is None for c in layers) == 4 * 2 + 1
    tokens = ["mb6k7" if first else "skip" for first in mobilenet.FIRST_OF_STAGE]
    mob = mobilenet.SPACE.layer_choices(mobilenet.from_str("-".join(tokens)))
    assert mob[0] == ("stage 1", 7, 6) and mob[1] is None and len(mob) == 21
    assert mob[4] == ("stage 2", 7, 6)
    path = mobile_network(layers, tmp_path / "net.png", title="t")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# -------------------------------------------------------------------- transfer
def test_naslid_transfer_trains_and_exports_an_ofa_network(tmp_path, one_thread):
    """``naslid transfer --space ofa`` on a tiny ImageNet-layout tree: a loose arch string is
    recorded as its network, and ``model.pt2`` runs at the trained input size."""
    from naslid.cli import main
    from naslid.io import read_json
    from naslid.transfer import make_digits_imagefolder

    data = make_digits_imagefolder(tmp_path / "digits", 6, 2, size=32)
    loose = MIN_TEXT.replace("skip-skip", "skip-mb6k7", 1)
    argv = ["transfer", "--space", "ofa", "--arch", loose, "--data", str(data)]
    argv += ["--out", str(tmp_path / "out"), "--epochs", "1", "--image-size", "32"]
    argv += ["--width-mult", "0.25", "--workers", "0", "--batch-size", "16", "--quiet"]
    assert main(argv) == 0
    info = read_json(tmp_path / "out" / "arch.json")
    assert info["space"] == "ofa" and info["arch"] == MIN_TEXT and info["image_size"] == 32
    assert info["params_M"] == pytest.approx(O.params(S.from_str(MIN_TEXT), O.NetConfig(0.25, 10)))
    program = torch.export.load(tmp_path / "out" / "model.pt2").module()
    with torch.no_grad():
        assert program(torch.rand(1, 3, 32, 32)).shape == (1, 10)


def test_evolution_operators_make_networks():
    """Mutation and crossover of OFA networks give networks: a choice left on a layer past a
    unit's depth is dropped, so the search records and scores networks only."""
    from naslid.evolution import crossover, mutate

    rng = np.random.default_rng(5)
    parents = S.sample(rng, 40)
    shallow = S.from_str(MIN_TEXT)
    kids = [mutate(S, p, 0.5, rng) for p in parents + [shallow] * 40]
    kids += [crossover(S, shallow, p, 0.5, rng) for p in parents]
    assert all(S.is_network(k) for k in kids)
    assert any(k.depths != (4,) * 5 for k in kids)


def test_the_reference_codes_narrower_space_is_a_mask():
    """NAS-LID's public OFA config: expansion {4, 6}, depth {3, 4}."""
    keep = [i for i, op in enumerate(O.MB_OPS) if O.OP_SPEC[op][0] in (4, 6)]
    mask = S.check_mask(
        tuple(tuple(keep) + ((O.SKIP_INDEX,) if s % 4 == 3 else ()) for s in range(O.NUM_LAYERS))
    )
    assert S.mask_size(mask) == (6**3 + 6**4) ** 5
    archs = S.sample(np.random.default_rng(3), 500, mask)
    assert {d for a in archs for d in a.depths} == {3, 4}
    assert {O.OP_SPEC[n][0] for a in archs for n in a.names if n != O.SKIP} == {4, 6}
