"""The image's recipe: one lock of pins (what the tests run with), the Dockerfile, the ignore
file under both builders, and the make targets' clear failures (the live build and run are in
tests/test_containers.py)."""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[1]
DOCKERFILE = REPO / "images" / "naslid" / "Dockerfile"


def _lock_module():
    spec = importlib.util.spec_from_file_location("naslid_lock", REPO / "images" / "lock.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def lock():
    return _lock_module()


def test_the_lock_is_what_the_tests_run_with(lock):
    """The runtime closure of pyproject.toml's dependencies, as installed here, is the lock,
    pin for pin (make lock regenerates it; make install installs with it)."""
    pins = lock.read_lock()
    installed = lock.closure(lock.project_requirements())
    drift = {n: (pins.get(n), installed.get(n)) for n in set(pins) | set(installed)}
    drift = {n: v for n, v in drift.items() if v[0] != v[1]}
    assert not drift, f"lock vs installed (make lock, or make install): {drift}"
    make = (REPO / "Makefile").read_text()
    for pin in re.search(r"^TORCH_PINS \?= (.+)$", make, re.M).group(1).split():
        name, _, version = pin.partition("==")
        assert pins[name] == version, pin
    for text in tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]:
        req = Requirement(text)
        assert req.specifier.contains(pins[canonicalize_name(req.name)]), text


def test_the_lock_holds_one_nccl_the_one_torch_needs(lock):
    pins = lock.read_lock()
    ncclwheels = sorted(n for n in pins if n.startswith("nvidia-nccl"))
    from importlib.metadata import requires

    wanted = [Requirement(r) for r in requires("torch") or [] if "nccl" in r]
    assert [canonicalize_name(r.name) for r in wanted] == ncclwheels, ncclwheels
    assert all(r.specifier.contains(pins[canonicalize_name(r.name)]) for r in wanted)
    assert "xgboost" not in pins and "xgboost-cpu" in pins  # the GPU wheel brings NCCL 12


def test_lock_closure_and_errors(lock, tmp_path):
    assert lock.closure(["packaging"]) == {"packaging": __import__("packaging").__version__}
    with pytest.raises(SystemExit, match="lock: surely-not-installed-naslid"):
        lock.closure(["surely-not-installed-naslid>=1"])
    bad = tmp_path / "bad.lock"
    bad.write_text("# c\nnumpy==2.0\nscipy>=1\n")
    with pytest.raises(ValueError, match=r"bad.lock:3: expected NAME==VERSION"):
        lock.read_lock(bad)


def test_dockerfile_installs_the_lock_offline_and_checks_itself():
    text = DOCKERFILE.read_text()
    assert re.search(r"^ARG BASE$", text, re.M)  # no default: a digest, or the local base
    assert re.search(r"^FROM \$\{BASE\}$", text, re.M)
    install = re.search(r"pip install --no-index [^\n]*-r requirements\.lock", text)
    assert install and "--no-deps" in install.group(0)
    assert "COPY images/naslid/requirements.lock ./requirements.lock" in text
    assert "pip install --no-index --no-deps --no-build-isolation ." in text
    for check in ("python -m naslid.nccl", "naslid --version", "python -m naslid --help"):
        assert check in text
    users = re.findall(r"^USER (\S+)$", text, re.M)
    assert users and users[-1].split(":")[0] not in ("0", "root")
    for label in ("source", "revision"):
        assert f"org.opencontainers.image.{label}=" in text
    # the labels come after every RUN: a new commit must not rebuild the Python layer
    assert text.rindex("RUN ") < text.index("ARG REVISION")


def test_ignore_file_works_with_both_builders(tmp_path):
    """One .dockerignore at the context root (the classic builder reads no other; BuildKit would
    prefer a Dockerfile.dockerignore beside the Dockerfile, so there must be none), evaluated
    with docker-py's implementation of the rules: what the Dockerfile copies goes in, nothing
    else (no .venv, runs, .git)."""
    from docker.utils.build import exclude_paths

    assert not list(REPO.glob("images/**/*.dockerignore"))
    patterns = [
        line.strip()
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    copied = re.findall(r"^COPY (?!--from)(.+) \S+$", DOCKERFILE.read_text(), re.M)
    sources = [s for line in copied for s in line.split()]
    tree = [
        *sources,
        "naslid/cli/__init__.py",
        ".venv/lib/python3.11/site-packages/torch/__init__.py",
        "runs/local/run.json",
        ".git/HEAD",
        "tests/test_x.py",
        "build/wheelhouse/torch.whl",
        "naslid/__pycache__/x.cpython-311.pyc",
    ]
    for rel in tree:
        path = tmp_path / rel
        if rel in ("naslid",):
            path.mkdir(parents=True, exist_ok=True)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x")
    # docker-py's exclude_paths returns the paths that go into the context
    sent = set(exclude_paths(str(tmp_path), patterns, "images/naslid/Dockerfile"))
    included = {p for p in tree if p in sent and (tmp_path / p).is_file()}
    assert {s for s in sources if (tmp_path / s).is_file()} <= included
    assert "naslid/cli/__init__.py" in included
    assert included <= {*sources, "naslid/cli/__init__.py"}, included


@pytest.mark.parametrize("target", ["image", "base-image"])
def test_make_targets_fail_in_one_line_without_an_engine(target, tmp_path):
    make = shutil.which("make")
    if make is None:
        pytest.skip("make not on PATH")
    env = {
        "PATH": "/usr/bin:/bin:/usr/local/bin",
        "DOCKER_HOST": f"unix://{tmp_path}/none.sock",
        "NASLID_CACHE": str(tmp_path / "cache"),
    }
    out = subprocess.run(
        [make, "-s", target], cwd=REPO, capture_output=True, text=True, timeout=120, env=env
    )
    assert out.returncode != 0
    lines = [ln for ln in (out.stdout + out.stderr).splitlines() if not ln.startswith("make:")]
    assert len(lines) == 1 and "no Docker engine" in lines[0], lines
    assert not (tmp_path / "cache").exists()  # nothing downloaded or built first


def test_dockerd_that_cannot_start_fails_in_one_line(tmp_path):
    """Never a skip: images/dockerd.sh start says why, in one line, and fails."""
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "dockerd").write_text("#!/bin/sh\necho 'level=fatal msg=\"no cgroups here\"'\nexit 1\n")
    (fake / "dockerd").chmod(0o755)
    env = {
        "PATH": f"{fake}:/usr/bin:/bin",
        "NASLID_DOCKER_ROOT": str(tmp_path / "data"),
        "NASLID_DOCKER_RUN": str(tmp_path / "run"),
    }
    out = subprocess.run(
        ["bash", str(REPO / "images" / "dockerd.sh"), "start"],
        capture_output=True, text=True, timeout=60, env=env,
    )  # fmt: skip
    assert out.returncode == 1
    assert out.stdout == "" and out.stderr.strip().splitlines() == [
        'dockerd: cannot start here: level=fatal msg="no cgroups here"'
    ]
