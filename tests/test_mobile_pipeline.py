"""NAS-LID's open-domain protocol (section 4, Table 4) through the whole DAG: the small
variants of the ProxylessNAS and OFA profiles under kfp.local, every stage's artifact checked."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
import torch

from naslid import artifacts, config, rerun, spaces
from naslid.cli import main
from naslid.io import read_json
from naslid.node_profile import NodeProfile
from naslid.partition import PartitionTree
from naslid.spaces.table4 import TABLE4


def test_mobile_profiles_follow_the_papers_protocol():
    """The paper's numbers in the full profiles: CIFAR stem, two split layers (four
    sub-supernets), 50 fine-tuning epochs, evolution 50 x 50, ImageNet transfer at 224 px."""
    for name, space in (("cifar10-proxyless", "mobilenet"), ("cifar10-ofa", "ofa")):
        p = config.get(name)
        assert (p.space, p.supernet_options.stem, p.rounds) == (space, "cifar", 2)
        assert p.train.finetune_epochs == 50 and p.dataset.startswith("cifar10")
        assert (p.evolution.population, p.evolution.generations) == (50, 50)
        assert (p.transfer, p.transfer_dataset, p.transfer_config.image_size) == (
            True,
            "imagefolder",
            224,
        )
        small = config.get(name.replace("cifar10", "smoke"))
        assert (small.space, small.rounds, small.supernet_options.stem) == (space, 2, "cifar")
    # Table 4's OFA networks are wider than any width-1.0 network of the space
    ofa = spaces.get("ofa")
    assert config.get("cifar10-ofa").transfer_config.width_mult == 1.2
    assert ofa.params(ofa.SPACE.make([8] * 20)) < min(r.params_m for r in TABLE4["ofa"])


def _by_kind(found: list[tuple[Path, dict]], kind: str) -> list[tuple[Path, dict]]:
    return [(d, m) for d, m in found if m["artifact"] == kind]


@pytest.mark.parametrize("profile", ["smoke-proxyless", "smoke-ofa"])
def test_mobile_profile_end_to_end(profile, tmp_path, capsys):
    """The small variant runs every step; the partition has four leaves, each split on two
    distinct layers; the search finds a network of the space; the transferred program takes
    the profile's input size; the report draws the network against Table 4."""
    prof = config.get(profile)
    space = spaces.get(prof.space).SPACE
    out = tmp_path / "run"
    assert main(["run", "--profile", profile, "--out", str(out)]) == 0
    run = json.loads((out / "run.json").read_text())
    assert run["status"] == "SUCCESS"
    steps = Counter(t["step"] for t in run["tasks"])
    assert steps == {
        "validate-params": 1,
        "prepare-data": 1,
        "pretrain-supernet": 1,
        "profile-lid": 1 + 2,
        "split-round": 2,
        "finetune-subsupernet": 2 + 4,
        "gather-subsupernets": 2,
        "lissnas-shrink": 1,
        "evolutionary-search": 1,
        "measure-latency": 1,
        "imagenet-transfer": 1,
        "report": 1,
    }
    found = rerun.run_artifacts(out)
    assert all(m.get("space", prof.space) == prof.space for _, m in found)
    # the supernet (round 0): the space's CIFAR stem at the profile's width
    partitions = sorted(_by_kind(found, artifacts.PARTITION), key=lambda dm: dm[1]["round"])
    assert [m["round"] for _, m in partitions] == [0, 1, 2]
    net = partitions[0][1]["supernet"]
    assert (net["space"], net["stem"], net["width_mult"]) == (prof.space, "cifar", 0.25)
    final_dir, final_meta = partitions[-1]
    tree = PartitionTree.load(final_dir / "tree.json")
    leaves = tree.leaves()
    assert len(leaves) == 4 and len(final_meta["leaves"]) == 4
    for leaf in leaves:
        edges, node = [], tree.node(leaf.parent)
        while node is not None:
            edges.append(node.split_edge)
            node = tree.node(node.parent) if node.parent else None
        assert len(edges) == 2 and len(set(edges)) == 2, (leaf.id, edges)
    assert sum(space.mask_size(leaf.mask) for leaf in leaves) == space.mask_size()
    # LID: the root profiled every layer, each option's LID at every layer's output; a
    # child of round 1 every layer but the one its parent split
    profiles = {m["node"]: d for d, m in _by_kind(found, artifacts.NODE_PROFILE)}
    assert sorted(profiles) == ["r", "r0", "r1"]
    root = NodeProfile.load(profiles["r"] / "profile.json", space)
    assert sorted(root.edges) == list(range(space.num_slots))
    for e, edge in root.edges.items():
        assert edge.vectors.shape == (len(space.slot_options[e]), 1 + space.num_slots)
    child = NodeProfile.load(profiles["r0"] / "profile.json", space)
    assert tree.node("r").split_edge not in child.edges
    assert len(child.edges) == space.num_slots - 1
    # the search: the best arch is a network of the space, in one leaf
    ((search_dir, _),) = _by_kind(found, artifacts.SEARCH)
    top = read_json(search_dir / "top.json")
    best = space.from_str(top[0]["arch"])
    assert space.is_network(best) and run["best_arch"] == str(best)
    assert tree.leaf_for(best).id in final_meta["leaves"]
    assert len(top) >= 1 and len({t["arch"] for t in top}) == len(top)
    # the transfer: the exported program takes the profile's ImageNet-layout input size
    ((transfer_dir, _),) = _by_kind(found, artifacts.TRANSFER)
    info = read_json(transfer_dir / "arch.json")
    size = prof.transfer_config.image_size
    assert (info["space"], info["arch"], info["image_size"]) == (prof.space, str(best), size)
    assert 0 <= info["top5"] <= 100 and info["top1"] <= info["top5"]
    program = torch.export.load(transfer_dir / "model.pt2").module()
    with torch.no_grad():
        assert program(torch.rand(2, 3, size, size)).shape == (2, 10)
    # the report: the network drawn, against Table 4's rows of the space
    md = (out / "report.md").read_text()
    assert "## Found network" in md and "## Transfer" in md
    for row in TABLE4[prof.space]:
        assert f"Table 4: {row.method}" in md
    assert "best architecture: " + str(best) in capsys.readouterr().out
