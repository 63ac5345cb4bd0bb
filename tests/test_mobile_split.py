"""Splitting a mobile space (NAS-LID section 3.3 on the ProxylessNAS and OFA spaces): every
layer is a candidate, a layer of 6, 7, 9 or 10 options is cut into balanced groups, OFA's depth
enters a split through the skip option of a unit's third and fourth layers, and LID is
profiled on the output of every layer. Crafted profiles, as for NB201 (tests/test_split.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from naslid import supernets
from naslid.lid import LIDConfig, profile, unsplit_edges
from naslid.node_profile import EdgeProfile, NodeProfile
from naslid.partition import PartitionTree
from naslid.spaces import mobilenet, ofa
from naslid.split import decide_split

OFA = ofa.SPACE
UNIT2_LAYER4 = 7  # slot of unit 2's fourth layer (options: nine MBConvs and skip)


def _crafted(space, mask, planted: dict[int, tuple[int, ...]], root=None, seed=0) -> NodeProfile:
    """Every never-split layer a candidate: a diffuse similarity (0.1-0.5) everywhere, except
    the layers of ``planted``, whose options (positions in the layer's mask) fall into the
    given group and the rest: 1.0 inside each group, 0.1 across. A planted layer wins under
    either reading of the edge rule (Eq. 6 sum made comparable, or mean inside the groups)."""
    rng = np.random.default_rng(seed)
    edges = {}
    for e in unsplit_edges(mask, root or mask):
        m = len(mask[e])
        if e in planted:
            s = np.full((m, m), 0.1)
            group = list(planted[e])
            rest = [i for i in range(m) if i not in group]
            for g in (group, rest):
                s[np.ix_(g, g)] = 1.0
        else:
            s = rng.uniform(0.1, 0.5, (m, m))
            s = (s + s.T) / 2
        np.fill_diagonal(s, 1.0)
        edges[e] = EdgeProfile(mask[e], s)
    return NodeProfile("lid", mask, edges)


def test_every_layer_is_a_candidate_and_nine_options_cut_four_five():
    full = OFA.full_mask()
    prof = _crafted(OFA, full, {12: (0, 2, 4, 6)})
    assert sorted(prof.edges) == list(range(20))  # all 20 layer slots
    d = decide_split(prof)
    assert d.edge == 12 and d.groups == ((0, 2, 4, 6), (1, 3, 5, 7, 8))


@pytest.mark.parametrize("layer,group", [(0, (0, 1, 2)), (5, (1, 3, 6))], ids=["6 ops", "7 ops"])
def test_proxylessnas_layers_cut_into_balanced_groups(layer, group):
    full = mobilenet.SPACE.full_mask()
    d = decide_split(_crafted(mobilenet.SPACE, full, {layer: group}))
    assert d.edge == layer and group in d.groups
    assert min(map(len, d.groups)) >= len(full[layer]) // 2


def test_a_split_on_a_skippable_layer_separates_depths():
    """Unit 2's fourth layer cut into {4 MBConvs, skip} | {5 MBConvs}: the second child holds
    only networks whose unit 2 has depth 4; the first holds every depth-2 and depth-3 one."""
    full = OFA.full_mask()
    skip = full[UNIT2_LAYER4].index(ofa.SKIP_INDEX)
    d = decide_split(_crafted(OFA, full, {UNIT2_LAYER4: (0, 1, 2, 3, skip)}))
    assert d.edge == UNIT2_LAYER4 and d.groups == ((0, 1, 2, 3, skip), (4, 5, 6, 7, 8))
    tree = PartitionTree(OFA)
    a, b = tree.apply(d)
    ma, mb = tree.node(a).mask, tree.node(b).mask
    assert OFA.mask_size(ma) + OFA.mask_size(mb) == OFA.mask_size()
    rng = np.random.default_rng(0)
    assert {x.depths[1] for x in OFA.sample(rng, 300, mb)} == {4}
    assert {x.depths[1] for x in OFA.sample(rng, 3000, ma)} == {2, 3, 4}
    shallow = OFA.from_str("_".join(["mb3k3-mb3k3-skip-skip"] * 5))
    assert tree.leaf_for(shallow).id == a
    # a tuple naming the same network (a choice left on a dropped layer) goes to the same leaf
    loose = OFA.make([*shallow.ops[:7], 8, *shallow.ops[8:]])
    assert tree.leaf_for(loose).id == a


def test_two_rounds_split_two_distinct_layers_per_leaf():
    tree = PartitionTree(OFA)
    root = OFA.full_mask()
    tree.apply(decide_split(_crafted(OFA, root, {UNIT2_LAYER4: (0, 1, 2, 3, 9)})))
    for child in ("r0", "r1"):
        mask = tree.node(child).mask
        prof = _crafted(OFA, mask, {3: (0, 1, 2, 3, 9), UNIT2_LAYER4: (0, 1)}, root=root)
        assert UNIT2_LAYER4 not in prof.edges  # never split twice
        d = decide_split(NodeProfile("lid", mask, prof.edges, child))
        assert d.edge == 3
        tree.apply(d)
    assert len(tree.leaves()) == 4
    assert sum(OFA.mask_size(leaf.mask) for leaf in tree.leaves()) == OFA.mask_size()
    for arch in OFA.sample(np.random.default_rng(1), 50):
        assert sum(OFA.contains(leaf.mask, arch) for leaf in tree.leaves()) == 1


def test_lid_is_profiled_on_every_layers_output(one_thread):
    """Each option of a skippable OFA layer gets one LID per block output: the fixed block
    and the 20 layer slots (with skip, the unit's output carried on)."""
    torch.manual_seed(0)
    net = supernets.from_options("ofa", {"width_mult": 0.25, "stem": "cifar"}, 10).eval()
    batches = [torch.randn(24, 3, 8, 8)]
    vecs = profile(net, batches, edges=[2], config=LIDConfig(k=5, batch_size=24, num_batches=1))
    assert vecs[2].shape == (10, 21) and np.isfinite(vecs[2]).all()
    # skip on layer 3 ends unit 1 there: layer 4's output equals layer 3's, so its LID too
    assert vecs[2][-1][3] == pytest.approx(vecs[2][-1][4])
