"""Similarity, min-cut, partition score and the partition tree (NAS-LID section 3.3)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from naslid.spaces import nb201
from naslid.split import (
    EdgeProfile,
    NodeProfile,
    PartitionTree,
    SplitDecision,
    block_similarity,
    build_tree,
    cut_value,
    decide_split,
    min_cut,
    normalised_dispersion,
    partition_score,
    random_bipartition,
    similarity_for_node,
    similarity_matrix,
)
from naslid.supernets.nb201 import Supernet

SPACE = nb201.SPACE


def test_similarity_matrix_hand_values():
    v = np.array([[0.0, 0.0], [3.0, 4.0], [6.0, 8.0]])
    s = similarity_matrix(v, "euclidean", eps=1e-6)
    assert s[0, 1] == pytest.approx(1 / (5 + 1e-6))
    assert s[0, 2] == pytest.approx(1 / (10 + 1e-6))
    assert s[1, 1] == pytest.approx(1e6)
    c = similarity_matrix(np.array([[1.0, 0.0], [1.0, 1.0], [0.0, 2.0]]), "cosine")
    assert c[0, 1] == pytest.approx(1 / math.sqrt(2)) and c[0, 2] == pytest.approx(0.0)
    p = similarity_matrix(np.array([[1.0, 2.0, 3.0], [2.0, 4.0, 6.5], [3.0, 2.0, 1.0]]), "pearson")
    assert p[0, 2] == pytest.approx(-1.0) and p[0, 1] == pytest.approx(
        np.corrcoef([1, 2, 3], [2, 4, 6.5])[0, 1]
    )
    with pytest.raises(ValueError, match="metric"):
        similarity_matrix(v, "manhattan")


def test_min_cut_recovers_two_blocks():
    groups = ([0, 2, 4], [1, 3])
    s = np.full((5, 5), 0.1)
    for g in groups:
        s[np.ix_(g, g)] = 1.0
    a, b, score = min_cut(s)
    assert (a, b) == groups
    assert score == pytest.approx(3 * 1.0 + 1 * 1.0)  # 3 pairs inside {0,2,4}, 1 inside {1,3}
    assert partition_score(s, a, b) + cut_value(s, a, b) == pytest.approx(
        s[np.triu_indices(5, 1)].sum()
    )


def test_min_cut_two_nodes_and_negative_weights():
    assert min_cut(np.array([[1.0, 0.3], [0.3, 1.0]])) == ([0], [1], 0.0)
    # negative weights (cosine): the cut must separate the anti-correlated pairs
    s = np.array(
        [
            [1.0, 0.9, -0.8, -0.7],
            [0.9, 1.0, -0.6, -0.9],
            [-0.8, -0.6, 1.0, 0.5],
            [-0.7, -0.9, 0.5, 1.0],
        ]
    )
    a, b, score = min_cut(s)
    assert (a, b) == ([0, 1], [2, 3]) and score == pytest.approx(1.4)


def test_stoer_wagner_agrees_with_enumeration():
    rng = np.random.default_rng(0)
    for _ in range(20):
        m = int(rng.integers(2, 8))
        w = rng.random((m, m))
        s = (w + w.T) / 2
        a, b, _ = min_cut(s)
        best = min(
            cut_value(s, [0, *c], [i for i in range(1, m) if i not in c])
            for r in range(m - 1)
            for c in itertools.combinations(range(1, m), r)
        )
        assert cut_value(s, a, b) == pytest.approx(best)
        assert sorted(a + b) == list(range(m)) and a and b


def test_min_cut_rejects_bad_input():
    with pytest.raises(ValueError, match="symmetric"):
        min_cut(np.array([[1.0, 0.2], [0.3, 1.0]]))
    with pytest.raises(ValueError, match="square"):
        min_cut(np.ones((2, 3)))
    with pytest.raises(ValueError, match="at least 2"):
        min_cut(np.ones((1, 1)))


def test_normalised_dispersion_hand_values():
    s = np.array([[0, 1.0, 2.0], [1.0, 0, 3.0], [2.0, 3.0, 0]])
    assert normalised_dispersion(s) == pytest.approx(math.sqrt(2 / 3) / 2)
    assert normalised_dispersion(np.array([[1, 0.4], [0.4, 1]])) == 0.0
    assert math.isnan(normalised_dispersion(np.ones((1, 1))))


def test_random_bipartition_is_balanced_and_seeded():
    for m in range(2, 6):
        a, b = random_bipartition(m, np.random.default_rng(3))
        assert sorted(a + b) == list(range(m)) and {len(a), len(b)} == {m // 2, m - m // 2}
        assert min_cut(block_similarity(m, a))[:2] == (a, b)
    draws = {tuple(random_bipartition(5, np.random.default_rng(s))[0]) for s in range(40)}
    assert len(draws) > 4


def _profile(mask, scores_by_edge=None, seed=0, criterion="lid", node_id="r") -> NodeProfile:
    """A crafted LID profile: random LID vectors per unsplit edge."""
    rng = np.random.default_rng(seed)
    edges = {}
    for e, allowed in enumerate(mask):
        if len(allowed) > 1:
            vec = rng.random((len(allowed), 8)) * 10
            edges[e] = EdgeProfile(allowed, similarity_matrix(vec), vec)
    return NodeProfile(criterion, mask, edges, node_id, seed)


def test_decide_split_picks_the_highest_partition_score():
    mask = SPACE.check_mask(((0, 1, 2), (3,), (0, 1, 2, 3), (2, 4), (0, 1, 2, 3, 4), (1,)))

    def blocks(m, ga, inside, across):
        s = np.full((m, m), across)
        gb = [i for i in range(m) if i not in ga]
        for g in (ga, gb):
            s[np.ix_(g, g)] = inside
        return s

    edges = {
        0: EdgeProfile(mask[0], blocks(3, [0, 1], 2.0, 0.1)),  # score 2
        2: EdgeProfile(mask[2], blocks(4, [0, 3], 3.0, 0.2)),  # score 3 + 3 = 6: the best
        3: EdgeProfile(mask[3], np.array([[1.0, 0.5], [0.5, 1.0]])),  # 1 + 1: score 0
        4: EdgeProfile(mask[4], blocks(5, [0, 1], 0.5, 0.01)),  # 0.5 + 3 * 0.5 = 2
    }
    d = decide_split(NodeProfile("lid", mask, edges))
    assert d.edge == 2
    assert d.groups == ((0, 3), (1, 2))
    assert d.scores == pytest.approx({0: 2.0, 2: 6.0, 3: 0.0, 4: 2.0})
    assert d.separability[3] == 0.0 and d.separability[2] > 0
    # no unsplit edge: nothing to decide
    single = SPACE.arch_mask(
        nb201.Arch.from_str("|none~0|+|skip_connect~0|none~1|+|none~0|none~1|none~2|")
    )
    assert decide_split(NodeProfile("lid", single, {})) is None


@pytest.mark.parametrize("rounds", [1, 2, 3])
def test_leaves_are_disjoint_and_cover_the_space(rounds, tmp_path):
    tree = PartitionTree(SPACE)
    for r in range(rounds):
        for leaf in tree.splittable():
            tree.apply(
                decide_split(_profile(leaf.mask, seed=r * 100 + len(leaf.id), node_id=leaf.id))
            )
    leaves = tree.leaves()
    assert len(leaves) == 2**rounds
    assert all(leaf.depth == rounds for leaf in leaves)
    assert sum(SPACE.mask_size(leaf.mask) for leaf in leaves) == 15625
    seen = {}
    for leaf in leaves:
        for arch in SPACE.all_archs(leaf.mask):
            assert arch not in seen
            seen[arch] = leaf.id
    assert len(seen) == 15625
    # every arch has exactly one leaf, found by leaf_for; the tree survives a JSON round trip
    path = tmp_path / "tree.json"
    tree.save(path)
    back = PartitionTree.load(path)
    assert back.to_json() == tree.to_json()
    for arch in SPACE.sample(np.random.default_rng(0), 300):
        assert back.leaf_for(arch).id == seen[arch]
    root = back.to_json()["nodes"]["r"]
    assert root["split_edge"] is not None and len(root["groups"]) == 2
    assert set(root["similarity"]) == set(root["scores"]) == set(root["separability"])


def test_edges_with_two_options_split_one_and_one_and_single_options_are_final():
    mask = SPACE.check_mask(((1, 3), (2,), (0,), (4,), (1,), (3,)))
    tree = PartitionTree(SPACE, mask)
    tree.apply(decide_split(_profile(mask)))
    assert [leaf.mask[0] for leaf in tree.leaves()] == [(1,), (3,)]
    assert tree.splittable() == []
    with pytest.raises(ValueError, match="outside"):
        tree.leaf_for(SPACE.make([0, 0, 0, 0, 0, 0]))


def test_apply_refuses_bad_decisions_and_decisions_round_trip():
    tree = PartitionTree(SPACE)
    d = decide_split(_profile(SPACE.full_mask()))
    back = SplitDecision.from_json(SPACE, d.to_json(SPACE))
    assert (back.edge, back.groups, back.scores) == (d.edge, d.groups, d.scores)
    bad = SplitDecision("r", d.edge, ((0, 1), (1, 2, 3, 4)), d.scores, d.separability, d.profile)
    with pytest.raises(ValueError, match="partition"):
        tree.apply(bad)
    other = _profile(SPACE.check_mask(((0, 1),) + SPACE.full_mask()[1:]))
    with pytest.raises(ValueError, match="different mask"):
        tree.apply(decide_split(other))
    tree.apply(back)
    with pytest.raises(ValueError, match="already split"):
        tree.apply(back)
    with pytest.raises(KeyError, match="no node"):
        tree.node("r7")


def test_random_criterion_and_lid_criterion_build_trees():
    net = Supernet(C=4, N=1, num_classes=10)
    tree = build_tree(net, [], rounds=3, criterion="random", seed=4)
    assert len(tree.leaves()) == 8
    again = build_tree(net, [], rounds=3, criterion="random", seed=4)
    assert again.to_json() == tree.to_json()
    for n in tree.nodes.values():
        if n.groups:
            assert abs(len(n.groups[0]) - len(n.groups[1])) <= 1  # balanced
    x = torch.randn(24, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    from naslid.lid import LIDConfig

    prof = similarity_for_node("lid", net, None, [x], lid_config=LIDConfig(k=8))
    assert sorted(prof.edges) == list(range(6))
    for p in prof.edges.values():
        assert p.vectors.shape == (5, 5) and p.similarity.shape == (5, 5)
        np.testing.assert_allclose(p.similarity, p.similarity.T)
    d = decide_split(prof)
    assert d.scores[d.edge] == max(d.scores.values())
    with pytest.raises(ValueError, match="criterion"):
        similarity_for_node("hessian", net, None, [x])


def test_cli_profile_then_merge_and_in_process_split(tmp_path, capsys):
    from naslid.cli import main
    from naslid.train import save_model

    torch.manual_seed(0)
    save_model(Supernet(C=4, N=1, num_classes=10), tmp_path / "model")
    common = [
        "--model",
        str(tmp_path / "model"),
        "--dataset",
        "digits",
        "--limit",
        "200",
        "--no-progress",
    ]
    assert main(["split", *common, "--rounds", "0", "--out", str(tmp_path / "t0.json")]) == 0
    assert (
        main(["profile-lid", *common, "--batch-size", "32", "--out", str(tmp_path / "p.json")]) == 0
    )
    prof = NodeProfile.load(tmp_path / "p.json", SPACE)
    assert prof.criterion == "lid" and sorted(prof.edges) == list(range(6))
    args = ["split", "--tree", str(tmp_path / "t0.json"), "--profiles", str(tmp_path / "p.json")]
    assert main([*args, "--out", str(tmp_path / "t1.json")]) == 0
    tree = PartitionTree.load(tmp_path / "t1.json")
    assert [n.id for n in tree.leaves()] == ["r0", "r1"]
    assert tree.node("r").split_edge == decide_split(prof).edge
    assert (
        main(
            [
                "split",
                *common,
                "--criterion",
                "random",
                "--rounds",
                "2",
                "--out",
                str(tmp_path / "t2.json"),
            ]
        )
        == 0
    )
    assert len(PartitionTree.load(tmp_path / "t2.json").leaves()) == 4
    assert (
        main(["profile-lid", *common, "--mask", '[["none"]]', "--out", str(tmp_path / "x.json")])
        == 1
    )
    assert "mask: expected 6 slots" in capsys.readouterr().err
