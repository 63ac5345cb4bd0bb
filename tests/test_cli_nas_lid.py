"""The NAS-LID chain from the command line: pretrain, split, finetune, evolve with the proxy."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from naslid.cli import main
from naslid.spaces import nb201
from naslid.split import PartitionTree


def test_pretrain_split_finetune_evolve_with_inherited_weights(tmp_path, capsys):
    sup = tmp_path / "supernet"
    common = ["--dataset", "synthetic", "--seed", "0", "--device", "cpu"]
    assert (
        main(
            [
                "pretrain",
                "--C",
                "4",
                "--N",
                "1",
                "--epochs",
                "1",
                "--batch-size",
                "64",
                "--out",
                str(sup),
                "--eval-paths",
                "1",
                "--no-progress",
                *common,
            ]
        )
        == 0
    )
    tree_path = tmp_path / "partition" / "tree.json"
    assert (
        main(
            [
                "split",
                "--model",
                str(sup),
                "--rounds",
                "1",
                "--batches",
                "1",
                "--batch-size",
                "64",
                "--out",
                str(tree_path),
                "--no-progress",
                *common,
            ]
        )
        == 0
    )
    tree = PartitionTree.load(tree_path)
    leaves = tree.leaves()
    assert [n.id for n in leaves] == ["r0", "r1"]
    for leaf in leaves:
        assert (
            main(
                [
                    "finetune",
                    "--tree",
                    str(tree_path),
                    "--node",
                    leaf.id,
                    "--parent",
                    str(sup),
                    "--epochs",
                    "1",
                    "--batch-size",
                    "64",
                    "--no-progress",
                    "--out",
                    str(tmp_path / "partition" / "leaves" / leaf.id),
                    *common,
                ]
            )
            == 0
        )
        meta = json.loads((tmp_path / "partition" / "leaves" / leaf.id / "meta.json").read_text())
        assert meta["node"] == leaf.id and nb201.SPACE.mask_from_json(meta["mask"]) == leaf.mask

    out = tmp_path / "search"
    assert (
        main(
            [
                "evolve",
                "--proxy",
                str(tree_path),
                "--population",
                "6",
                "--generations",
                "2",
                "--out",
                str(out),
                *common,
            ]
        )
        == 0
    )
    top = json.loads((out / "top.json").read_text())
    history = pd.read_csv(out / "history.csv")
    assert len(history) == 12 and history["arch"].nunique() == 12
    assert top[0]["score"] == history["score"].max() and 0 <= top[0]["score"] <= 100
    # every searched arch was scored by the leaf that holds it: both leaves were used
    owners = {tree.leaf_for(nb201.from_str(a)).id for a in history["arch"]}
    assert owners == {"r0", "r1"}
    assert "best " in capsys.readouterr().out


def test_evolve_proxy_names_missing_sub_supernets(tmp_path, capsys):
    tree = PartitionTree(nb201.SPACE)
    tree.save(tmp_path / "tree.json")
    assert (
        main(
            [
                "evolve",
                "--proxy",
                str(tmp_path / "tree.json"),
                "--out",
                str(tmp_path / "o"),
                "--dataset",
                "synthetic",
            ]
        )
        == 1
    )
    assert "no sub-supernet in" in capsys.readouterr().err


@pytest.mark.parametrize("node", ["r7"])
def test_finetune_unknown_node_is_one_clear_line(tmp_path, capsys, node):
    PartitionTree(nb201.SPACE).save(tmp_path / "tree.json")
    assert (
        main(
            [
                "finetune",
                "--tree",
                str(tmp_path / "tree.json"),
                "--node",
                node,
                "--parent",
                str(tmp_path / "parent"),
                "--out",
                str(tmp_path / "o"),
            ]
        )
        == 1
    )
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "no node 'r7'" in err
