"""data/catalogue.json: every data set's source, layout, size, checksums and staging command,
checked against the copies in ../shared/data where they exist; `naslid data stage` copies a
data set and refuses one whose checksum differs; the staging Job is valid Kubernetes."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml

from naslid import catalogue
from naslid.cli import main

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("NASLID_SHARED", REPO.parent / "shared")) / "data"


def test_catalogue_names_source_layout_size_checksum_and_command():
    entries = catalogue.load(REPO / "data" / "catalogue.json")
    assert set(entries) >= {"digits", "cifar10", "cifar10-jpeg", "cifar100", "imagenet"}
    for name, item in entries.items():
        for key in ("source", "layout", "size", "path", "stage", "fetch"):
            assert item.get(key) is not None, (name, key)
        assert f"naslid data stage {name}" in item["fetch"] or item["stage"] == "bundled", name
        if item["stage"] != "bundled":
            assert item["checksums"], name
        for check in item["checksums"]:
            assert check["algo"] in ("md5", "sha256", "tree-sha256") and check["value"], name


@pytest.mark.parametrize(
    "name, folder",
    [
        ("cifar10-jpeg", "cifar10-jpeg"),
        ("cifar10-packed", "cifar10-packed"),
        ("nb201-cifar10", "nb201"),
    ],
)
def test_checksums_match_the_shared_copies(name, folder, tmp_path):
    src = SHARED / folder
    if not src.is_dir():
        pytest.skip(f"{src}: not here (set NASLID_SHARED)")
    item = catalogue.entry(name)
    (tmp_path / item["path"]).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / item["path"]).symlink_to(src)  # verify reads in place, no copy of 55 MB
    assert catalogue.verify(item, tmp_path) == []


def _tiny_tree(root: Path) -> None:
    for split, n in (("train", 3), ("test", 2)):
        for c in ("cat", "dog"):
            d = root / split / c
            d.mkdir(parents=True)
            for i in range(n):
                (d / f"{i:04d}.jpg").write_bytes(f"{split}{c}{i}".encode())


def test_stage_copies_checks_and_refuses_a_corrupt_copy(tmp_path, monkeypatch, capsys):
    src = tmp_path / "src"
    _tiny_tree(src)
    digests = {s: catalogue.tree_digest(src / s)[0] for s in ("train", "test")}
    cat = {
        "datasets": [
            {
                "name": "tiny",
                "source": "made here",
                "layout": "tiny/train, tiny/test",
                "size": "10 files",
                "path": "tiny",
                "stage": "copy",
                "fetch": "naslid data stage tiny --from DIR --dest /data",
                "checksums": [
                    {"algo": "tree-sha256", "file": s, "value": v} for s, v in digests.items()
                ],
            }
        ]
    }
    path = tmp_path / "catalogue.json"
    path.write_text(json.dumps(cat))
    monkeypatch.setenv(catalogue.ENV, str(path))
    dest = tmp_path / "pvc"
    assert main(["data", "stage", "tiny", "--from", str(src), "--dest", str(dest)]) == 0
    assert "2 checksums agree" in capsys.readouterr().out
    assert (dest / "tiny" / "train" / "cat" / "0000.jpg").is_file()
    assert main(["data", "verify", "tiny", "--dest", str(dest)]) == 0
    (dest / "tiny" / "test" / "dog" / "0001.jpg").write_bytes(b"flipped")
    assert main(["data", "verify", "tiny", "--dest", str(dest)]) == 1
    err = capsys.readouterr().err
    assert "tiny/test: tree-sha256" in err and "the catalogue says" in err
    (src / "train" / "cat" / "0000.jpg").write_bytes(b"corrupt at the source")
    assert main(["data", "stage", "tiny", "--from", str(src), "--dest", str(tmp_path / "b")]) == 1
    assert "tiny/train: tree-sha256" in capsys.readouterr().err
    assert main(["data", "stage", "nope", "--dest", str(dest)]) == 1
    assert "not in the catalogue (tiny)" in capsys.readouterr().err
    assert main(["data", "list"]) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[0])["name"] == "tiny"


def test_stage_job_mounts_the_dataset_pvc():
    job = yaml.safe_load((REPO / "data" / "stage-job.yaml").read_text())
    spec = job["spec"]["template"]["spec"]
    [container] = spec["containers"]
    assert container["command"][:3] == ["naslid", "data", "stage"]
    assert "/data" in container["command"]
    assert spec["volumes"][0]["persistentVolumeClaim"]["claimName"] == "naslid-datasets"
    assert container["envFrom"] == [{"secretRef": {"name": "naslid-minio"}}]
    validate = pytest.importorskip("kubernetes_validate")
    validate.validate(job, "1.30.0", strict=True)
    dockerfile = (REPO / "images" / "naslid" / "Dockerfile").read_text()
    assert "COPY data/catalogue.json" in dockerfile and "NASLID_CATALOGUE=" in dockerfile


@pytest.mark.parametrize(
    "content, message",
    [
        ("[1, 2]", "expected an object, found a list"),
        ('{"datasets": {"a": 1}}', "field 'datasets' must be a list of objects with a 'name'"),
        ("not json", "not valid JSON"),
    ],
)
def test_a_catalogue_of_the_wrong_shape_is_one_line(
    tmp_path, monkeypatch, capsys, content, message
):
    """NASLID_CATALOGUE holding a list gave a traceback (issue 22, point 9)."""
    path = tmp_path / "catalogue.json"
    path.write_text(content)
    monkeypatch.setenv(catalogue.ENV, str(path))
    assert main(["data", "list"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"naslid data: error: {path}: ") and message in err and "\n" not in err
