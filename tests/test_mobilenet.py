"""The ProxylessNAS mobile space and its supernet: layout, string format, costs, semantics."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from naslid.spaces import mobilenet as M
from naslid.supernets.mobilenet import MobileLayer, Supernet

SMALL = M.NetConfig(width_mult=0.25, num_classes=10, stem="cifar")
MIN_ARCH = M.Arch(tuple(0 if first else 6 for first in M.FIRST_OF_STAGE))  # mb3k3 / skip
MAX_ARCH = M.Arch((5,) * M.NUM_LAYERS)  # mb6k7 everywhere


def standalone(arch: M.Arch, cfg: M.NetConfig) -> Supernet:
    return Supernet(
        cfg.width_mult, cfg.num_classes, M.SPACE.arch_mask(arch), affine=True, stem=cfg.stem
    )


def counted_macs(net: torch.nn.Module, x: torch.Tensor) -> int:
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        net(x)
    return counter.get_total_flops() // 2


# ------------------------------------------------------------------- layout
def test_layout_matches_proxylessnas():
    assert M.NUM_LAYERS == 21 and M.SPACE.num_slots == 21
    assert [i for i, f in enumerate(M.FIRST_OF_STAGE) if f] == [0, 4, 8, 12, 16, 20]
    assert [len(o) for o in M.SPACE.slot_options].count(6) == 6
    assert [len(o) for o in M.SPACE.slot_options].count(7) == 15
    assert M.SPACE.mask_size() == 6**6 * 7**15  # six first-of-stage layers have no skip
    assert M.SPACE.encode(MIN_ARCH).shape == (6 * 6 + 15 * 7,)
    plan = M.layer_plan()
    assert [p.c_out for p in plan] == [24] * 4 + [40] * 4 + [80] * 4 + [96] * 4 + [192] * 4 + [320]
    assert [i for i, p in enumerate(plan) if p.stride == 2] == [0, 4, 8, 16]
    assert [p.residual for p in plan] == [not f for f in M.FIRST_OF_STAGE]
    assert plan[0].c_in == 16
    assert (M.IMAGENET.stem_channels, M.IMAGENET.last_channels) == (32, 1280)
    # CIFAR adaptation: stem and the first stage at stride 1
    assert M.CIFAR10.stem_stride == 1 and M.layer_plan(M.CIFAR10)[0].stride == 1
    assert [p.stride for p in M.layer_plan(M.CIFAR10)][1:] == [p.stride for p in plan][1:]


def test_make_divisible_follows_proxylessnas():
    assert [M.make_divisible(c * 0.25) for c in (32, 16, 24, 40, 80, 96, 192, 320)] == [
        8,
        8,
        8,
        16,
        24,
        24,
        48,
        80,
    ]
    assert M.make_divisible(24 * 1.4) == 32 and M.make_divisible(40 * 1.4) == 56
    assert M.NetConfig(width_mult=1.4).last_channels == 1792
    assert M.NetConfig(width_mult=0.5).last_channels == 1280  # kept at 1280 below width 1


def test_bad_net_config_is_refused():
    with pytest.raises(ValueError, match="stem"):
        M.NetConfig(stem="tiny")
    with pytest.raises(ValueError, match="width_mult"):
        M.NetConfig(width_mult=0)


# ------------------------------------------------------------------- string
def test_arch_string_format():
    text = "-".join(
        ["mb3k5", "mb6k3", "skip", "mb3k7"] + ["mb6k5", "skip", "skip", "skip"] * 4 + ["mb6k7"]
    )
    arch = M.from_str(text)
    assert str(arch) == text
    assert arch.names[:4] == ("mb3k5", "mb6k3", "skip", "mb3k7")
    assert arch.ops[2] == 6 and arch.ops[0] == 2
    assert str(MIN_ARCH).startswith("mb3k3-skip-skip-skip-mb3k3")


def test_arch_string_errors_name_the_layer():
    tokens = str(MAX_ARCH).split("-")
    tokens[4] = "skip"
    with pytest.raises(ValueError, match="layer 4 .*first layer of a stage"):
        M.from_str("-".join(tokens))
    tokens[4] = "mb4k3"
    with pytest.raises(ValueError, match="layer 4 is 'mb4k3'"):
        M.from_str("-".join(tokens))
    with pytest.raises(ValueError, match="expected 21"):
        M.from_str("-".join(tokens[:20]))


# -------------------------------------------------------------------- costs
def test_smallest_arch_by_hand():
    """mb3k3 on the six first layers, skip elsewhere, 224x224, 1000 classes, width 1."""
    macs = (
        112 * 112 * 27 * 32  # first conv 3->32, stride 2
        + 112 * 112 * 32 * (9 + 16)  # MBConv1 3x3 32->16
        + 112 * 112 * 16 * 48
        + 56 * 56 * 48 * (9 + 24)  # 16->24 stride 2
        + 56 * 56 * 24 * 72
        + 28 * 28 * 72 * (9 + 40)  # 24->40 stride 2
        + 28 * 28 * 40 * 120
        + 14 * 14 * 120 * (9 + 80)  # 40->80 stride 2
        + 14 * 14 * 80 * 240
        + 14 * 14 * 240 * (9 + 96)  # 80->96 stride 1
        + 14 * 14 * 96 * 288
        + 7 * 7 * 288 * (9 + 192)  # 96->192 stride 2
        + 7 * 7 * 192 * 576
        + 7 * 7 * 576 * (9 + 320)  # 192->320
        + 7 * 7 * 320 * 1280
        + 1280 * 1000  # feature mix, classifier
    )
    params = (
        27 * 32
        + 64
        + 9 * 32
        + 64
        + 32 * 16
        + 32
        + sum(
            ci * m + 2 * m + 9 * m + 2 * m + m * co + 2 * co
            for ci, co, m in (
                (16, 24, 48),
                (24, 40, 72),
                (40, 80, 120),
                (80, 96, 240),
                (96, 192, 288),
                (192, 320, 576),
            )
        )
        + 320 * 1280
        + 2 * 1280
        + 1280 * 1000
        + 1000
    )
    assert M.cost(MIN_ARCH) == (macs, params) == (102_528_896, 2_154_984)
    assert M.flops(MIN_ARCH) == pytest.approx(102.528896) and M.params(MIN_ARCH) == pytest.approx(
        2.154984
    )
    assert M.SPACE.flops(MAX_ARCH) == pytest.approx(606.59072)  # mb6k7 everywhere


@pytest.mark.parametrize("cfg", [M.IMAGENET, M.NetConfig(width_mult=1.4)], ids=["w1.0", "w1.4"])
def test_closed_form_matches_flop_counter_at_224(cfg):
    archs = [MIN_ARCH, MAX_ARCH] + M.sample(np.random.default_rng(0), 2)
    for arch in archs:
        net = standalone(arch, cfg).eval()
        macs, params = M.cost(arch, cfg, 224)
        assert counted_macs(net, torch.randn(1, 3, 224, 224)) == macs, str(arch)
        assert sum(p.numel() for p in net.parameters()) == params, str(arch)


def test_closed_form_matches_flop_counter_at_32_cifar():
    for cfg in (M.CIFAR10, SMALL):
        for arch in [MIN_ARCH, MAX_ARCH] + M.sample(np.random.default_rng(1), 2):
            net = standalone(arch, cfg).eval()
            macs, params = M.cost(arch, cfg, 32)
            assert counted_macs(net, torch.randn(1, 3, 32, 32)) == macs, str(arch)
            assert sum(p.numel() for p in net.parameters()) == params
    assert M.flops(MIN_ARCH, M.CIFAR10, 32) < M.flops(MIN_ARCH)  # 32x32 CIFAR is cheaper


# ----------------------------------------------------------------- supernet
def test_layer_semantics_residual_and_skip():
    torch.manual_seed(0)
    spec = M.layer_plan(SMALL)[1]  # a residual layer (8 -> 8, stride 1)
    layer = MobileLayer(spec, M.OPS, range(7), affine=False).eval()
    x = torch.randn(2, 8, 6, 6)
    with torch.no_grad():
        a, b = layer.candidates["mb3k3"](x), layer.candidates["mb6k7"](x)
        torch.testing.assert_close(layer(x, (6,)), x)  # skip: the residual carries the input
        torch.testing.assert_close(layer(x, (0,)), x + a)
        torch.testing.assert_close(layer(x, (0, 6)), x + a)  # zero op adds nothing
        torch.testing.assert_close(layer(x, (0, 5)), x + a + b)  # Eq. 4: sum, residual once
    first = MobileLayer(M.layer_plan(SMALL)[4], M.MB_OPS, range(6), affine=False).eval()
    x = torch.randn(2, 8, 6, 6)
    with torch.no_grad():
        c, d = first.candidates["mb3k5"](x), first.candidates["mb6k3"](x)
        assert c.shape == (2, 16, 3, 3)
        torch.testing.assert_close(first(x, (1, 2)), c + d)  # no residual on a first layer


def test_feature_shapes_and_stems():
    net = Supernet(0.25, 10, stem="cifar").eval()
    with torch.no_grad():
        logits, feats = net(torch.randn(1, 3, 32, 32), MAX_ARCH, return_features=True)
    assert len(feats) == 1 + M.NUM_LAYERS == net.num_layers and logits.shape == (1, 10)
    assert [f.shape[-1] for f in feats] == [32] + [32] * 4 + [16] * 4 + [8] * 4 + [8] * 4 + [
        4
    ] * 4 + [4]
    big = Supernet(0.25, 10, M.SPACE.arch_mask(MIN_ARCH), stem="imagenet").eval()
    with torch.no_grad():
        assert big(torch.randn(1, 3, 64, 64), return_features=True)[1][-1].shape == (1, 80, 2, 2)


def test_single_path_training_touches_only_the_path():
    torch.manual_seed(0)
    net = Supernet(0.25, 10, stem="cifar").train()
    arch = M.sample(np.random.default_rng(3), 1)[0]
    loss = torch.nn.functional.cross_entropy(
        net(torch.randn(4, 3, 16, 16), arch), torch.tensor([0, 1, 2, 3])
    )
    loss.backward()
    for i, op in enumerate(arch.names):
        layer = net.layers[i + 1]
        for name, cand in layer.candidates.items():
            grads = [p.grad for p in cand.parameters()]
            if name == op:
                assert all(g is not None and g.abs().sum() > 0 for g in grads), (i, name)
            else:
                assert all(g is None for g in grads), (i, name)
    assert net.stem[0].weight.grad is not None and net.classifier.weight.grad is not None


def test_candidate_batchnorm_is_non_affine_in_the_supernet():
    net = Supernet(0.25, 10, stem="cifar")
    bn = net.layers[1].candidates["mb3k3"].project[1]
    assert not bn.affine and bn.track_running_stats
    assert net.stem[1].affine and net.head[1].affine
    assert (
        Supernet(0.25, 10, stem="cifar", affine=True)
        .layers[1]
        .candidates["mb3k3"]
        .project[1]
        .affine
    )


def test_restrict_refuses_a_bad_mask():
    net = Supernet(0.25, 10, M.SPACE.arch_mask(MIN_ARCH), stem="cifar")
    with pytest.raises(ValueError, match="mask"):
        net.restrict(((0,),) * 20)
