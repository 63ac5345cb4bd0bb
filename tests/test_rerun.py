"""`naslid step` on the artifacts of earlier runs: meta.json lineage (run id, parents'
digests), refusing inputs whose lineage disagrees, runs whose tasks came from KFP's cache,
writing the output back to the object store, and parameters the step cannot honour."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from naslid import artifacts, kfp_components, rerun
from naslid.cli import main
from naslid.io import read_json
from naslid.spaces.nb201 import SPACE


# ----------------------------------------------------------------------------- lineage in meta.json
def _make(out: Path, kind: str, inputs=(), run_id: str = "", **fields) -> Path:
    """A step in miniature: reads its inputs as every naslid step does, writes one artifact."""
    with artifacts.recording(run_id):
        for d, k in inputs:
            artifacts.read_meta(d, k)
        out.mkdir(parents=True, exist_ok=True)
        artifacts.write_meta(out, artifacts.artifact_meta(kind, **fields))
    return out


def _run(root: Path, run_id: str, monkeypatch, data: Path | None = None) -> dict[str, Path]:
    """data -> partition (round 0) -> space -> search, as run ``run_id`` writes them (``data``
    from an earlier run: a cached task)."""
    made = {}
    made["data"] = data or _make(
        root / "prepare-data" / "data", artifacts.DATA, run_id=run_id, dataset="digits"
    )
    made["partition"] = _make(
        root / "pretrain-supernet" / "supernet",
        artifacts.PARTITION,
        [(made["data"], artifacts.DATA)],
        run_id=run_id,
        round=0,
        space="nb201",
        leaves={"r": SPACE.mask_to_json(SPACE.full_mask())},
    )
    made["space"] = _make(
        root / "lissnas-shrink" / "space",
        artifacts.SPACE,
        [(made["data"], artifacts.DATA), (made["partition"], artifacts.PARTITION)],
        run_id=run_id,
        space="nb201",
    )
    return made


def test_meta_records_run_id_and_parents_digests(tmp_path, monkeypatch):
    made = _run(tmp_path / "run-a", "run-a", monkeypatch)
    meta = read_json(made["space"] / artifacts.META)
    assert meta["run_id"] == "run-a"
    assert meta["made_from"] == [
        {
            "artifact": artifacts.DATA,
            "round": None,
            "node": None,
            "digest": artifacts.meta_digest(made["data"]),
            "run_id": "run-a",
        },
        {
            "artifact": artifacts.PARTITION,
            "round": 0,
            "node": None,
            "digest": artifacts.meta_digest(made["partition"]),
            "run_id": "run-a",
        },
    ]
    # read outside a step (naslid step's own checks): not recorded anywhere
    artifacts.read_meta(made["data"], artifacts.DATA)
    assert read_json(made["data"] / artifacts.META)["made_from"] == []


def test_run_of_reads_the_run_id_from_the_artifact_uri():
    class A:
        def __init__(self, uri):
            self.uri = uri

    cluster = "minio://mlpipeline/v2/artifacts/naslid/6f1c-run/pretrain-supernet/1234/supernet"
    assert kfp_components.run_of(A(cluster)) == "6f1c-run"
    local = "/tmp/runs/local/pipeline_root/naslid-2026-12-01-21-00-00-000001/pretrain/supernet"
    assert kfp_components.run_of(A(local)) == "naslid-2026-12-01-21-00-00-000001"
    job = "/r/pipeline_root/naslid-2026-12-01-22-08-06-686799"
    assert kfp_components.run_of(A(f"{job}/prepare-data/data")) == job.rsplit("/", 1)[-1]
    looped = f"{job}/for-loop-4-iteration-1/finetune-subsupernet/subsupernet"
    assert kfp_components.run_of(A(looped)) == job.rsplit("/", 1)[-1]


def test_consistent_inputs_pass_and_mixed_ones_are_refused(tmp_path, monkeypatch):
    a = _run(tmp_path / "run-a", "run-a", monkeypatch)
    b = _run(tmp_path / "run-b", "run-b", monkeypatch)
    found = rerun.find_artifacts(tmp_path)
    problems, runs = rerun.check_lineage(
        {"data": a["data"], "partition": a["partition"], "space": a["space"]}, found
    )
    assert problems == [] and runs == {"run-a"}
    # run a's partition with a space shrunk in run b: the space names another partition
    problems, runs = rerun.check_lineage(
        {"data": a["data"], "partition": a["partition"], "space": b["space"]}, found
    )
    assert runs == {"run-a", "run-b"}
    assert any(
        p.startswith("input 'space'") and "another naslid.partition than input 'partition'" in p
        for p in problems
    ), problems


def test_cached_tasks_keep_their_producers_run_and_still_match(tmp_path, monkeypatch):
    a = _run(tmp_path / "run-a", "run-a", monkeypatch)
    # run b: prepare-data came from the cache (run a's artifact), the rest ran again
    b = _run(tmp_path / "run-b", "run-b", monkeypatch, data=a["data"])
    found = rerun.find_artifacts(tmp_path)
    problems, runs = rerun.check_lineage(
        {"data": a["data"], "partition": b["partition"], "space": b["space"]}, found
    )
    assert problems == [] and runs == {"run-a", "run-b"}
    assert rerun.parent_runs(rerun.find_artifacts(tmp_path / "run-b")) == {"run-a"}


def test_step_refuses_mixed_inputs_unless_allowed(tmp_path, monkeypatch, capsys):
    a = _run(tmp_path / "run-a", "run-a", monkeypatch)
    b = _run(tmp_path / "run-b", "run-b", monkeypatch)
    monkeypatch.setattr(rerun, "run_step", lambda name, inputs, out, params, run_id: {"ran": True})
    args = ["step", "evolutionary-search", "--inputs", str(tmp_path), "--out", str(tmp_path / "o")]
    mixed = ["--input", f"partition={a['partition']}", "--input", f"space={b['space']}"]
    mixed += ["--input", f"data={a['data']}"]
    assert main(args + mixed) == 1
    err = capsys.readouterr().err.strip()
    assert "was made from another naslid." in err and err.endswith("--allow-mixed runs it anyway")
    assert "\n" not in err
    assert main(args + mixed + ["--allow-mixed"]) == 0
    assert "warning: input 'space'" in capsys.readouterr().err
    same = ["--input", f"partition={b['partition']}", "--input", f"space={b['space']}"]
    assert main(args + same + ["--input", f"data={b['data']}"]) == 0


def test_step_refuses_a_budget_the_search_cannot_spend(tmp_path, monkeypatch, capsys):
    _run(tmp_path / "run-a", "run-a", monkeypatch)
    args = ["step", "evolutionary-search", "--inputs", str(tmp_path), "--out", str(tmp_path / "o")]
    mixed = ["--allow-mixed"]  # the miniature artifacts hold no networks: refused before them
    assert main(args + mixed + ["--param", "search_budget=48"]) == 1
    err = capsys.readouterr().err.strip()
    assert "budget: 48 exceeds population 8 x generations 3 = 24" in err and "\n" not in err


# ----------------------------------------------------------------------------- cluster runs over S3
@pytest.fixture
def s3(seaweedfs, monkeypatch):
    """The session's SeaweedFS server (real S3 over HTTP on 127.0.0.1) with a bucket,
    credentials in the environment as the naslid-minio Secret gives them to pods."""
    from s3server import ACCESS_KEY, SECRET_KEY

    from naslid.store import MinioStore, S3Settings

    monkeypatch.setenv("MINIO_ENDPOINT", seaweedfs.endpoint)
    monkeypatch.setenv("MINIO_ACCESS_KEY", ACCESS_KEY)
    monkeypatch.setenv("MINIO_SECRET_KEY", SECRET_KEY)
    monkeypatch.setenv("MINIO_REGION", "us-east-1")
    MinioStore("mlpipeline", settings=S3Settings.from_env()).ensure_bucket()
    yield


def _upload(store_uri: str, folder: Path) -> None:
    from naslid import store

    rerun.upload_dir(store.open_store(store_uri), folder, "")


def test_step_on_a_cluster_run_with_cached_tasks(s3, tmp_path, monkeypatch, capsys):
    """Run b's prepare-data and pretrain-supernet came from KFP's cache: its prefix holds only
    lissnas-shrink's space. naslid step finds run a (the producer) through the lineage,
    downloads it too, runs the step and uploads the output under run b's prefix."""
    from naslid import store

    root = "minio://mlpipeline/v2/artifacts/naslid"
    a = _run(tmp_path / "a" / "run-a", "run-a", monkeypatch)
    space_b = _make(
        tmp_path / "b" / "run-b" / "lissnas-shrink" / "space",
        artifacts.SPACE,
        [(a["data"], artifacts.DATA), (a["partition"], artifacts.PARTITION)],
        run_id="run-b",
        space="nb201",
    )
    _upload(f"{root}/run-a", tmp_path / "a" / "run-a")
    _upload(f"{root}/run-b", tmp_path / "b" / "run-b")
    seen = {}

    def fake_search(name, inputs, out, params, run_id):  # the step itself is tested elsewhere
        seen.update(
            space=read_json(inputs["space"] / artifacts.META),
            partition_run=inputs["partition"].parts[-3],
            problems=rerun.check_lineage(inputs)[0],
        )
        Path(out).mkdir(parents=True, exist_ok=True)  # the CLI locked (and made) it first
        (Path(out) / "top.json").write_text("[]")
        return {"best_arch": "x"}

    monkeypatch.setattr(rerun, "run_step", fake_search)
    out = tmp_path / "out"
    args = ["step", "evolutionary-search", "--inputs", f"{root}/run-b", "--out", str(out)]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert f"copied {root}/run-b, {root}/run-a" in printed
    assert "inputs from runs run-a, run-b" in printed
    assert seen["space"] == read_json(space_b / artifacts.META)  # run b's own, the newest
    assert seen["partition_run"] == "run-a"  # resolved to the producer of the cached task
    assert seen["problems"] == []
    uploaded = store.open_store(f"{root}/run-b").list("naslid-step/")
    assert len(uploaded) == 1 and uploaded[0].endswith("/top.json")
    assert f"uploaded 1 files to {root}/run-b/naslid-step/evolutionary-search-" in printed
    assert json.loads((out / "top.json").read_text()) == []
    # a run prefix with nothing of its own
    assert main(["step", "evolutionary-search", "--inputs", f"{root}/run-none"]) == 1
    assert "no naslid artifacts" in capsys.readouterr().err
