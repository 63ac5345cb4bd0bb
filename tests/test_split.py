"""Similarity, min-cut, partition score and the partition tree (NAS-LID section 3.3)."""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pytest
import torch

from naslid.criteria import DEFAULT_CRITERION, MeasureConfigs, similarity_for_node
from naslid.cut import (
    SplitConfig,
    block_similarity,
    cut_value,
    lid_epsilon,
    mean_partition_score,
    min_cut,
    normalised_dispersion,
    partition_score,
    random_bipartition,
    relative_partition_score,
    similarity_matrix,
)
from naslid.lid import unsplit_edges
from naslid.node_ids import child_ids, node_ids, parent_id
from naslid.node_profile import EdgeProfile, NodeProfile
from naslid.partition import PartitionTree, SplitDecision
from naslid.spaces import nb201
from naslid.split import build_tree, decide_split
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


def _planted(groups, inside=1.0, across=0.1, m=5, noise=0.0, seed=0):
    rng = np.random.default_rng(seed)
    s = np.full((m, m), across)
    for g in groups:
        s[np.ix_(g, g)] = inside
    w = rng.random((m, m)) * noise
    return s + (w + w.T) / 2


def test_min_cut_recovers_two_blocks():
    groups = ([0, 2, 4], [1, 3])
    s = _planted(groups)
    a, b, score = min_cut(s)
    assert (a, b) == groups
    assert score == pytest.approx(3 * 1.0 + 1 * 1.0)  # 3 pairs inside {0,2,4}, 1 inside {1,3}
    assert partition_score(s, a, b) + cut_value(s, a, b) == pytest.approx(
        s[np.triu_indices(5, 1)].sum()
    )


def test_balanced_cut_recovers_a_planted_two_three_structure_stoer_wagner_does_not():
    """A tight pair and a looser triple: the unconstrained min-cut isolates one operation
    (the cheapest node to cut off), the Eq. 6 cut with |G| >= 2 finds the planted groups."""
    hits_balanced = hits_sw = 0
    for seed in range(50):
        rng = np.random.default_rng(seed)
        perm = [int(i) for i in rng.permutation(5)]
        pair, triple = sorted(perm[:2]), sorted(perm[2:])
        s = _planted((pair, triple), inside=1.0, across=0.35, noise=0.5, seed=seed)
        s[pair[0], pair[1]] = s[pair[1], pair[0]] = 3.0
        want = (pair, triple) if 0 in pair else (triple, pair)
        a, b, _ = min_cut(s)
        assert {len(a), len(b)} == {2, 3}
        hits_balanced += (a, b) == want
        a2, b2, _ = min_cut(s, "stoer_wagner")
        hits_sw += (a2, b2) == want
    assert hits_balanced == 50
    assert hits_sw < 25  # what the issue saw: the unconstrained cut finds it at most half the time


