"""The dataset catalogue (``data/catalogue.json``): where each data set comes from, its layout,
size and checksum, and how ``naslid data stage`` puts it where the steps read it
(``$NASLID_DATA/<path>``, on a cluster the dataset PVC mounted at /data).

Checksums: ``md5`` / ``sha256`` of one file (the archive a source publishes), or ``tree-sha256``
of a folder: the SHA-256 of the sorted lines ``<sha256 of file>  <relative path>`` of every file
under it, so a copied tree can be checked file by file without an archive.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path
from typing import Any

from naslid.io import folder_files, read_json

REPO_CATALOGUE = Path(__file__).resolve().parents[1] / "data" / "catalogue.json"
ENV = "NASLID_CATALOGUE"
"""Where the catalogue is when naslid is installed outside a checkout (the image sets it)."""


def catalogue_path() -> Path:
    return Path(os.environ.get(ENV) or REPO_CATALOGUE)


def load(path: str | os.PathLike | None = None) -> dict[str, dict]:
    """The catalogue's entries by name."""
    path = Path(path) if path else catalogue_path()
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no dataset catalogue (set {ENV})")
    data = read_json(path, expect=dict)  # one line naming the file: not JSON, not an object
    entries = data.get("datasets")
    if not isinstance(entries, list) or not all(
        isinstance(e, dict) and isinstance(e.get("name"), str) for e in entries
    ):
        raise ValueError(
            f"{path}: field 'datasets' must be a list of objects with a 'name' (set {ENV})"
        )
    return {e["name"]: e for e in entries}


def entry(name: str, path: str | os.PathLike | None = None) -> dict:
    entries = load(path)
    if name not in entries:
        raise KeyError(f"data set {name!r}: not in the catalogue ({', '.join(sorted(entries))})")
    return entries[name]


def file_digest(path: str | os.PathLike, algo: str = "sha256") -> str:
    h = hashlib.new(algo)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def tree_digest(root: str | os.PathLike) -> tuple[str, int, int]:
    """``tree-sha256`` of a folder (its files but hidden ones, :func:`naslid.io.folder_files`),
    with its number of files and bytes."""
    files = folder_files(root)
    lines = "".join(f"{file_digest(path)}  {rel}\n" for rel, path in files)
    size = sum(path.stat().st_size for _, path in files)
    return hashlib.sha256(lines.encode()).hexdigest(), len(files), size


def verify(item: dict, dest: str | os.PathLike) -> list[str]:
    """What does not match the catalogue under ``dest/<path>`` (empty: all checksums agree)."""
    where = Path(dest) / item["path"]
    problems = []
    for check in item.get("checksums", []):
        target = where / check["file"] if check.get("file") else where
        if not target.exists():
            problems.append(f"{target}: missing")
            continue
        if check["algo"] == "tree-sha256":
            got = tree_digest(target)[0]
        else:
            got = file_digest(target, check["algo"])
        if got != check["value"]:
            problems.append(f"{target}: {check['algo']} {got}, the catalogue says {check['value']}")
    return problems


def stage(item: dict, dest: str | os.PathLike, source: str | None = None) -> Path:
    """Put data set ``item`` at ``dest/<path>`` and check it: copy a local folder or a
    ``minio://`` / ``s3://`` prefix (``source``), or download it where the catalogue names a
    public archive (torchvision's checked download). Refuses what fails its checksum."""
    from naslid import store

    where = Path(dest) / item["path"]
    how = item["stage"]
    if how == "bundled":
        return where
    if source:
        if store.is_remote(source):
            store.download_prefix(store.open_store(source), "", where)
        else:
            src = Path(source)
            if not src.exists():
                raise FileNotFoundError(f"--from {src}: no such file or folder")
            if src.is_dir():
                shutil.copytree(src, where, dirs_exist_ok=True)
            else:
                where.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, where / src.name)
    elif how in ("torchvision-cifar10", "torchvision-cifar100"):
        import torchvision

        cls = torchvision.datasets.CIFAR10 if how.endswith("10") else torchvision.datasets.CIFAR100
        for train in (True, False):
            cls(str(where), train=train, download=True)  # checks the archive's md5
    else:
        raise ValueError(f"data set {item['name']!r}: no public download; give --from DIR or URI")
    if how == "torchvision-imagenet":
        import torchvision

        for split in ("train", "val"):  # unpacks the ILSVRC2012 tars into train/ and val/
            torchvision.datasets.ImageNet(str(where), split=split)
    problems = verify(item, dest)
    if problems:
        raise ValueError(f"data set {item['name']!r}: {problems[0]}")
    return where


def describe(item: dict) -> dict[str, Any]:
    return {k: item[k] for k in ("name", "source", "layout", "size", "path") if k in item}
