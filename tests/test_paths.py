"""Names read from artifacts that become paths (node ids, leaf folders): validated where they
are read, and every joined path kept inside its root (issue 22, point 3)."""

from __future__ import annotations

import copy
import os

import pytest

from naslid.io import inside, write_json
from naslid.node_ids import check_node_id
from naslid.partition import PartitionTree
from naslid.spaces.nb201 import SPACE


def _split_tree() -> dict:
    """The JSON of a tree whose root is split on edge 0 into ops {0, 1} and {2, 3, 4}."""
    data = PartitionTree(SPACE).to_json()
    root = data["nodes"]["r"]
    full = root["mask"]
    for cid, ops in (("r0", full[0][:2]), ("r1", full[0][2:])):
        data["nodes"][cid] = {
            **copy.deepcopy(root),
            "id": cid,
            "parent": "r",
            "depth": 1,
            "mask": [ops, *full[1:]],
            "children": [],
        }
    root.update(split_edge=0, groups=[full[0][:2], full[0][2:]], children=["r0", "r1"])
    data["leaves"] = ["r0", "r1"]
    return data


def test_node_ids_follow_one_pattern():
    for good in ("r", "r0", "r0110"):
        assert check_node_id(good, "x") == good
    for bad in ("../../x", "/etc", "r0;rm", "r2", "", "r" + "0" * 33, 3, None):
        with pytest.raises(ValueError, match=r"^x: .* is not a node id"):
            check_node_id(bad, "x")


def test_a_well_formed_tree_loads():
    tree = PartitionTree.from_json(_split_tree(), "t.json")
    assert [n.id for n in tree.leaves()] == ["r0", "r1"]


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda d: d["nodes"].__setitem__("../../../../x", d["nodes"].pop("r1")), "not a node id"),
        (lambda d: d["nodes"]["r1"].__setitem__("parent", "r0"), "field 'parent' is 'r0'"),
        (lambda d: d["nodes"]["r"].__setitem__("children", ["r1", "r0"]), "field 'children'"),
        (lambda d: d["nodes"]["r1"].__setitem__("depth", 4), "field 'depth' is 4"),
        # the leaves overlap: r1 holds an option of r0 too
        (
            lambda d: d["nodes"]["r1"]["mask"][0].append(d["nodes"]["r0"]["mask"][0][0]),
            "do not divide the options of edge 0",
        ),
        (lambda d: d["nodes"]["r1"]["mask"].__setitem__(1, ["none"]), "on edge 1"),
    ],
)
def test_a_tree_whose_ids_or_masks_do_not_fit_is_refused(edit, message):
    data = _split_tree()
    edit(data)
    with pytest.raises(ValueError, match=message) as err:
        PartitionTree.from_json(data, "t.json")
    assert str(err.value).startswith("t.json: ") and "\n" not in str(err.value)


def test_joined_paths_stay_inside_their_root(tmp_path):
    assert inside(tmp_path, "leaves", "r0") == tmp_path / "leaves" / "r0"
    for parts in (("..", "x"), ("leaves", "../../x"), ("/etc/passwd",)):
        with pytest.raises(ValueError, match="leads outside"):
            inside(tmp_path, *parts)
    (tmp_path / "out").symlink_to("/")  # a planted link out of the folder
    with pytest.raises(ValueError, match="leads outside"):
        inside(tmp_path, "out", "etc")


