"""The NAS-Bench-201 space: strings, encoding, distances, sampling, cost model, isomorphism."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from naslid.spaces import nb201

BEST = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"


def test_ops_and_edges_in_benchmark_order():
    assert nb201.OPS == ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
    assert nb201.EDGES == ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))


def test_string_round_trip_all_cells():
    strings = {str(a) for a in nb201.all_archs()}
    assert len(strings) == 15625
    for text in list(strings)[:2000] + [BEST]:
        assert str(nb201.Arch.from_str(text)) == text
    assert nb201.from_str(BEST).names == ("nor_conv_3x3",) * 3 + (
        "skip_connect",
        "nor_conv_3x3",
        "nor_conv_1x1",
    )


@pytest.mark.parametrize(
    "bad, match",
    [
        ("|nor_conv_3x3~0|+|nor_conv_3x3~0|", "3 '\\+'-separated"),
        ("|conv~0|+|none~0|none~1|+|none~0|none~1|none~2|", "bad edge 'conv~0'"),
        ("|none~1|+|none~0|none~1|+|none~0|none~1|none~2|", "bad edge 'none~1'"),
        ("|none~0|+|none~0|+|none~0|none~1|none~2|", "node 2 needs 2 inputs"),
    ],
)
def test_bad_strings_name_the_problem(bad, match):
    with pytest.raises(ValueError, match=match):
        nb201.Arch.from_str(bad)


def test_encoding_is_30_dim_one_hot():
    a = nb201.from_str(BEST)
    x = nb201.encode(a)
    assert x.shape == (30,) and x.sum() == 6
    assert list(np.flatnonzero(x)) == [3, 5 + 3, 10 + 3, 15 + 1, 20 + 3, 25 + 2]
    assert nb201.encode([a, a]).shape == (2, 30)


def test_edit_distance_and_neighbours():
    a = nb201.from_str(BEST)
    n1 = nb201.neighbours(a, 1)
    assert len(n1) == 24 and len(set(n1)) == 24
    assert all(nb201.edit_distance(a, b) == 1 for b in n1)
    n2 = nb201.neighbours(a, 2)
    assert len(n2) == 15 * 16 and all(nb201.edit_distance(a, b) == 2 for b in n2)
    assert nb201.neighbours(a, 0) == [a]
    mask = ((3, 4),) + ((1, 2, 3),) * 5
    assert all(nb201.contains(mask, b) for b in nb201.neighbours(a, 1, mask))
    assert (
        len(nb201.neighbours(a, 1, mask)) == 1 + 5 * 2
    )  # edge 0: only avg_pool; edges 1-5: two others each


def test_sampling_stays_inside_mask_and_is_uniform():
    rng = np.random.default_rng(0)
    mask = ((0, 3),) * 3 + ((1, 2, 4),) * 3
    archs = nb201.sample(rng, 6000, mask)
    assert all(nb201.contains(mask, a) for a in archs)
    counts = np.bincount([a.ops[4] for a in archs], minlength=5)
    assert counts[0] == counts[3] == 0 and np.all(np.abs(counts[[1, 2, 4]] / 6000 - 1 / 3) < 0.03)
    assert nb201.sample(np.random.default_rng(5), 3) == nb201.sample(np.random.default_rng(5), 3)
    assert nb201.mask_size(mask) == 8 * 27 == len(list(nb201.all_archs(mask)))


def test_mask_json_round_trip_and_errors():
    mask = ((0, 3),) * 3 + ((1, 2, 4),) * 3
    assert nb201.SPACE.mask_from_json(nb201.SPACE.mask_to_json(mask)) == mask
    with pytest.raises(ValueError, match="slot 2 allows no option"):
        nb201.SPACE.check_mask(((0,), (1,), (), (1,), (1,), (1,)))
    with pytest.raises(ValueError, match="unknown option"):
        nb201.SPACE.mask_from_json([["conv"]] + [["none"]] * 5)


def test_flops_params_hand_computed():
    # all-none cell: stem, two residual reductions and the classifier only
    stem = 32 * 32 * 27 * 16
    red = 16 * 16 * (9 * 16 * 32 + 9 * 32 * 32 + 16 * 32) + 8 * 8 * (
        9 * 32 * 64 + 9 * 64 * 64 + 32 * 64
    )
    assert nb201.flops(nb201.Arch((0,) * 6)) == pytest.approx((stem + red + 650) / 1e6)
    one_conv = nb201.Arch((3, 0, 0, 0, 0, 0))
    assert nb201.flops(one_conv) - nb201.flops(nb201.Arch((0,) * 6)) == pytest.approx(
        5 * 9 * (1024 * 16 * 16 + 256 * 32 * 32 + 64 * 64 * 64) / 1e6
    )
    assert nb201.params(one_conv) - nb201.params(nb201.Arch((0,) * 6)) == pytest.approx(
        5 * (9 * (16**2 + 32**2 + 64**2) + 2 * (16 + 32 + 64)) / 1e6
    )


def test_flops_params_match_benchmark_table_for_all_cells(nb201_csv):
    frame = pd.read_csv(nb201_csv, usecols=["arch_str", "c10_flops_M", "c10_params_M"])
    assert len(frame) == 15625
    archs = [nb201.from_str(s) for s in frame["arch_str"]]
    ours_f = np.array([nb201.flops(a) for a in archs])
    ours_p = np.array([nb201.params(a) for a in archs])
    # the table keeps 6 significant figures
    np.testing.assert_allclose(ours_f, frame["c10_flops_M"], rtol=1e-5)
    np.testing.assert_allclose(ours_p, frame["c10_params_M"], rtol=1e-5)


def test_flops_params_per_dataset_cost_model():
    """Only the input size and the classifier differ between the three data sets."""
    none, conv = nb201.Arch((0,) * 6), nb201.Arch((3,) * 6)
    for a in (none, conv):
        # CIFAR-100: a 64 x 100 classifier instead of 64 x 10 (weights and bias)
        assert nb201.flops(a, "cifar100") - nb201.flops(a) == pytest.approx(90 * 65 / 1e6)
        assert nb201.params(a, "cifar100") - nb201.params(a) == pytest.approx(90 * 65 / 1e6)
        # ImageNet16-120: 16x16 input, every feature map a quarter of CIFAR's; 120 classes
        conv_part = nb201.flops(a) - 650 / 1e6
        assert nb201.flops(a, "ImageNet16-120") == pytest.approx(conv_part / 4 + 120 * 65 / 1e6)
        assert nb201.params(a, "ImageNet16-120") - nb201.params(a) == pytest.approx(110 * 65 / 1e6)
    assert nb201.flops(conv) == pytest.approx(220.11969)  # the largest CIFAR-10 cell
    assert nb201.SPACE.flops(conv, "ImageNet16-120") == nb201.flops(conv, "ImageNet16-120")
    with pytest.raises(ValueError, match="ImageNet16-120"):
        nb201.flops(conv, "imagenet")


def test_standard_isomorphism_gives_6466_unique_cells():
    assert nb201.num_classes() == 6466  # NAS-Bench-201's count of unique cells
    assert nb201.num_classes("functional") == 4930 and nb201.num_classes("none") == 15625
    reps = {nb201.canonical(a) for a in nb201.all_archs()}
    assert len(reps) == 6466 and all(nb201.canonical(r) == r for r in reps)
    assert sum(len(nb201.class_members(r)) for r in reps) == 15625
    # every standard class lies inside one functional class (the functional key is coarser)
    fun = {}
    for a in nb201.all_archs():
        fun.setdefault(nb201.canonical(a), set()).add(nb201.canonical(a, "functional"))
    assert all(len(v) == 1 for v in fun.values())
    # x + conv(x) reached through a skip into node 2 or directly: one function, but not one
    # standard class (the standard rule keeps each node's sum as written, zeros included)
    c = nb201.from_str(
        "|nor_conv_3x3~0|+|none~0|skip_connect~1|+|skip_connect~0|none~1|skip_connect~2|"
    )
    d = nb201.from_str("|nor_conv_3x3~0|+|none~0|none~1|+|skip_connect~0|skip_connect~1|none~2|")
    assert nb201.canonical(c, "functional") == nb201.canonical(d, "functional")
    assert nb201.canonical(c) != nb201.canonical(d)
    # an edge out of a node that is exactly zero is a zero term: these two are one class
    e = nb201.from_str("|none~0|+|nor_conv_3x3~0|nor_conv_1x1~1|+|none~0|none~1|skip_connect~2|")
    f = nb201.from_str("|none~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|none~0|none~1|skip_connect~2|")
    assert nb201.canonical(e) == nb201.canonical(f) and e != f
    assert set(nb201.class_members(e)) >= {e, f}
    with pytest.raises(ValueError, match="isomorphism"):
        nb201.canonical(c, "weird")


def test_every_class_has_one_accuracy_up_to_seed_noise(nb201_csv):
    """Isomorphic cells were trained separately: their accuracies differ by seed noise only."""
    frame = pd.read_csv(nb201_csv, usecols=["arch_str", "c10_test_acc_200", "c10v_valid_acc_200"])
    frame["cls"] = [str(nb201.canonical(nb201.from_str(s))) for s in frame["arch_str"]]
    multi = frame.groupby("cls").filter(lambda g: len(g) > 1)
    for col in ("c10_test_acc_200", "c10v_valid_acc_200"):
        spread = multi.groupby("cls")[col].agg(lambda x: x.max() - x.min())
        # most classes agree to a fraction of a point; a few seeds' runs differ more
        assert spread.median() < 0.5 and spread.quantile(0.95) < 1.5, (col, spread.quantile(0.95))
        # a random pairing of cells differs far more
        rng = np.random.default_rng(0)
        v = frame[col].to_numpy()
        assert np.median(np.abs(v - rng.permutation(v))) > 5 * spread.median()


def test_functional_isomorphism_classes():
    def canon(a):
        return nb201.canonical(a, "functional")

    # an edge leaving node 1 that feeds nothing, or a 'none', changes nothing
    a = nb201.from_str("|nor_conv_3x3~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|")
    b = nb201.from_str("|avg_pool_3x3~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|")
    assert canon(a) == canon(b)
    # skip into a node that is summed again: x + conv(x) either way
    c = nb201.from_str(
        "|nor_conv_3x3~0|+|none~0|skip_connect~1|+|skip_connect~0|none~1|skip_connect~2|"
    )
    d = nb201.from_str("|nor_conv_3x3~0|+|none~0|none~1|+|skip_connect~0|skip_connect~1|none~2|")
    assert canon(c) == canon(d)
    # a conv after node 2 is not a conv after node 1
    e = nb201.from_str("|nor_conv_3x3~0|+|none~0|none~1|+|none~0|nor_conv_1x1~1|none~2|")
    f = nb201.from_str("|nor_conv_3x3~0|+|none~0|skip_connect~1|+|none~0|none~1|nor_conv_1x1~2|")
    g = nb201.from_str("|nor_conv_1x1~0|+|none~0|skip_connect~1|+|none~0|none~1|nor_conv_3x3~2|")
    assert canon(e) == canon(f) != canon(g)
    # x + x is not x
    h = nb201.from_str(
        "|skip_connect~0|+|skip_connect~0|skip_connect~1|+|none~0|none~1|skip_connect~2|"
    )
    i = nb201.from_str("|skip_connect~0|+|none~0|skip_connect~1|+|none~0|none~1|skip_connect~2|")
    assert canon(h) != canon(i)
    disconnected = [x for x in nb201.all_archs() if not nb201.is_connected(x)]
    assert len(disconnected) == 341  # the benchmark's count of cells with no input-output path
    assert len({canon(x) for x in disconnected}) == 1
    assert canon(canon(a)) == canon(a) and canon(a) <= a
