"""Hostile inputs of issue 22 (code from a data file, path traversal, planted symlinks, silent
successes, outputs over inputs, an unsealed or swapped model, wrong shapes), each run as a
real ``naslid`` command in a fresh process; used by ``bench/faults.py``.

A case is good when the command exits 1 with one line on stderr (no traceback) that contains
the case's expected text (the flag or file and the rule) and its ``intact`` check holds
(nothing lost, nothing written where it must not be); partial when it exits non-zero with one
line but without the expected text; bad otherwise (exit 0, a traceback, or harm done).
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
CELL = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_1x1~1|+|skip_connect~0|nor_conv_3x3~1|avg_pool_3x3~2|"


@dataclass
class Case:
    name: str
    argv: Callable[[Path], list[str]]
    expect: str
    intact: Callable[[Path], bool] = lambda root: True
    env: Callable[[Path], dict] = lambda root: {}


class _Touch:
    def __init__(self, path: str):
        self.path = path

    def __reduce__(self):
        return (Path.touch, (Path(self.path),))


def setup(root: Path) -> None:
    """The files the cases read: a small model, a second one of the same shapes, data."""
    import torch

    from naslid.io import read_json, write_json
    from naslid.partition import PartitionTree
    from naslid.saved_model import save_model
    from naslid.spaces.nb201 import SPACE
    from naslid.supernets.nb201 import Supernet
    from naslid.transfer import make_digits_imagefolder

    for name, seed in (("model", 0), ("other", 1), ("swapped", 0), ("unsealed", 0)):
        torch.manual_seed(seed)
        save_model(Supernet(C=4, N=1, num_classes=10), root / name)
    shutil.copy(root / "other" / "supernet.pt", root / "swapped" / "supernet.pt")
    meta = read_json(root / "unsealed" / "meta.json")
    write_json(root / "unsealed" / "meta.json", {k: v for k, v in meta.items() if k != "sealed"})
    tree = PartitionTree(SPACE).to_json()
    tree["nodes"]["../../../escaped"] = {**tree["nodes"]["r"], "parent": "r"}
    write_json(root / "evil-tree.json", tree)
    write_json(root / "list.json", [1, 2])
    write_json(root / "catalogue.json", [{"name": "x"}])
    (root / "scores.csv").write_text("arch_str,score\n")
    batches = root / "cifar" / "cifar-10-batches-py"
    batches.mkdir(parents=True)
    for name in ("batches.meta", "data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4",
                 "data_batch_5", "test_batch"):  # fmt: skip
        with (batches / name).open("wb") as f:
            pickle.dump({"data": _Touch(str(root / "pwned")), "labels": [0]}, f)
    (root / "victim.txt").write_text("keep me")
    (root / "locked").mkdir()
    (root / "locked" / ".naslid.lock").symlink_to(root / "victim.txt")
    make_digits_imagefolder(root / "digits", 20, 5, size=32)
    (root / "dataset" / "train" / "cat").mkdir(parents=True)
    (root / "dataset" / "train" / "cat" / "0.png").write_bytes(b"x")


def _same_bytes(path: str, text: str) -> Callable[[Path], bool]:
    return lambda root: (root / path).read_text() == text


def _transfer(root: Path, *extra: str) -> list[str]:
    return ["transfer", "--space", "nb201", "--arch", CELL, "--data", str(root / "digits"),
            "--image-size", "32", "--workers", "0", "--quiet", "--no-export",
            "--out", str(root / "t"), *extra]  # fmt: skip


CASES = [
    Case(
        "cifar batch that runs code",
        lambda r: [
            "pretrain",
            "--dataset",
            "cifar10",
            "--data-root",
            str(r / "cifar"),
            "--out",
            str(r / "o1"),
        ],
        "refused: the pickle names",
        lambda r: not (r / "pwned").exists(),
    ),  # fmt: skip
    Case(
        "node id ../../../escaped in a tree",
        lambda r: [
            "evolve",
            "--space",
            "nb201",
            "--proxy",
            str(r / "evil-tree.json"),
            "--out",
            str(r / "o2"),
        ],
        "is not a node id",
        lambda r: not (r.parent / "escaped").exists(),
    ),  # fmt: skip
    Case(
        "planted lock symlink",
        lambda r: ["pretrain", "--out", str(r / "locked")],
        "is a symbolic link",
        _same_bytes("victim.txt", "keep me"),
    ),  # fmt: skip
    Case(
        "transfer --stop-after -1",
        lambda r: _transfer(r, "--stop-after", "-1"),
        "--stop-after: must be >= 1",
    ),  # fmt: skip
    Case(
        "transfer --lr 1e12 (diverges)",
        lambda r: _transfer(r, "--lr", "1e12", "--epochs", "2"),
        "transfer: epoch",
        lambda r: not (r / "t" / "weights.pt").exists(),
    ),  # fmt: skip
    Case(
        "evaluate --out = --scores",
        lambda r: [
            "evaluate",
            "--scores",
            str(r / "scores.csv"),
            "--table",
            f"table:{r / 'scores.csv'}:score",
            "--out",
            str(r / "scores.csv"),
        ],
        "--scores",
        _same_bytes("scores.csv", "arch_str,score\n"),
    ),  # fmt: skip
    Case(
        "finetune --out = --parent",
        lambda r: [
            "finetune",
            "--tree",
            str(r / "list.json"),
            "--node",
            "r0",
            "--parent",
            str(r / "model"),
            "--out",
            str(r / "model"),
        ],
        "--parent",
        lambda r: (r / "model" / "supernet.pt").is_file(),
    ),  # fmt: skip
    Case(
        "transfer-data into a data set",
        lambda r: ["transfer-data", "--out", str(r / "dataset")],
        "not a tree made by transfer-data",
        lambda r: not (r / "dataset" / "train" / "0").exists(),
    ),  # fmt: skip
    Case("pretrain --out ''", lambda r: ["pretrain", "--out", ""], "--out: empty"),
    Case(
        "another model's supernet.pt",
        lambda r: [
            "split",
            "--model",
            str(r / "swapped"),
            "--rounds",
            "1",
            "--out",
            str(r / "o3.json"),
        ],
        "supernet.pt: modified",
    ),  # fmt: skip
    Case(
        "meta.json without its seal",
        lambda r: [
            "split",
            "--model",
            str(r / "unsealed"),
            "--rounds",
            "1",
            "--out",
            str(r / "o4.json"),
        ],
        "has no seal",
    ),  # fmt: skip
    Case(
        "split --tree holding a list",
        lambda r: [
            "split",
            "--tree",
            str(r / "list.json"),
            "--model",
            str(r / "model"),
            "--out",
            str(r / "o5.json"),
        ],
        "expected an object",
    ),  # fmt: skip
    Case(
        "NASLID_CATALOGUE holding a list",
        lambda r: ["data", "list"],
        "catalogue.json",
        env=lambda r: {"NASLID_CATALOGUE": str(r / "catalogue.json")},
    ),  # fmt: skip
    Case(
        "lissnas --labels python:os:getcwd",
        lambda r: [
            "lissnas",
            "--space",
            "nb201",
            "--labels",
            "python:os:getcwd",
            "--samples",
            "30",
            "--no-baselines",
            "--out",
            str(r / "o6"),
        ],
        "labels 'python:os:getcwd'",
    ),  # fmt: skip
    Case(
        "pretrain --N 1000000",
        lambda r: ["pretrain", "--N", "1000000", "--out", str(r / "o7")],
        "option 'N' must be between",
    ),  # fmt: skip
]


def run_case(case: Case, root: Path, timeout: float = 300) -> dict:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", **case.env(root)}
    t0 = time.monotonic()
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "naslid", *case.argv(root)],
            cwd=root,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        rc, err = proc.returncode, proc.stderr
    except subprocess.TimeoutExpired:
        rc, err = None, "timed out"
    lines = [line for line in err.splitlines() if line.strip()]
    last = lines[-1] if lines else ""
    one_line = rc not in (0, None) and "Traceback" not in err
    intact = case.intact(root)
    verdict = (
        "good"
        if one_line and case.expect in last and intact
        else ("partial" if one_line and intact else "bad")
    )
    return {"case": case.name, "rc": rc, "verdict": verdict, "intact": intact, "line": last,
            "seconds": round(time.monotonic() - t0, 1)}  # fmt: skip


def run_cases(root: Path) -> dict:
    """Every case of :data:`CASES` in ``root`` (made by :func:`setup`); counts and rows."""
    root.mkdir(parents=True, exist_ok=True)
    setup(root)
    rows = [run_case(case, root) for case in CASES]
    for row in rows:
        print(f"  {row['verdict']:<7} {row['case']}: {row['line'][:150]}")
    counts = {v: sum(r["verdict"] == v for r in rows) for v in ("good", "partial", "bad")}
    return {"tried": len(rows), **counts, "nothing_lost": all(r["intact"] for r in rows),
            "rows": rows}  # fmt: skip


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory(prefix="naslid-hostile-") as tmp:
        print(json.dumps({k: v for k, v in run_cases(Path(tmp)).items() if k != "rows"}))