def test_split_and_evolve_refuse_a_tree_that_is_a_list_or_names_a_path(tmp_path, capsys):
    from naslid.cli import main

    listed = tmp_path / "list.json"
    write_json(listed, [1, 2])
    assert main(["split", "--tree", str(listed), "--out", str(tmp_path / "t.json")]) == 1
    err = capsys.readouterr().err.strip()
    assert err == f"naslid split: error: {listed}: expected an object, found a list"
    data = _split_tree()
    data["nodes"]["../../../x"] = data["nodes"].pop("r1")
    bad = tmp_path / "tree.json"
    write_json(bad, data)
    args = ["evolve", "--space", "nb201", "--proxy", str(bad), "--budget", "4"]
    assert main([*args, "--out", str(tmp_path / "evo")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"naslid evolve: error: {bad}: node: '../../../x' is not a node id")
    assert not os.path.exists(tmp_path.parent / "x")


def test_write_errors_name_the_file(tmp_path, monkeypatch):
    """`[Errno 28] No space left on device`, `[Errno 20] Not a directory` said no file
    (issue 22, point 10)."""
    import errno

    (tmp_path / "afile").write_text("x")
    target = tmp_path / "afile" / "out.json"
    with pytest.raises(OSError, match=rf"^{target}: cannot create its folder \("):
        write_json(target, {})

    def full(src, dst):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "replace", full)
    with pytest.raises(OSError, match=rf"^{tmp_path / 'a.json'}: cannot be written \(No space"):
        write_json(tmp_path / "a.json", {})
    assert [p.name for p in tmp_path.iterdir()] == ["afile"]  # no temporary left


@pytest.mark.parametrize("content", [b"PAR1\x00\xff\xfe binary", b"\x89PNG\r\n\x1a\n\x00\x00"])
def test_a_table_that_is_no_csv_names_the_file(tmp_path, content):
    from naslid.benchmarks import load_table

    path = tmp_path / "t.csv"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=rf"table file {path} is (not UTF-8 text|not a)"):
        load_table(f"table:{path}:acc")


def test_a_table_of_another_space_is_refused_before_work(tmp_path, capsys):
    """`evolve --space mobilenet` with an NB201 table failed only after the search started
    (issue 22, point 10)."""
    from naslid.cli import main

    path = tmp_path / "nb201.csv"
    cell = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_1x1~1|+|skip_connect~0|nor_conv_3x3~1|avg_pool_3x3~2|"
    path.write_text(f"arch_str,acc\n{cell},90.0\n")
    for cmd in (["evolve", "--oracle"], ["lissnas", "--labels"]):
        argv = [cmd[0], "--space", "mobilenet", cmd[1], f"table:{path}:acc"]
        assert main([*argv, "--out", str(tmp_path / cmd[0])]) == 1
        err = capsys.readouterr().err.strip().splitlines()[-1]
        assert "the table does not fit space mobilenet" in err and str(path) in err


def test_a_mask_of_another_space_names_the_tree_and_node():
    data = _split_tree()
    data["nodes"]["r1"]["mask"] = data["nodes"]["r1"]["mask"][:2]
    with pytest.raises(ValueError, match=r"^t.json: node 'r1': .*mask") as err:
        PartitionTree.from_json(data, "t.json")
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "is empty"),
        (b"\xff\xfe\x00bad", "is not UTF-8 text"),
        (b"arch_str,score\nx,abc\n", "row 2: 'abc' is not a number"),
    ],
)
def test_scores_that_are_no_table_name_the_file(tmp_path, content, message):
    """`No columns to parse from file` and a codec error named no file (issue 22, point 10)."""
    from naslid.evaluate import load_scores

    path = tmp_path / "scores.csv"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=rf"^scores: {path}.*{message}"):
        load_scores(path)


def test_a_node_profile_naming_a_path_is_refused():
    """`split --profiles` accepted node ids with `../`, `;` or absolute paths (issue 22, 3)."""
    from naslid.node_profile import NodeProfile

    data = NodeProfile("lid", SPACE.full_mask(), {}, "r").to_json(SPACE)
    assert NodeProfile.from_json(SPACE, data, "p.json").node_id == "r"
    for bad in ("../../x", "/etc/x", "r0;rm -rf"):
        with pytest.raises(ValueError, match=r"^p.json: field 'node': .* is not a node id"):
            NodeProfile.from_json(SPACE, {**data, "node": bad}, "p.json")
