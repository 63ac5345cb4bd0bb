"""The pipeline in real containers (``naslid run --runner docker``) against a Docker engine.

The live tests need an engine at ``$DOCKER_HOST`` holding ``$NASLID_IMAGE``; ``make
test-containers`` starts one, builds the image and sets ``NASLID_REQUIRE_DOCKER=1``, under
which a missing engine or image fails these tests instead of skipping them. Elsewhere they
skip, saying why. The checkpoints of the container run go to a SeaweedFS S3 server on
127.0.0.1 (tests/s3server.py)."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest
from s3server import ACCESS_KEY, SECRET_KEY

from naslid import artifacts, docker_runner, rerun
from naslid.cli import main

REPO = Path(__file__).resolve().parents[1]
REQUIRED = os.environ.get("NASLID_REQUIRE_DOCKER") == "1"


@pytest.fixture(scope="module")
def image() -> str:
    name = os.environ.get("NASLID_IMAGE")
    try:
        if not name:
            raise RuntimeError("NASLID_IMAGE is not set (make test-containers sets it)")
        docker_runner.image_id(name)
    except RuntimeError as exc:
        if REQUIRED:
            pytest.fail(f"NASLID_REQUIRE_DOCKER=1 but {exc}")
        pytest.skip(f"no engine or image for the container tests: {exc}")
    return name


@pytest.fixture
def s3(request):
    """The session's SeaweedFS server; under make test-containers its absence fails."""
    from s3server import weed_binary

    if REQUIRED and weed_binary() is None:
        pytest.fail("NASLID_REQUIRE_DOCKER=1 but SeaweedFS 'weed' is not installed (dev extras)")
    return request.getfixturevalue("seaweedfs")


def _docker(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=300)


def test_run_with_docker_and_no_engine_fails_in_one_line(monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-engine.sock")
    monkeypatch.delenv("NASLID_IMAGE", raising=False)
    out = tmp_path / "run"
    assert main(["run", "--runner", "docker", "--image", "naslid:x", "--out", str(out)]) == 1
    err = capsys.readouterr().err.strip()
    assert err == (
        f"naslid run: error: --runner docker: no Docker engine reachable at unix://{tmp_path}/"
        "no-engine.sock (start one, e.g. images/dockerd.sh start, or use --runner subprocess)"
    )
    assert not (out / "run.json").exists() and not (out / "pipeline.yaml").exists()  # no work
    assert main(["run", "--runner", "docker", "--out", str(out)]) == 1
    assert "--runner docker: give --image" in capsys.readouterr().err


def test_image_checks_itself(image):
    """Non-root, the CLI starts, one NCCL (torch's), OCI labels name the source and commit."""
    run = _docker("run", "--rm", "--network", "host", image, "sh", "-c",
                  "id -u && naslid --version && python -m naslid --help >/dev/null "
                  "&& python -m naslid.nccl")  # fmt: skip
    assert run.returncode == 0, run.stderr
    uid, version, nccl = run.stdout.splitlines()[:3]
    assert uid != "0" and version.startswith("naslid ")
    assert "torch's build" in nccl and "/opt/venv/" in nccl
    labels = json.loads(_docker("image", "inspect", "-f", "{{json .Config.Labels}}", image).stdout)
    assert labels["org.opencontainers.image.source"]
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True)
    assert labels["org.opencontainers.image.revision"] == head.stdout.strip()


def _search_top(out: Path) -> list[dict]:
    found = {m["artifact"]: d for d, m in rerun.run_artifacts(out)}
    return json.loads((found[artifacts.SEARCH] / "top.json").read_text())


@pytest.mark.slow
def test_smoke_run_in_containers_equals_the_subprocess_run(
    image, s3, tmp_path, monkeypatch, capsys
):
    """Every step in its own container (host network, run folder mounted), long steps
    checkpointing to S3; same best architecture and scores as the subprocess runner."""
    monkeypatch.setenv("MINIO_ENDPOINT", f"http://{s3.endpoint}")
    monkeypatch.setenv("MINIO_ACCESS_KEY", ACCESS_KEY)
    monkeypatch.setenv("MINIO_SECRET_KEY", SECRET_KEY)
    boxed, local = tmp_path / "docker", tmp_path / "subprocess"
    s3 = ["--param", "checkpoint_root=s3://naslid/containers-test"]
    assert main(["run", "--profile", "smoke", "--out", str(boxed), "--runner", "docker",
                 "--image", image, *s3]) == 0  # fmt: skip
    assert main(["run", "--profile", "smoke", "--out", str(local)]) == 0
    first, second = (json.loads((d / "run.json").read_text()) for d in (boxed, local))
    assert first["status"] == "SUCCESS" and not any(t["cached"] for t in first["tasks"])
    log = (boxed / "run.log").read_text()
    # one container per executed step, each with its exit status read
    assert log.count(f"({image}) exited with status 0") == len(first["tasks"])
    assert first["best_arch"] == second["best_arch"]
    top_a, top_b = _search_top(boxed), _search_top(local)
    assert [t["arch"] for t in top_a] == [t["arch"] for t in top_b]
    np.testing.assert_allclose(
        [t["score"] for t in top_a], [t["score"] for t in top_b], rtol=1e-4, atol=1e-4
    )
    with capsys.disabled():  # the figure bench/RESULTS.md quotes
        print(
            f"\nsmoke profile, {len(first['tasks'])} steps: containers {first['seconds']:.0f} s, "
            f"subprocesses {second['seconds']:.0f} s"
        )


@pytest.mark.slow
def test_a_step_failing_in_its_container_is_reported_with_its_log(
    image, s3, tmp_path, monkeypatch, capsys
):
    """Wrong S3 credentials: the first step that checkpoints fails inside its container, and
    naslid run says which step failed, with the tail of its log."""
    monkeypatch.setenv("MINIO_ENDPOINT", f"http://{s3.endpoint}")
    monkeypatch.setenv("MINIO_ACCESS_KEY", ACCESS_KEY)
    monkeypatch.setenv("MINIO_SECRET_KEY", "not-the-secret")
    out = tmp_path / "run"
    args = ["run", "--profile", "smoke", "--out", str(out), "--runner", "docker",
            "--image", image, "--param", "checkpoint_root=s3://naslid/bad-key"]  # fmt: skip
    assert main(args) == 1
    err = capsys.readouterr().err
    record = json.loads((out / "run.json").read_text())
    failed = [t["step"] for t in record["tasks"] if t["status"] == "FAILURE"]
    assert record["status"] == "FAILURE" and failed == ["pretrain-supernet"]
    assert "step pretrain-supernet failed" in err
    assert "SignatureDoesNotMatch" in err or "InvalidAccessKeyId" in err, err
    assert re.search(
        rf"\({re.escape(image)}\) exited with status [1-9]", (out / "run.log").read_text()
    )
