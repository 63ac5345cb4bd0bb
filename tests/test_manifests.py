"""Kubernetes manifests (kustomize base, overlays, layouts); the image's recipe is in tests/test_image.py."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
MANIFESTS = REPO / "manifests"
OVERLAYS = [MANIFESTS / "overlays" / n for n in ("seaweedfs", "minio", "gpu")]


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
    assert len(files) >= 12
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
    assert creds == {  # the pipeline's least-privilege key, not the store's admin key
        "secretName": "naslid-minio",
        "accessKeyKey": "MINIO_ACCESS_KEY",
        "secretKeyKey": "MINIO_SECRET_KEY",
    }
    service = kinds[("Service", "naslid-store")]
    assert [p["port"] for p in service["spec"]["ports"]] == [9000]  # S3 only: no console
    endpoint = providers["minio"]["default"]["endpoint"]
    assert endpoint == "naslid-store:9000"  # the Service of the pod's own namespace
    policy = kinds[("NetworkPolicy", "naslid-store")]["spec"]
    assert policy["podSelector"] == {"matchLabels": service["spec"]["selector"]}
    sources = [s["podSelector"]["matchLabels"] for s in policy["ingress"][0]["from"]]
    assert {"pipelines.kubeflow.org/v2_component": "true"} in sources
    assert ("PersistentVolumeClaim", "naslid-datasets") in kinds
    assert not any(o["kind"] == "Secret" for o in objs)  # no credentials in the tree


def _store(objs):
    stores = [
        o
        for o in objs
        if o["kind"] == "Deployment"
        and o["spec"]["template"]["metadata"]["labels"].get("app.kubernetes.io/component")
        == "object-store"
    ]
    assert len(stores) == 1
    return stores[0]["spec"]["template"]["spec"]


@pytest.mark.parametrize("overlay", ["seaweedfs", "minio"])
def test_store_overlays_pin_images_and_keep_admin_keys_off_the_pipeline(overlay):
    objs = _build(MANIFESTS / "overlays" / overlay)
    pod = _store(objs)
    container = pod["containers"][0]
    assert re.fullmatch(r"[\w./-]+:[\w.-]+@sha256:[0-9a-f]{64}", container["image"])
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert [p["name"] for p in container["ports"]] == ["s3"]  # the console is not exposed
    text = yaml.safe_dump_all(objs)
    assert "CHANGE-ME" not in text
    if overlay == "minio":
        env = {
            e["name"]: e["valueFrom"]["secretKeyRef"]["name"]
            for e in container["env"]
            if "valueFrom" in e
        }
        assert env == {
            "MINIO_ROOT_USER": "naslid-store-admin",
            "MINIO_ROOT_PASSWORD": "naslid-store-admin",
        }
        assert "127.0.0.1:9001" in container["args"]
        job = _by_kind(objs)[("Job", "minio-setup")]["spec"]["template"]
        script = job["spec"]["containers"][0]["args"][0]
        assert '"Resource": ["arn:aws:s3:::naslid/*"]' in script and "policy attach" in script
        assert job["metadata"]["labels"]["app.kubernetes.io/component"] == "object-store-setup"
    else:
        assert "-s3.config=/etc/seaweedfs/s3.json" in container["args"]
        assert pod["volumes"][1]["secret"]["secretName"] == "naslid-store-config"


def test_gpu_overlay_adds_quota_and_shared_dataset_volume():
    kinds = _by_kind(_build(MANIFESTS / "overlays" / "gpu"))
    quota = kinds[("ResourceQuota", "naslid-gpu")]
    assert quota["spec"]["hard"]["requests.nvidia.com/gpu"] == "8"
    pvc = kinds[("PersistentVolumeClaim", "naslid-datasets")]["spec"]
    assert (
        pvc["accessModes"] == ["ReadWriteMany"]
        and pvc["resources"]["requests"]["storage"] == "400Gi"
        and pvc["storageClassName"]  # a ReadWriteMany class, named in one place
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


# ----------------------------------------------------------------------------- three layouts
LAYOUTS = {  # overlay -> the namespace the runs (and so the store) live in
    "gpu": "naslid",  # a dedicated namespace
    "profile": "kubeflow-user-example-com",  # a multi-user Kubeflow profile namespace
    "standalone": "kubeflow",  # standalone KFP
}
STORE_CLIENTS = {  # the pods that must reach the store, by the label they carry
    "run pods (KFP v2 driver, launcher, executor)": {"pipelines.kubeflow.org/v2_component": "true"},
    "the KFP UI's artifact proxy (profile namespace)": {"app": "ml-pipeline-ui-artifact"},
    "the KFP UI (standalone, in kubeflow)": {"app": "ml-pipeline-ui"},
}


def _admits(policy: dict, labels: dict) -> bool:
    """Whether an ingress rule of ``policy`` admits a pod of its own namespace with ``labels``."""
    for rule in policy["spec"]["ingress"]:
        for peer in rule.get("from", []):
            if set(peer) != {"podSelector"}:
                continue
            want = peer["podSelector"].get("matchLabels", {})
            if want and all(labels.get(k) == v for k, v in want.items()):
                return True
    return False


@pytest.mark.parametrize(("overlay", "namespace"), LAYOUTS.items())
def test_each_layout_connects_within_its_namespace(overlay, namespace):
    objs = _build(MANIFESTS / "overlays" / overlay)
    kinds = _by_kind(objs)
    text = yaml.safe_dump_all(objs)
    # no address names another namespace (nor this one by name: the short name resolves)
    assert ".svc" not in text and "naslid.naslid" not in text
    for obj in objs:
        if obj["kind"] != "Namespace":
            assert obj["metadata"]["namespace"] == namespace, obj["metadata"]["name"]
    # the dedicated layout owns its namespace and kfp-launcher; the others merge into theirs
    owned = overlay == "gpu"
    assert (("Namespace", "naslid") in kinds) is owned
    assert (("ConfigMap", "kfp-launcher") in kinds) is owned
    policy = kinds[("NetworkPolicy", "naslid-store")]
    for who, labels in STORE_CLIENTS.items():
        assert _admits(policy, labels), who
    job = _documents(REPO / "data" / "stage-job.yaml")[0]
    assert _admits(policy, job["spec"]["template"]["metadata"]["labels"]), "the staging Job"
    assert not _admits(policy, {"app": "jupyter-notebook"})  # and nothing else
    assert all(set(peer) == {"podSelector"} for peer in policy["spec"]["ingress"][0]["from"])
    store = next(
        o for o in objs if o["kind"] == "Deployment" and o["metadata"]["name"] == "seaweedfs"
    )
    assert store["spec"]["template"]["metadata"]["labels"]["sidecar.istio.io/inject"] == "false"
    pvc = kinds[("PersistentVolumeClaim", "naslid-datasets")]["spec"]
    assert pvc["storageClassName"] and pvc["accessModes"] == ["ReadWriteMany"]


def test_the_storage_class_is_named_in_one_place():
    named = [
        p.relative_to(MANIFESTS)
        for p in MANIFESTS.rglob("*.yaml")
        if "storageClassName" in p.read_text()
        and "seaweedfs-pvc" not in p.name
        and "minio-pvc" not in p.name
    ]
    assert named == [Path("components/datasets-rwx/dataset-pvc-patch.yaml")]


def test_launcher_merge_adds_only_a_bucket_override():
    """Merged into a profile's (or kubeflow's) kfp-launcher, it must not move every other
    pipeline's artifacts: no defaultPipelineRoot, no default provider."""
    merge = _documents(MANIFESTS / "kfp-launcher-merge.yaml")[0]
    assert set(merge["data"]) == {"providers"}
    minio = yaml.safe_load(merge["data"]["providers"])["minio"]
    assert set(minio) == {"overrides"}
    (override,) = minio["overrides"]
    assert override["bucketName"] == "naslid" and override["endpoint"] == "naslid-store:9000"
    assert override["credentials"]["secretRef"]["secretName"] == "naslid-minio"


def test_the_bucket_is_created_or_the_store_fails_to_start():
    objs = _build(MANIFESTS / "overlays" / "seaweedfs")
    pod = _store(objs)
    hook = pod["containers"][0]["lifecycle"]["postStart"]["exec"]["command"][-1]
    assert (
        "|| true" not in hook
        and "-ec" in pod["containers"][0]["lifecycle"]["postStart"]["exec"]["command"]
    )
    assert hook.rstrip().splitlines()[-1].strip() == "shell s3.bucket.list | grep -qw naslid"
