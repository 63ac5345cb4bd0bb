"""GM-NAS gradient-matching criterion (Hu et al., ICLR 2022) behind the split interface."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from naslid.gradmatch import GradMatchConfig, cosine_matrix, gradient_similarity
from naslid.spaces.nb201 import OPS
from naslid.split import decide_split, min_cut, similarity_for_node
from naslid.supernets.nb201 import Cell, Supernet


@pytest.fixture()
def tiny():
    torch.manual_seed(0)
    net = Supernet(C=4, N=1, num_classes=10)
    gen = torch.Generator().manual_seed(0)
    batch = (torch.randn(16, 3, 8, 8, generator=gen), torch.randint(0, 10, (16,), generator=gen))
    return net, batch


def test_cosine_matrix_hand_values():
    v = torch.tensor([[1.0, 0.0], [0.0, 2.0], [3.0, 3.0], [0.0, 0.0]])
    s = cosine_matrix(v)
    r = 1 / math.sqrt(2)
    expected = np.array([[1, 0, r, 0], [0, 1, r, 0], [r, r, 1, 0], [0, 0, 0, 1]])
    np.testing.assert_allclose(s, expected, atol=1e-12)  # a zero gradient: similar to nothing


def test_similarity_matrices_are_well_formed_and_network_untouched(tiny):
    net, batch = tiny
    before = {k: v.clone() for k, v in net.state_dict().items()}
    net.eval()
    sims = gradient_similarity(net, [batch], edges=[0, 3])
    assert sorted(sims) == [0, 3]
    for s in sims.values():
        assert s.shape == (5, 5)
        np.testing.assert_allclose(s, s.T, atol=1e-12)
        np.testing.assert_array_equal(np.diag(s), np.ones(5))
        assert (s >= -1).all() and (s <= 1).all()
        assert not np.allclose(s, 1.0)  # different operations pull differently
    after = net.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # BN statistics restored
    assert not net.training and all(p.grad is None for p in net.parameters())


def test_identical_operations_have_similarity_one(tiny):
    net, batch = tiny
    # make every cell's 3x3 conv on edge 2 compute exactly its 1x1 conv (centre tap only)
    with torch.no_grad():
        for layer in net.layers:
            if isinstance(layer, Cell):
                c1, c3 = layer.edges[2]["nor_conv_1x1"][1], layer.edges[2]["nor_conv_3x3"][1]
                c3.weight.zero_()
                c3.weight[:, :, 1, 1] = c1.weight[:, :, 0, 0]
    sims = gradient_similarity(
        net, [batch, batch], edges=[2], config=GradMatchConfig(num_batches=2)
    )[2]
    i, j = OPS.index("nor_conv_1x1"), OPS.index("nor_conv_3x3")
    assert sims[i, j] == pytest.approx(1.0, abs=1e-6)
    assert sims[i, OPS.index("skip_connect")] < 0.999
    a, b, score = min_cut(sims)  # raw cosines (some negative) are accepted as they are
    assert sorted(a + b) == list(range(5)) and np.isfinite(score)


def test_single_path_mode_and_sub_supernet_mask(tiny):
    net, batch = tiny
    mask = net.space.check_mask(((0, 1, 3), (2,), (1, 4), (3,), (2,), (0, 2, 3, 4)))
    sims = gradient_similarity(
        net, [batch], mask, config=GradMatchConfig(mode="single_path"), seed=2
    )
    assert sorted(sims) == [0, 2, 5]
    assert sims[0].shape == (3, 3) and sims[2].shape == (2, 2) and sims[5].shape == (4, 4)


def test_one_interface_for_the_pipeline(tiny):
    net, batch = tiny
    prof = similarity_for_node("gradient", net, None, [batch], edges=[1, 4])
    assert prof.criterion == "gradient" and sorted(prof.edges) == [1, 4]
    assert all(p.vectors is None for p in prof.edges.values())
    d = decide_split(prof)
    assert d.edge in (1, 4) and sorted(d.groups[0] + d.groups[1]) == list(range(5))
    with pytest.raises(ValueError, match=r"labelled \(x, y\)"):
        gradient_similarity(net, [batch[0]], edges=[1])
