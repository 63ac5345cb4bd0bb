"""GM-NAS gradient-matching criterion (Hu et al., ICLR 2022) behind the split interface."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from naslid.gradmatch import GradMatchConfig, cosine_matrix, gradient_similarity
from naslid.spaces.nb201 import OPS
from naslid.split import MeasureConfigs, decide_split, min_cut, similarity_for_node
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
    sims = gradient_similarity(
        net, [batch], edges=[0, 3], config=GradMatchConfig(num_batches=1, mode="mask")
    )
    assert sorted(sims) == [0, 3]
    for s in sims.values():
        assert s.shape == (len(OPS), len(OPS))
        np.testing.assert_allclose(s, s.T, atol=1e-12)
        np.testing.assert_array_equal(np.diag(s), np.ones(len(OPS)))
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
        net, [batch, batch], edges=[2], config=GradMatchConfig(num_batches=2, mode="mask")
    )[2]
    i, j = OPS.index("nor_conv_1x1"), OPS.index("nor_conv_3x3")
    assert sims[i, j] == pytest.approx(1.0, abs=1e-6)
    assert sims[i, OPS.index("skip_connect")] < 0.999
    a, b, score = min_cut(sims)  # raw cosines (some negative) are accepted as they are
    assert sorted(a + b) == list(range(len(OPS))) and np.isfinite(score)


def test_single_path_mode_and_sub_supernet_mask(tiny):
    net, batch = tiny
    mask = net.space.check_mask(((0, 1, 3), (2,), (1, 4), (3,), (2,), (0, 2, 3, 4)))
    one = GradMatchConfig(num_batches=1)
    with pytest.raises(ValueError, match="not a split candidate"):  # partitioned edges
        gradient_similarity(net, [batch], mask, edges=[0], config=one)
    sims = gradient_similarity(net, [batch], mask, root=mask, config=one, seed=2)
    assert sorted(sims) == [0, 2, 5]
    assert sims[0].shape == (3, 3) and sims[2].shape == (2, 2) and sims[5].shape == (4, 4)
    # one path per repeat: another seed samples other paths, other gradients
    other = gradient_similarity(net, [batch], mask, root=mask, config=one, seed=3)
    assert not np.allclose(sims[5], other[5])
    # GM-NAS averages repeats: 3 batches give the mean of the 3 single-batch matrices
    three = gradient_similarity(
        net, [batch] * 3, edges=[1], config=GradMatchConfig(num_batches=3, mode="mask")
    )[1]
    single = gradient_similarity(
        net, [batch], edges=[1], config=GradMatchConfig(num_batches=1, mode="mask")
    )[1]
    np.testing.assert_allclose(three, single, atol=1e-9)  # same batch, no path sampled
    with pytest.raises(ValueError, match="1 given, num_batches=3"):
        gradient_similarity(net, [batch], edges=[1], config=GradMatchConfig(num_batches=3))


def test_gradients_are_taken_on_the_cell_weights_only(tiny):
    net, _ = tiny
    cell = {id(p) for p in net.cell_parameters(2)}
    own = {id(p) for p in net.candidate_parameters(2)}
    stem_head = {id(p) for m in (net.stem, net.head, net.classifier) for p in m.parameters()}
    assert cell and not cell & own and not cell & stem_head
    assert cell | own == {id(p) for p in net.layers.parameters()}


def test_gm_nas_edge_rule_and_balanced_cut(tiny):
    net, batch = tiny
    cfg = GradMatchConfig(num_batches=2)
    prof = similarity_for_node(
        "gradient", net, None, [batch, batch], edges=[1, 4], configs=MeasureConfigs(gradmatch=cfg)
    )
    assert prof.criterion == "gradient" and sorted(prof.edges) == [1, 4]
    assert all(p.vectors is None for p in prof.edges.values())
    d = decide_split(prof)
    expected = {}
    for e, p in prof.edges.items():
        # by hand: the 2|3 split with the least within-group distance (1 - cos) ...
        ops = range(len(p.options))
        best = min(
            (
                sum(
                    1 - p.similarity[i, j]
                    for g in (a, [k for k in ops if k not in a])
                    for i, j in itertools.combinations(g, 2)
                ),
                tuple(a),
            )
            for r in (2, 3)
            for a in itertools.combinations(ops, r)
            if 0 in a
        )[1]
        rest = [k for k in ops if k not in best]
        # ... scored by its cross-group distance; the largest wins
        expected[e] = sum(1 - p.similarity[i, j] for i in best for j in rest)
        if e == d.edge:
            assert sorted(map(sorted, d.groups)) == sorted([sorted(best), rest])
    assert d.scores == pytest.approx(expected)
    assert d.edge == max(expected, key=expected.get)
    assert {len(d.groups[0]), len(d.groups[1])} == {2, 3}
    with pytest.raises(ValueError, match=r"labelled \(x, y\)"):
        gradient_similarity(net, [batch[0]], edges=[1], config=cfg)


def test_gm_nas_defaults_are_its_public_code():
    cfg = GradMatchConfig()
    assert (cfg.num_batches, cfg.batch_size, cfg.mode) == (100, 64, "single_path")
