"""The NB201 supernet: single path, sum of a mask (Eq. 4), features, export, parameter groups."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from naslid.spaces import nb201
from naslid.supernets import build
from naslid.supernets.nb201 import Cell, Supernet

BEST = nb201.from_str(
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"
)


@pytest.fixture(scope="module")
def net():
    torch.manual_seed(0)
    n = Supernet(C=4, N=1, num_classes=3)
    with torch.no_grad():  # non-trivial BN statistics so eval mode is not the identity
        for m in n.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
    return n.eval()


def test_export_gives_the_same_output_and_only_the_path(net):
    x = torch.randn(5, 3, 32, 32)
    for arch in [BEST, *nb201.sample(np.random.default_rng(0), 10)]:
        alone = net.export(arch).eval()
        torch.testing.assert_close(alone(x), net(x, arch), rtol=0, atol=0)
        assert all(
            set(e.keys()) <= {nb201.OPS[arch.ops[i]]}
            for c in alone.layers
            if isinstance(c, Cell)
            for i, e in enumerate(c.edges)
        )
    assert sum(p.numel() for p in net.export(BEST).parameters()) < sum(
        p.numel() for p in net.parameters()
    )


def test_full_size_standalone_params_follow_the_cost_model():
    big = Supernet(affine=True).export(BEST)  # NAS-Bench-201 counts affine BN in the cells
    assert sum(p.numel() for p in big.parameters()) == round(nb201.params(BEST) * 1e6)


def test_mask_forward_is_the_sum_of_enabled_ops(net):
    x = torch.randn(2, 4, 32, 32)
    cell = net.layers[0]
    mask = (
        ((1, 3),) + ((0,),) * 2 + ((2, 4),) + ((0,),) * 2
    )  # node1 = skip+conv3; out = conv1(x)+pool(n1)
    out = cell(x, mask)  # node 1 feeds nothing: edges 4 and 5 are none
    node1 = x + cell.edges[0]["nor_conv_3x3"](x)
    expect = cell.edges[3]["nor_conv_1x1"](x) + cell.edges[3]["avg_pool_3x3"](x)
    torch.testing.assert_close(out, expect)
    mask2 = ((1, 3),) + ((0,),) * 3 + ((4,),) + ((0,),)  # out = pool(node1)
    torch.testing.assert_close(cell(x, mask2), cell.edges[4]["avg_pool_3x3"](node1))


def test_all_none_cell_outputs_zeros(net):
    x = torch.randn(2, 4, 32, 32)
    assert torch.count_nonzero(net.layers[0](x, ((0,),) * 6)) == 0


def test_features_one_per_cell_and_reduction():
    n = Supernet(C=4, N=2, num_classes=3).eval()
    logits, feats = n(torch.randn(2, 3, 32, 32), nb201.full_mask(), return_features=True)
    assert logits.shape == (2, 3) and len(feats) == 3 * 2 + 2 == n.num_layers
    assert [tuple(f.shape[1:]) for f in feats] == [(4, 32, 32)] * 2 + [(8, 16, 16)] * 3 + [
        (16, 8, 8)
    ] * 3
    streamed = list(n.iter_features(torch.zeros(1, 3, 32, 32), BEST))
    assert len(streamed) == len(feats)


def test_choice_outside_network_is_refused(net):
    alone = net.export(BEST)
    other = nb201.Arch((1,) * 6)
    with pytest.raises(ValueError, match="edge 0 asks for \\['skip_connect'\\]"):
        alone(torch.zeros(1, 3, 32, 32), other)


def test_shared_parameters_exclude_the_edge_candidates(net):
    own = {id(p) for p in net.candidate_parameters(2)}
    shared = net.shared_parameters(2)
    assert own and not own & {id(p) for p in shared}
    assert len(own) + len(shared) == len(list(net.parameters()))


def test_restrict_and_build_round_trip(net):
    mask = ((1, 3),) * 6
    sub = net.restrict(mask)
    again = build(sub.config())
    again.load_state_dict(sub.state_dict())
    x = torch.randn(2, 3, 32, 32)
    torch.testing.assert_close(
        again.eval()(x, BEST if nb201.contains(mask, BEST) else None), sub.eval()(x)
    )
