"""MLE LID estimator and layer-wise profiling (NAS-LID section 3)."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch

from naslid.lid import (
    LIDConfig,
    batch_lid,
    fix_edge,
    knn_distances,
    mle_lid,
    profile,
    sample_batches,
    unsplit_edges,
)
from naslid.spaces import nb201
from naslid.supernets.nb201 import Supernet


def _embedded_gaussian(n: int, d: int, ambient: int = 100, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    z = torch.randn(n, d, generator=gen, dtype=torch.float64)
    basis, _ = torch.linalg.qr(torch.randn(ambient, d, generator=gen, dtype=torch.float64))
    return z @ basis.T  # a d-dimensional Gaussian inside R^100


@pytest.mark.parametrize("d", [2, 5, 10])
def test_gaussian_mean_lid_within_20_percent(d):
    x = _embedded_gaussian(2000, d)
    assert abs(mle_lid(x, k=20).mean().item() - d) <= 0.2 * d
    assert abs(mle_lid(x.float(), k=20).mean().item() - d) <= 0.2 * d


def test_hand_computed_values():
    # 1-d points 0, 1, 3, 7, 15 with k = 2: the query 0 sees r = (1, 3): LID = 2 / log 3.
    x = torch.tensor([[0.0], [1.0], [3.0], [7.0], [15.0]], dtype=torch.float64)
    lid = mle_lid(x, k=2)
    assert lid[0].item() == pytest.approx(2 / math.log(3))
    # the query 7: distances 7, 6, 4, 8 -> the two nearest are r = (4, 6)
    assert lid[3].item() == pytest.approx(2 / math.log(6 / 4))


def test_matches_brute_force_reference_and_excludes_self():
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(60, 7, generator=gen, dtype=torch.float64)
    dist, idx = knn_distances(x, k=5, chunk_size=11)
    full = torch.cdist(x, x)
    for i in range(60):
        others = [j for j in range(60) if j != i]
        ref = sorted(others, key=lambda j: full[i, j].item())[:5]
        assert idx[i].tolist() == ref
        assert i not in idx[i].tolist()
        assert torch.allclose(dist[i], full[i, ref], rtol=1e-9)
    ref_lid = 5 / torch.log(dist[:, -1:] / dist).sum(1)
    assert torch.allclose(mle_lid(x, k=5), ref_lid)


def test_duplicates_are_skipped_and_self_excluded_by_index():
    gen = torch.Generator().manual_seed(2)
    base = torch.randn(40, 6, generator=gen, dtype=torch.float64) * 100 + 1e3  # far from 0
    with_copies = torch.cat([base, base[3:4], base[3:4], base[3:4]])  # rows 40-42 copy row 3
    lid_base = mle_lid(base, k=8)
    lid_dup = mle_lid(with_copies, k=8)
    assert torch.isfinite(lid_dup).all()
    # row 3 and its copies see exactly the other 39 points: the copies are skipped
    for row in (3, 40, 41, 42):
        assert lid_dup[row].item() == pytest.approx(lid_base[3].item(), rel=1e-9)
    _, idx = knn_distances(with_copies, k=8)
    for row in (3, 40, 41, 42):
        assert not {3, 40, 41, 42} & set(idx[row].tolist())
    # float32 rounding must not turn copies into neighbours either
    assert torch.allclose(
        mle_lid(with_copies.float(), k=8)[[3, 40]], lid_base[[3, 3]].float(), rtol=1e-3
    )


def test_degenerate_batches_give_finite_documented_values():
    assert torch.equal(mle_lid(torch.ones(30, 4), k=5), torch.zeros(30))  # a point: LID 0
    one_hot = torch.eye(25)  # every pair at distance sqrt(2): the estimate is unbounded
    assert torch.equal(mle_lid(one_hot, k=5), torch.full((25,), 25.0))  # -> the ambient dim
    mostly_copies = torch.cat([torch.zeros(27, 3), torch.eye(3)])
    lid = mle_lid(mostly_copies, k=5)
    assert torch.isfinite(lid).all() and (lid >= 0).all()


def test_chunked_equals_unchunked():
    x = _embedded_gaussian(300, 4, ambient=20, seed=3)
    full = mle_lid(x, k=20)
    for chunk in (1, 7, 64, 299, 1000):
        assert torch.allclose(mle_lid(x, k=20, chunk_size=chunk), full, rtol=1e-12)
    assert torch.allclose(mle_lid(x.float(), k=20, chunk_size=7), full.float(), rtol=1e-4)


def test_too_few_samples_is_a_clear_error():
    with pytest.raises(ValueError, match="k=20 needs at least 21"):
        mle_lid(torch.randn(20, 3))
    with pytest.raises(ValueError, match="2-d"):
        mle_lid(torch.randn(30, 3, 2))


# ------------------------------------------------------------------------------ profile
@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    net = Supernet(C=4, N=1, num_classes=10)
    # running statistics of another input distribution, as a supernet's mixed ones are
    with torch.no_grad():
        net.train()
        for _ in range(5):
            net(torch.randn(32, 3, 8, 8) * 3 + 2)
    net.train()
    x = torch.randn(32, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    return net, x


def test_unsplit_edges_are_the_never_partitioned_ones():
    full = nb201.full_mask()
    mask = ((0, 1, 3), (2,), full[2], (1, 4), full[4], (0, 2))
    assert unsplit_edges(mask, full) == [2, 4]  # (0, 1, 3) still has 3 options, but was split
    root = ((0, 1, 3),) + full[1:]  # a partition that started from a restricted root
    assert unsplit_edges(mask, root) == [0, 2, 4]
    assert unsplit_edges(full, full) == list(range(len(full)))
    with pytest.raises(ValueError, match="root"):
        unsplit_edges(mask, full[:3])


def test_profile_uses_batch_statistics_and_leaves_every_buffer_bit_identical(tiny):
    net, x = tiny
    space = net.space
    full = space.full_mask()
    mask = space.check_mask(((0, 1, 3), (2,), full[2], (1, 4), full[4], (0, 2)))
    before = {k: v.clone() for k, v in net.state_dict().items()}
    prof = profile(net, [x], mask, config=LIDConfig(k=10, num_batches=1))
    assert sorted(prof) == [2, 4]  # the never-partitioned edges only
    for e, rows in prof.items():
        assert rows.shape == (len(mask[e]), net.num_layers)
        assert np.isfinite(rows).all() and (rows > 0).all()
    # BN running statistics (and every other buffer) bit-identical; train flags restored
    after = net.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert net.training and all(m.training for m in net.modules())
    # row = per-layer batch LID of the sub-supernet with the edge fixed to the op, its BN
    # normalising by the batch (a copy in train mode), not by the running statistics
    twin = copy.deepcopy(net).train()
    with torch.no_grad():
        _, feats = twin(x, fix_edge(mask, 2, 4), return_features=True)
        _, eval_feats = twin.eval()(x, fix_edge(mask, 2, 4), return_features=True)
    expected = [batch_lid(f, 10).item() for f in feats]
    np.testing.assert_allclose(prof[2][mask[2].index(4)], expected, rtol=1e-6)
    through_running = [batch_lid(f, 10).item() for f in eval_feats]
    assert not np.allclose(prof[2][mask[2].index(4)], through_running, rtol=1e-3)


def test_profile_averages_batches_and_single_path_mode(tiny):
    net, x = tiny
    y = torch.randn(32, 3, 8, 8, generator=torch.Generator().manual_seed(5))
    cfg = LIDConfig(k=10, num_batches=2)
    both = profile(
        net, [(x, torch.zeros(32)), (y, torch.zeros(32)), (x * 9, None)], edges=[1], config=cfg
    )
    one = LIDConfig(k=10, num_batches=1)
    one_x = profile(net, [x], edges=[1], config=one)
    one_y = profile(net, [y], edges=[1], config=one)
    np.testing.assert_allclose(both[1], (one_x[1] + one_y[1]) / 2, rtol=1e-6)
    sp = profile(
        net, [x], edges=[0, 4], config=LIDConfig(k=10, num_batches=1, mode="single_path"), seed=1
    )
    assert sp[0].shape == (len(nb201.OPS), net.num_layers) and np.isfinite(sp[0]).all()
    with pytest.raises(ValueError, match="not a split candidate"):
        profile(net, [x], net.space.check_mask(((1,),) + net.space.full_mask()[1:]), edges=[0])
    with pytest.raises(ValueError, match="not a split candidate"):  # partitioned earlier
        profile(net, [x], ((1, 2, 3),) + net.space.full_mask()[1:], edges=[0], config=one)
    with pytest.raises(ValueError, match="needs at least 21"):
        profile(net, [x[:16]], config=LIDConfig(num_batches=1))
    with pytest.raises(ValueError, match="1 given, num_batches=2"):  # silently noisier: refused
        profile(net, [x], edges=[1], config=cfg)


def test_lid_config_refuses_settings_that_cannot_work():
    with pytest.raises(ValueError, match="batch_size 20 must exceed k=20"):
        LIDConfig(batch_size=20)
    with pytest.raises(ValueError, match="num_batches"):
        LIDConfig(num_batches=0)
    with pytest.raises(ValueError, match="mode"):
        LIDConfig(mode="both")


def test_non_finite_features_are_refused(tiny):
    net, x = tiny
    with pytest.raises(ValueError, match="non-finite"):
        batch_lid(torch.full((32, 5), float("nan")), 10)
    broken = copy.deepcopy(net)
    with torch.no_grad():
        broken.stem[0].weight.fill_(float("inf"))
    with pytest.raises(ValueError, match="non-finite"):
        profile(broken, [x], edges=[0], config=LIDConfig(k=10, num_batches=1))


class _Labelled(torch.utils.data.Dataset):
    def __init__(self, n_per_class: int, classes: int):
        self.targets = [c for c in range(classes) for _ in range(n_per_class)]

    def __len__(self):
        return len(self.targets)

    def __getitem__(self, i):
        return torch.full((2,), float(i)), self.targets[i]


def test_sample_batches_are_stratified_and_disjoint():
    data = _Labelled(n_per_class=30, classes=10)
    batches = sample_batches(data, batch_size=25, num_batches=3, seed=0)
    seen = []
    for xb, yb in batches:
        assert xb.shape == (25, 2)
        assert set(yb.tolist()) == set(range(10))  # every class in every batch
        assert np.bincount(yb.numpy(), minlength=10).min() >= 2
        seen += xb[:, 0].long().tolist()
    assert len(seen) == len(set(seen)) == 75
    again = sample_batches(data, batch_size=25, num_batches=3, seed=0)
    assert all(torch.equal(a[0], b[0]) for a, b in zip(batches, again))
    with pytest.raises(ValueError, match="batch_size"):
        sample_batches(data, batch_size=301, num_batches=1)


def test_more_batches_than_the_data_holds_start_a_new_pass():
    data = _Labelled(n_per_class=3, classes=4)  # 12 samples; GM-NAS asks for 100 batches
    batches = sample_batches(data, batch_size=5, num_batches=7, seed=2)
    ids = [xb[:, 0].long().tolist() for xb, _ in batches]
    assert all(len(set(b)) == 5 for b in ids)  # no repeat within a batch
    assert not set(ids[0]) & set(ids[1])  # disjoint while a pass lasts (2 x 5 <= 12)
    assert len({tuple(sorted(b)) for b in ids}) > 3  # fresh draws, not one batch repeated


def test_sample_batches_from_image_data_are_normalised():
    from naslid.data import synthetic

    data = synthetic("train", n=120, num_classes=6)
    (x, y), (x2, _) = sample_batches(data, batch_size=30, num_batches=2, seed=1)
    assert x.dtype == torch.float32 and x.shape == (30, 3, 32, 32)
    assert set(y.tolist()) == set(range(6)) and np.bincount(y.numpy()).min() == 5
    assert abs(x.mean().item()) < 1.5 and not torch.equal(x, x2)
