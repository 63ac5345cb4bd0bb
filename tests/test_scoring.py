"""Inherited-weight scoring: BN recalibration, grouping by sub-supernet, no side effects."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from naslid.data import synthetic
from naslid.saved_model import save_model
from naslid.scorer import Scorer
from naslid.scoring import ProxyEvaluator, ScoringConfig, path_accuracy, recalibrate_bn
from naslid.spaces import nb201
from naslid.supernets.nb201 import Supernet

ARCHS = nb201.sample(np.random.default_rng(1), 6)


@pytest.fixture(scope="module")
def data():
    return synthetic("train", n=96, num_classes=4, size=16), synthetic(
        "valid", n=40, num_classes=4, size=16
    )


def _net(seed: int) -> Supernet:
    torch.manual_seed(seed)
    return Supernet(C=4, N=1, num_classes=4)


def test_recalibration_gives_the_exact_mean_of_batch_statistics():
    net = _net(0).eval()
    batches = [torch.randn(8, 3, 16, 16) * (i + 1) + i for i in range(3)]
    recalibrate_bn(net, batches, ARCHS[0])
    stem_bn = net.stem[1]
    with torch.no_grad():
        outs = [net.stem[0](x) for x in batches]
    mean = torch.stack([o.mean(dim=(0, 2, 3)) for o in outs]).mean(0)
    var = torch.stack([o.var(dim=(0, 2, 3), unbiased=True) for o in outs]).mean(0)
    torch.testing.assert_close(stem_bn.running_mean, mean, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(stem_bn.running_var, var, rtol=1e-5, atol=1e-5)
    assert stem_bn.momentum == 0.1 and not net.training


def test_recalibrated_score_equals_the_standalone_network_recalibrated(tmp_path, data):
    train, val = data
    net = _net(1)
    save_model(net, tmp_path / "root")
    cfg = ScoringConfig(bn_batches=2, bn_batch_size=32, val_batch_size=16)
    ev = ProxyEvaluator([(nb201.full_mask(), tmp_path / "root")], train, val, cfg, device="cpu")
    arch = ARCHS[2]
    alone = net.export(arch)
    recalibrate_bn(alone, ev.calibration, None)
    assert ev([arch])[0] == pytest.approx(path_accuracy(alone, ev.validation, None))


def test_validation_and_calibration_subsets_hold_every_class_in_proportion(tmp_path):
    """val_limit and the BN calibration batches are class-stratified random draws: on a
    validation split sorted by class the first 40 images would all be class 0."""
    from naslid.data import ImageData

    labels = torch.arange(4).repeat_interleave(50)  # sorted by class
    images = torch.randint(0, 255, (200, 3, 16, 16), dtype=torch.uint8)
    data = ImageData(images, labels, ("a", "b", "c", "d"), (0.5,) * 3, (0.25,) * 3)
    save_model(_net(1), tmp_path / "root")
    cfg = ScoringConfig(bn_batches=2, bn_batch_size=20, val_batch_size=16, val_limit=40)
    ev = ProxyEvaluator([(nb201.full_mask(), tmp_path / "root")], data, data, cfg, device="cpu")
    seen = torch.cat([y for _, y in ev.validation])
    assert torch.bincount(seen, minlength=4).tolist() == [10, 10, 10, 10]
    assert len(ev.calibration) == 2 and all(len(x) == 20 for x in ev.calibration)
    calib = {tuple(x.flatten()[:8].tolist()) for b in ev.calibration for x in b}
    firsts = {
        tuple(((images[i].float() / 255 - 0.5) / 0.25).flatten()[:8].tolist()) for i in range(40)
    }
    assert not calib <= firsts  # not the first 40 training images (all of classes 0 and 1)


def test_scoring_groups_by_owner_loads_each_leaf_once_and_changes_nothing(tmp_path, data):
    train, val = data
    masks = [((0, 1),) + ((0, 1, 2, 3, 4),) * 5, ((2, 3, 4),) + ((0, 1, 2, 3, 4),) * 5]
    for i, mask in enumerate(masks):
        save_model(_net(10 + i).restrict(mask), tmp_path / f"leaf{i}", mask=mask)
    from naslid.saved_model import load_model

    loads: list[str] = []

    def loader(d):
        loads.append(d.name)
        return load_model(d)[0]

    ev = ProxyEvaluator(
        [(m, tmp_path / f"leaf{i}") for i, m in enumerate(masks)],
        train,
        val,
        ScoringConfig(bn_batches=2, bn_batch_size=32),
        device="cpu",
        loader=loader,
        space=nb201.SPACE,
    )
    assert isinstance(ev, Scorer)
    archs = ARCHS + [nb201.Arch((0,) + a.ops[1:]) for a in ARCHS[:2]]
    before = {i: {k: v.clone() for k, v in ev.net(i).state_dict().items()} for i in range(2)}
    loads.clear()
    scores = ev(archs)
    assert loads == [] and sorted(ev._nets) == [0, 1]  # already loaded: nothing loaded again
    assert scores.shape == (len(archs),) and np.all((scores >= 0) & (scores <= 100))
    for i in range(2):
        for k, v in ev.net(i).state_dict().items():
            assert torch.equal(v, before[i][k]), k
    np.testing.assert_array_equal(ev(archs[::-1]), scores[::-1])  # order does not matter

    with pytest.raises(ValueError, match="no sub-supernet holds it"):
        ProxyEvaluator([(masks[0], tmp_path / "leaf0")], train, val, device="cpu")(
            [nb201.Arch((3,) * 6)]
        )


def test_owner_is_the_first_mask_that_holds_the_arch():
    left, right = ((0, 1),) + ((0, 1, 2, 3, 4),) * 5, ((2, 3, 4),) + ((0, 1, 2, 3, 4),) * 5
    masks = {"0-1": right, "0-0": left}
    for arch in ARCHS:
        want = "0-0" if arch.ops[0] in (0, 1) else "0-1"
        assert nb201.SPACE.owner(masks, arch) == want
    assert nb201.SPACE.owner({"0-0": left}, nb201.Arch((3,) * 6)) is None
    assert nb201.SPACE.owner({"a": nb201.full_mask(), "b": left}, ARCHS[0]) == "a"


def test_recalibration_repairs_mixed_running_statistics(tmp_path, data):
    """A supernet's running statistics mix every path training sampled; scoring one path
    through them measures the wrong network, recalibrating measures the right one."""
    train, val = data
    net = _net(2)
    arch = ARCHS[0]
    x, y = train.images.float() / 255.0, train.labels  # the evaluator normalises likewise
    x = (x - torch.tensor(train.mean).view(1, 3, 1, 1)) / torch.tensor(train.std).view(1, 3, 1, 1)
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    net.train()
    for step in range(60):  # fit the path (its BN statistics follow)
        idx = torch.arange(step * 16, step * 16 + 16) % len(x)
        loss = torch.nn.functional.cross_entropy(net(x[idx], arch), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():  # other paths, other statistics: what the supernet's buffers hold
        for other in ARCHS[1:]:
            for _ in range(10):
                net(x[:32] * 4 + 2, other)
    save_model(net, tmp_path / "m")
    leaves = [(nb201.full_mask(), tmp_path / "m")]
    on = ProxyEvaluator(
        leaves, train, val, ScoringConfig(bn_batches=2, bn_batch_size=32), device="cpu"
    )
    off = ProxyEvaluator(leaves, train, val, ScoringConfig(recalibrate_bn=False), device="cpu")
    assert off([arch])[0] == pytest.approx(path_accuracy(net.eval(), off.validation, arch))
    assert len(on.calibration) == 2 and on.calibration[0].shape == (32, 3, 16, 16)
    assert on([arch])[0] > off([arch])[0] + 20  # points of accuracy


def test_non_finite_weights_or_inputs_are_refused_not_scored(tmp_path, data):
    import dataclasses

    from naslid.divergence import DivergedError

    train, val = data
    save_model(_net(2), tmp_path / "root")
    cfg = ScoringConfig(bn_batches=2, bn_batch_size=32, val_batch_size=16)
    broken_val = dataclasses.replace(val, std=(0.0, 0.0, 0.0))  # every input becomes inf
    ev = ProxyEvaluator(
        [(nb201.full_mask(), tmp_path / "root")], train, broken_val, cfg, device="cpu"
    )
    with pytest.raises(DivergedError, match="non-finite"):
        ev([ARCHS[0]])
    nan_net = _net(3)
    with torch.no_grad():
        nan_net.stem[0].weight[0] = float("nan")
    ev = ProxyEvaluator(
        [(nb201.full_mask(), tmp_path / "x")],
        train,
        val,
        cfg,
        device="cpu",
        loader=lambda d: nan_net,
    )
    with pytest.raises(
        DivergedError,
        match=r"sub-supernet .*x: refused: the weights are not finite \(NaN/inf in stem.0.weight\)",
    ):
        ev([ARCHS[0]])