def test_balanced_cut_sizes_follow_floor_half():
    rng = np.random.default_rng(1)
    for m, sizes in ((2, {1}), (3, {1, 2}), (4, {2}), (5, {2, 3}), (6, {3}), (7, {3, 4})):
        w = rng.random((m, m))
        s = (w + w.T) / 2
        a, b, score = min_cut(s)
        assert {len(a), len(b)} == sizes and sorted(a + b) == list(range(m))
        best = max(
            partition_score(s, [0, *c], [i for i in range(1, m) if i not in c])
            for r in range(m // 2 - 1, m - m // 2)
            for c in itertools.combinations(range(1, m), r)
        )
        assert score == pytest.approx(best)  # the optimum among balanced cuts


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
    for cut in ("balanced", "stoer_wagner"):
        a, b, score = min_cut(s, cut)
        assert (a, b) == ([0, 1], [2, 3]) and score == pytest.approx(1.4)


def test_stoer_wagner_option_agrees_with_unconstrained_enumeration():
    rng = np.random.default_rng(0)
    for _ in range(20):
        m = int(rng.integers(2, 8))
        w = rng.random((m, m))
        s = (w + w.T) / 2
        a, b, _ = min_cut(s, "stoer_wagner")
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
    with pytest.raises(ValueError, match="cut"):
        min_cut(np.ones((3, 3)), "spectral")


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


def _profile(mask, seed=0, criterion="lid", node_id="r", root=None) -> NodeProfile:
    """A crafted LID profile: random LID vectors per split candidate (never-partitioned edge)."""
    rng = np.random.default_rng(seed)
    edges = {}
    for e in unsplit_edges(mask, root or mask):
        vec = rng.random((len(mask[e]), 8)) * 10
        edges[e] = EdgeProfile(mask[e], similarity_matrix(vec, eps=lid_epsilon(vec, 0.01)), vec)
    return NodeProfile(criterion, mask, edges, node_id, seed)


def _blocks(m, ga, inside, across):
    s = np.full((m, m), across, dtype=float)
    gb = [i for i in range(m) if i not in ga]
    for g in (ga, gb):
        s[np.ix_(g, g)] = inside
    return s


def test_lid_edge_rules_disagree_and_the_default_is_the_papers():
    """Section 3.3 splits the never-partitioned edge of highest partition score (Eq. 6): the
    edge whose operations are most alike (here the flat one). The separability option picks
    the clearly separable edge instead; each rule is recorded with its decision."""
    full = SPACE.full_mask()
    vec = np.array([[10.0, 20, 15, 5], [10.2, 20, 15, 5], [14, 9, 4, 2], [14, 9.1, 4, 2]])
    vec = np.vstack([vec, [14.1, 9, 4, 2]])
    flat = np.tile([12.0, 14, 9, 3], (5, 1)) + np.random.default_rng(0).normal(0, 0.05, (5, 4))
    dup = np.random.default_rng(1).uniform(2, 20, (5, 4))
    dup[3] = dup[1] + 1e-9  # one near-identical pair in an otherwise spread edge
    edges = {}
    for e, v in ((0, flat), (1, vec), (2, dup)):
        eps = lid_epsilon(v, SplitConfig().eps)
        edges[e] = EdgeProfile(full[e], similarity_matrix(v, eps=eps), v)
    paper = decide_split(NodeProfile("lid", full, edges))
    assert SplitConfig().edge_rule == "partition" and paper.edge_rule == "partition"
    assert paper.edge == 0  # the flattest edge: its operations are the most alike
    assert max(paper.partition_scores, key=paper.partition_scores.get) == 0  # = the Eq. 6 sum
    for e in edges:  # the score is Eq. 6 per pair (4 pairs in a 2|3 cut)
        assert paper.scores[e] == pytest.approx(paper.partition_scores[e] / 4)
    sep = decide_split(NodeProfile("lid", full, edges, config={"edge_rule": "separability"}))
    assert sep.edge == 1 and sep.groups == ((0, 1), (2, 3, 4)) and sep.edge_rule == "separability"
    back = SplitDecision.from_json(SPACE, json.loads(json.dumps(sep.to_json(SPACE))))
    assert back.edge_rule == "separability"
    with pytest.raises(ValueError, match="edge_rule"):
        decide_split(NodeProfile("lid", full, edges, config={"edge_rule": "widest"}))
    with pytest.raises(ValueError, match="edge_rule"):
        SplitConfig(edge_rule="widest")
    # with the absolute eps of an older naslid, one duplicate pair outweighs everything
    raw = {
        e: EdgeProfile(full[e], similarity_matrix(v, eps=1e-6), v)
        for e, v in ((0, flat), (1, vec), (2, dup))
    }
    assert decide_split(NodeProfile("lid", full, raw)).edge == 2  # eps must scale


def test_the_paper_rule_compares_edges_of_different_sizes_per_pair():
    """Eq. 6's sum grows with the pairs a cut keeps inside; across edges of different sizes
    the rule compares the mean, which ranks equal-size edges exactly as the sum does."""
    small = _blocks(4, [0, 1], 3.0, 0.1)  # 2 pairs inside, 3.0 each: sum 6, mean 3
    large = _blocks(6, [0, 1, 2], 2.5, 0.1)  # 6 pairs inside, 2.5 each: sum 15, mean 2.5
    assert partition_score(large, [0, 1, 2], [3, 4, 5]) > partition_score(small, [0, 1], [2, 3])
    assert mean_partition_score(small, [0, 1], [2, 3]) > mean_partition_score(
        large, [0, 1, 2], [3, 4, 5]
    )


def test_relative_partition_score_is_comparable_across_edge_sizes():
    # the same block structure at two sizes and two scales scores the same
    small = _blocks(4, [0, 1], 2.0, 0.5)
    large = _blocks(6, [0, 1, 2], 20.0, 5.0)
    assert relative_partition_score(small, [0, 1], [2, 3]) == pytest.approx(
        relative_partition_score(large, [0, 1, 2], [3, 4, 5])
    )
    assert relative_partition_score(np.ones((5, 5)), [0, 1], [2, 3, 4]) == pytest.approx(1.0)
    assert partition_score(large, [0, 1, 2], [3, 4, 5]) > partition_score(small, [0, 1], [2, 3])


def test_decide_split_scores_and_groups_by_hand():
    mask = SPACE.check_mask(((0, 1, 2), (3,), (0, 1, 2, 3), (2, 4), (0, 1, 2, 3, 4), (1,)))
    edges = {
        0: EdgeProfile(mask[0], _blocks(3, [0, 1], 2.0, 0.1)),
        2: EdgeProfile(mask[2], _blocks(4, [0, 3], 3.0, 0.2)),
        3: EdgeProfile(mask[3], np.array([[1.0, 0.5], [0.5, 1.0]])),
        4: EdgeProfile(mask[4], _blocks(5, [0, 1], 0.5, 0.01)),
    }
    d = decide_split(NodeProfile("lid", mask, edges))
    # the paper's rule: the mean similarity inside the groups (Eq. 6 per pair)
    assert d.scores[0] == pytest.approx(2.0) and d.scores[2] == pytest.approx(3.0)
    assert d.scores[4] == pytest.approx(0.5)
    assert math.isnan(d.scores[3])  # a 1|1 split keeps no pair together
    assert d.edge == 2 and d.groups == ((0, 3), (1, 2))
    # the separability option: mean inside / mean across
    s = decide_split(NodeProfile("lid", mask, edges, config={"edge_rule": "separability"}))
    assert s.scores[0] == pytest.approx(2.0 / 0.1)
    assert s.scores[2] == pytest.approx(3.0 / 0.2)
    assert s.scores[4] == pytest.approx(0.5 / 0.01)
    assert s.edge == 4 and s.groups == ((0, 1), (2, 3, 4))
    assert d.partition_scores == pytest.approx({0: 2.0, 2: 6.0, 3: 0.0, 4: 2.0})
    assert d.separability[3] == 0.0 and d.separability[2] > 0
    back = SplitDecision.from_json(SPACE, json.loads(json.dumps(d.to_json(SPACE))))
    assert back.partition_scores == pytest.approx(d.partition_scores)
    # GM-NAS's rule on the same matrices (read as cosines): the largest cross distance
    g = decide_split(NodeProfile("gradient", mask, edges))
    assert g.scores[4] == pytest.approx(6 * (1 - 0.01)) and g.edge == 4
    assert g.scores[2] == pytest.approx(4 * (1 - 0.2))
    # no unsplit edge: nothing to decide
    single = SPACE.arch_mask(
        nb201.Arch.from_str("|none~0|+|skip_connect~0|none~1|+|none~0|none~1|none~2|")
    )
    assert decide_split(NodeProfile("lid", single, {})) is None


@pytest.mark.parametrize("rounds", [1, 2, 3, 4])
def test_r_rounds_split_r_distinct_edges_into_balanced_disjoint_leaves(rounds, tmp_path):
    tree = PartitionTree(SPACE)
    root = SPACE.full_mask()
    for r in range(rounds):
        for leaf in tree.splittable():
            assert tree.candidates(leaf.id) == [
                e for e in range(len(root)) if leaf.mask[e] == root[e]
            ]  # never-partitioned edges only
            prof = _profile(leaf.mask, seed=r * 100 + len(leaf.id), node_id=leaf.id, root=root)
            tree.apply(decide_split(prof))
    leaves = tree.leaves()
    assert [leaf.id for leaf in leaves] == node_ids(rounds)
    assert all(leaf.depth == rounds for leaf in leaves)
    for leaf in leaves:
        split = [e for e in range(len(root)) if leaf.mask[e] != root[e]]
        assert len(split) == rounds  # R distinct edges on every root-to-leaf path
        assert all(len(leaf.mask[e]) in (2, 3) for e in split)  # balanced 2|3 cuts
        path, node = [], tree.node(leaf.parent)
        while node is not None:
            path.append(node.split_edge)
            node = tree.node(node.parent) if node.parent else None
        assert sorted(path) == split
    sizes = sorted(SPACE.mask_size(leaf.mask) for leaf in leaves)
    assert sum(sizes) == SPACE.mask_size(root)
    assert sizes[-1] / sizes[0] <= (3 / 2) ** rounds  # never 9,375 against 625
    if rounds == 2:
        rest = len(root[0]) ** (len(root) - 2)  # the choices of the edges not split
        assert sorted(set(sizes)) <= [2 * 2 * rest, 2 * 3 * rest, 3 * 3 * rest]
    seen = {}
    for leaf in leaves:
        for arch in SPACE.all_archs(leaf.mask):
            assert arch not in seen
            seen[arch] = leaf.id
    assert len(seen) == SPACE.mask_size(root)
    # every arch has exactly one leaf, found by leaf_for; the tree survives a JSON round trip
    path = tmp_path / "tree.json"
    tree.save(path)
    back = PartitionTree.load(path)
    assert back.to_json() == tree.to_json()
    for arch in SPACE.sample(np.random.default_rng(0), 300):
        assert back.leaf_for(arch).id == seen[arch]
    root_json = back.to_json()["nodes"]["r"]
    assert root_json["split_edge"] is not None and len(root_json["groups"]) == 2
    assert (
        set(root_json["similarity"]) == set(root_json["scores"]) == set(root_json["separability"])
    )


def test_a_partitioned_edge_is_never_split_again():
    tree = PartitionTree(SPACE)
    full = SPACE.full_mask()
    first = decide_split(_profile(full))
    tree.apply(first)
    child = tree.node("r0")
    assert first.edge not in tree.candidates("r0")
    # a profile that (wrongly) measured the partitioned edge too is refused when it wins
    edges = {
        first.edge: EdgeProfile(
            child.mask[first.edge], _blocks(len(child.mask[first.edge]), [0], 9.0, 0.001)
        )
    }
    forced = decide_split(NodeProfile("lid", child.mask, edges, "r0"))
    with pytest.raises(ValueError, match="already partitioned"):
        tree.apply(forced)


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
    assert [leaf.id for leaf in tree.leaves()] == node_ids(3)
    again = build_tree(net, [], rounds=3, criterion="random", seed=4)
    assert again.to_json() == tree.to_json()
    for n in tree.nodes.values():
        if n.groups:
            assert abs(len(n.groups[0]) - len(n.groups[1])) <= 1  # balanced
    x = torch.randn(24, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    from naslid.lid import LIDConfig

    configs = MeasureConfigs(lid=LIDConfig(k=8, num_batches=1))
    prof = similarity_for_node("lid", net, None, [x], configs=configs)
    assert sorted(prof.edges) == list(range(len(SPACE.slot_options)))
    for p in prof.edges.values():
        m = len(p.options)
        assert p.vectors.shape == (m, net.num_layers) and p.similarity.shape == (m, m)
        np.testing.assert_allclose(p.similarity, p.similarity.T)
        eps = lid_epsilon(p.vectors, SplitConfig().eps)  # Eq. 5 with the scaled eps
        np.testing.assert_allclose(p.similarity, similarity_matrix(p.vectors, eps=eps))
    lid_tree = build_tree(net, [x], rounds=2, configs=configs)
    assert lid_tree.node("r").split_edge == decide_split(prof).edge
    for leaf in lid_tree.leaves():
        assert sum(a != b for a, b in zip(leaf.mask, SPACE.full_mask())) == 2
    with pytest.raises(ValueError, match="criterion"):
        similarity_for_node("hessian", net, None, [x])


def test_cli_profile_then_merge_and_in_process_split(tmp_path, capsys):
    from naslid.cli import main
    from naslid.saved_model import save_model

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
    assert prof.criterion == DEFAULT_CRITERION
    assert sorted(prof.edges) == list(range(len(SPACE.slot_options)))
    args = ["split", "--tree", str(tmp_path / "t0.json"), "--profiles", str(tmp_path / "p.json")]
    assert main([*args, "--out", str(tmp_path / "t1.json")]) == 0
    tree = PartitionTree.load(tmp_path / "t1.json")
    assert [n.id for n in tree.leaves()] == node_ids(1)
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
    assert [n.id for n in PartitionTree.load(tmp_path / "t2.json").leaves()] == node_ids(2)
    assert (
        main(["profile-lid", *common, "--mask", '[["none"]]', "--out", str(tmp_path / "x.json")])
        == 1
    )
    assert f"mask: expected {len(SPACE.slot_options)} slots" in capsys.readouterr().err


def test_node_ids_are_paths_from_the_root():
    assert node_ids(0) == ["r"] and node_ids(2) == ["r00", "r01", "r10", "r11"]
    for level in range(4):
        ids = node_ids(level)
        assert len(set(ids)) == 2**level
        assert [c for n in ids for c in child_ids(n)] == node_ids(level + 1)
        assert all(parent_id(c) == n for n in ids for c in child_ids(n))
    assert parent_id("r") is None
    tree = PartitionTree(SPACE)
    assert tree.apply(decide_split(_profile(SPACE.full_mask()))) == child_ids(tree.root)


def test_the_split_public_names_stay_in_naslid_split():
    from naslid import criteria, cut, partition, split

    assert split.min_cut is cut.min_cut and split.decide_split is not None
    assert split.PartitionTree is partition.PartitionTree
    assert split.criterion is criteria.criterion
    assert split.CRITERIA_REGISTRY is criteria.CRITERIA_REGISTRY
    assert split.NodeProfile is NodeProfile
    assert all(hasattr(split, name) for name in split.__all__)
