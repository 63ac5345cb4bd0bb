"""The artifact seal (naslid.io.seal_meta / verify_meta) covers every file a loader reads,
weights included; a missing seal is refused; removing checkpoints or resuming a finished
run leaves a finished artifact loadable (issue 22, point 7)."""

from __future__ import annotations

import shutil

import pytest
import torch

from naslid.cli import main
from naslid.io import CorruptFileError, read_json, write_json
from naslid.saved_model import load_model, save_model
from naslid.supernets.nb201 import Supernet


def _model(path, seed: int):
    torch.manual_seed(seed)
    save_model(Supernet(C=4, N=1, num_classes=10), path)
    return path


def test_weights_of_another_model_are_refused(tmp_path):
    a, b = _model(tmp_path / "a", 0), _model(tmp_path / "b", 1)
    shutil.copy(b / "supernet.pt", a / "supernet.pt")  # same shapes, another model
    with pytest.raises(CorruptFileError, match=r"a/supernet.pt: modified or damaged after"):
        load_model(a)
    (a / "supernet.pt").unlink()
    (a / "supernet.pt").symlink_to(b / "supernet.pt")
    with pytest.raises(CorruptFileError, match=r"a/supernet.pt: leads outside .*; refused"):
        load_model(a)


def test_a_missing_seal_or_a_file_added_later_is_refused(tmp_path):
    a = _model(tmp_path / "a", 0)
    meta = read_json(a / "meta.json")
    write_json(a / "meta.json", {k: v for k, v in meta.items() if k != "sealed"})
    with pytest.raises(CorruptFileError, match=r"meta.json: has no seal \(field 'sealed'\)"):
        load_model(a)
    write_json(a / "meta.json", meta)
    load_model(a)
    (a / "extra.json").write_text("{}")
    with pytest.raises(CorruptFileError, match=r"extra.json: not covered by the seal"):
        load_model(a)


def test_removing_checkpoints_or_resuming_a_finished_pretrain_keeps_it_loadable(tmp_path):
    out = tmp_path / "sup"
    args = ["pretrain", "--dataset", "synthetic", "--C", "4", "--N", "1", "--epochs", "1"]
    args += ["--batch-size", "64", "--eval-paths", "1", "--no-progress", "--out", str(out)]
    assert main(args) == 0
    assert (out / "ckpt").is_dir()  # the checkpoints live in the output
    assert main([*args, "--resume"]) == 0  # over a finished output: rewrites eval.json
    load_model(out)
    shutil.rmtree(out / "ckpt")
    load_model(out)
