"""An output never replaces an input of the same command, and an empty --out is refused
(issue 22, point 6): one line naming both, before any work."""

from __future__ import annotations

import pytest
import torch

from naslid.cli import main
from naslid.io import write_json
from naslid.saved_model import save_model
from naslid.supernets.nb201 import Supernet


def test_evaluate_out_equal_to_scores_is_refused(tmp_path, capsys):
    scores = tmp_path / "scores.csv"
    scores.write_text("arch_str,score\n")
    before = scores.read_bytes()
    table = f"table:{tmp_path / 't.csv'}:acc"
    assert main(["evaluate", "--scores", str(scores), "--table", table, "--out", str(scores)]) == 1
    assert capsys.readouterr().err.strip() == (
        f"naslid evaluate: error: --out {scores}: is or lies inside --scores {scores}; "
        "choose another output"
    )
    assert scores.read_bytes() == before


def test_finetune_out_equal_to_or_inside_the_parent_is_refused(tmp_path, capsys):
    torch.manual_seed(0)
    parent = tmp_path / "sup"
    save_model(Supernet(C=4, N=1, num_classes=10), parent)
    before = (parent / "supernet.pt").read_bytes()
    write_json(tmp_path / "tree.json", {})
    for out in (parent, parent / "child"):
        args = ["finetune", "--tree", str(tmp_path / "tree.json"), "--node", "r0"]
        assert main([*args, "--parent", str(parent), "--out", str(out)]) == 1
        assert capsys.readouterr().err.strip() == (
            f"naslid finetune: error: --out {out}: is or lies inside --parent {parent}; "
            "choose another output"
        )
    assert (parent / "supernet.pt").read_bytes() == before


def test_pretrain_out_that_holds_its_data_or_is_empty_is_refused(tmp_path, capsys, monkeypatch):
    data = tmp_path / "runs" / "cifar"
    data.mkdir(parents=True)
    args = ["pretrain", "--dataset", "cifar10", "--data-root", str(data)]
    assert main([*args, "--out", str(tmp_path / "runs")]) == 1
    assert "holds --data-root" in capsys.readouterr().err
    monkeypatch.chdir(tmp_path)
    assert main(["pretrain", "--out", ""]) == 1
    assert capsys.readouterr().err.strip() == (
        "naslid pretrain: error: --out: empty; give the output's path"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["runs"]  # nothing written here


@pytest.mark.parametrize("existing", ["cat/x.png", "train/cat/x.png", "notes.txt"])
def test_transfer_data_into_a_data_set_is_refused(tmp_path, capsys, existing):
    out = tmp_path / "imagenet"
    (out / existing).parent.mkdir(parents=True, exist_ok=True)
    (out / existing).write_bytes(b"x")
    assert main(["transfer-data", "--out", str(out)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"naslid transfer-data: error: --out {out}: ") and "\n" not in err
    assert not (out / "train" / "0").exists()
