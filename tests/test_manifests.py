"""Kubernetes manifests (kustomize base + GPU overlay) and the image's Dockerfile."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
MANIFESTS = REPO / "manifests"
OVERLAYS = [MANIFESTS / "base", MANIFESTS / "overlays" / "gpu"]
DOCKERFILE = REPO / "images" / "naslid" / "Dockerfile"


def _documents(path: Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]


def _build(overlay: Path) -> list[dict]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl not on PATH: `kubectl kustomize` cannot build the overlays here")
    out = subprocess.run(
        [kubectl, "kustomize", str(overlay)], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    return [d for d in yaml.safe_load_all(out.stdout) if d is not None]


def _by_kind(objs: list[dict]) -> dict[tuple[str, str], dict]:
    return {(o["kind"], o["metadata"]["name"]): o for o in objs}


def test_every_manifest_parses():
    files = sorted(MANIFESTS.rglob("*.yaml"))
    assert len(files) >= 10
    for path in files:
        docs = _documents(path)
        assert docs, path
        for doc in docs:
            if path.name.endswith("-patch.yaml"):  # a JSON 6902 patch: a list of operations
                assert all({"op", "path"} <= set(op) for op in doc), path
                continue
            assert isinstance(doc, dict) and doc.get("apiVersion") and doc.get("kind"), path


@pytest.mark.parametrize("overlay", OVERLAYS, ids=lambda p: p.name)
def test_overlay_builds(overlay):
    objs = _build(overlay)
    kinds = _by_kind(objs)
    for obj in objs:  # everything lands in the namespace the runs execute in
        if obj["kind"] != "Namespace":
            assert obj["metadata"]["namespace"] == "naslid", obj["metadata"]["name"]
    launcher = kinds[("ConfigMap", "kfp-launcher")]
    assert launcher["data"]["defaultPipelineRoot"].startswith("minio://naslid/")
    providers = yaml.safe_load(launcher["data"]["providers"])
    creds = providers["minio"]["default"]["credentials"]["secretRef"]
    assert creds == {
        "secretName": "naslid-minio",
        "accessKeyKey": "MINIO_ACCESS_KEY",
        "secretKeyKey": "MINIO_SECRET_KEY",
    }
    secret = kinds[("Secret", "naslid-minio")]
    assert set(secret["stringData"]) == {"MINIO_ENDPOINT", "MINIO_ACCESS_KEY", "MINIO_SECRET_KEY"}
    assert all(
        v.startswith("CHANGE-ME") for k, v in secret["stringData"].items() if k != "MINIO_ENDPOINT"
    )
    assert providers["minio"]["default"]["endpoint"] == secret["stringData"]["MINIO_ENDPOINT"]
    minio = kinds[("Deployment", "minio")]["spec"]["template"]["spec"]
    image = minio["containers"][0]["image"]
    assert re.fullmatch(r"[\w./-]+/minio:RELEASE\.\d{4}-\d\d-\d\dT[\d-]+Z", image), (
        image
    )  # pinned, not latest
    assert minio["securityContext"]["runAsNonRoot"] is True
    assert minio["volumes"][0]["persistentVolumeClaim"]["claimName"] == "minio-data"
    service = kinds[("Service", "minio")]
    host = secret["stringData"]["MINIO_ENDPOINT"]
    assert (
        host
        == f"{service['metadata']['name']}.naslid.svc.cluster.local:{service['spec']['ports'][0]['port']}"
    )
    assert ("PersistentVolumeClaim", "naslid-datasets") in kinds
    job = kinds[("Job", "minio-make-bucket")]["spec"]["template"]["spec"]["containers"][0]
    assert job["image"] == image and "mb --ignore-existing naslid/naslid" in job["args"][0]


def test_gpu_overlay_adds_quota_and_shared_dataset_volume():
    kinds = _by_kind(_build(MANIFESTS / "overlays" / "gpu"))
    quota = kinds[("ResourceQuota", "naslid-gpu")]
    assert quota["spec"]["hard"]["requests.nvidia.com/gpu"] == "8"
    pvc = kinds[("PersistentVolumeClaim", "naslid-datasets")]["spec"]
    assert (
        pvc["accessModes"] == ["ReadWriteMany"]
        and pvc["resources"]["requests"]["storage"] == "400Gi"
    )
    base = _by_kind(_build(MANIFESTS / "base"))
    assert ("ResourceQuota", "naslid-gpu") not in base
    assert base[("PersistentVolumeClaim", "naslid-datasets")]["spec"]["accessModes"] == [
        "ReadWriteOnce"
    ]


@pytest.mark.parametrize("overlay", OVERLAYS, ids=lambda p: p.name)
def test_schema_validation_offline(overlay):
    validate = pytest.importorskip(
        "kubernetes_validate", reason="kubernetes-validate (offline schemas) not installed"
    )
    for obj in _build(overlay):
        validate.validate(obj, "1.30.0", strict=True)


def test_dockerfile_is_pinned_and_non_root():
    text = DOCKERFILE.read_text()
    base = re.search(r"^ARG BASE=(\S+)$", text, re.M).group(1)
    # the Python the tests run; CUDA comes with the pinned torch wheels (cu130 index)
    assert re.fullmatch(r"python:3\.11\.\d+-slim-\w+", base), base
    assert re.search(r"^ARG TORCH_INDEX=https://download.pytorch.org/whl/cu130$", text, re.M)
    assert re.search(r"^FROM \$\{BASE\}$", text, re.M)
    assert text.count("-c constraints.txt") == 2  # torch and the rest, both pinned
    users = re.findall(r"^USER (\S+)$", text, re.M)
    assert users and users[-1].split(":")[0] not in ("0", "root")
    assert "pip install -c constraints.txt ." in text and "COPY naslid ./naslid" in text
    ignore = (DOCKERFILE.parent / "Dockerfile.dockerignore").read_text()
    assert "**/.venv" in ignore and "**/runs" in ignore


def test_constraints_pin_what_the_tests_run():
    """images/naslid/constraints.txt pins every runtime requirement of pyproject.toml exactly,
    at the torch the Makefile installs and the kfp pins of pyproject.toml."""
    import tomllib

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    pins = {}
    for line in (DOCKERFILE.parent / "constraints.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, version = line.partition("==")
            assert version, line
            pins[canonicalize_name(name)] = version
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    for text in project["dependencies"]:
        req = Requirement(text)
        name = canonicalize_name(req.name)
        assert name in pins, f"constraints.txt does not pin {req.name}"
        assert req.specifier.contains(pins[name]), f"{req.name}=={pins[name]} violates {text}"
    make = (REPO / "Makefile").read_text()
    torch_pins = re.search(r"^TORCH_PINS \?= (.+)$", make, re.M).group(1).split()
    for pin in torch_pins:
        name, _, version = pin.partition("==")
        assert pins[name] == version, pin


def test_make_image_fails_clearly_without_docker():
    make = shutil.which("make")
    if make is None:
        pytest.skip("make not on PATH")
    probe = (
        subprocess.run(["docker", "info"], capture_output=True, timeout=30)
        if shutil.which("docker")
        else None
    )
    if probe is not None and probe.returncode == 0:
        pytest.skip("a Docker engine is reachable here: make image would really build")
    out = subprocess.run(
        [make, "-s", "image"], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert out.returncode != 0
    assert "no Docker engine reachable" in out.stdout + out.stderr
