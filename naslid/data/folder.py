"""Class-folder trees (``<split>/<class>/*.jpg``): listing, labelling by the training
split's classes, and the ``imagefolder`` data set (ImageNet-style ``train/`` and ``val/``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from naslid.data.decode import _Index, decode_many
from naslid.data.images import (
    IMAGE_EXTENSIONS,
    IMAGENET_MEAN,
    IMAGENET_STD,
    ImageData,
    limit_per_class,
)


def _list_folder(
    split_dir: Path, what: str, layout: str
) -> tuple[list[str], list[Path], list[int]]:
    if not split_dir.is_dir():
        raise FileNotFoundError(
            f"{what}: {split_dir} not found (the {layout} layout expects {split_dir}/<class>/*.jpg)"
        )
    classes = sorted(
        p.name for p in split_dir.iterdir() if p.is_dir() and not p.name.startswith(".")
    )
    if not classes:
        raise FileNotFoundError(
            f"{what}: {split_dir} has no class folders (expected {split_dir}/<class>/*.jpg)"
        )
    files, labels = [], []
    for c, cls in enumerate(classes):
        found = sorted(
            p
            for p in (split_dir / cls).iterdir()
            if p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith(".")
        )
        files.extend(found)
        labels.extend([c] * len(found))
    if not files:
        raise FileNotFoundError(
            f"{what}: no image files under {split_dir}/<class>/ "
            f"(looked for {', '.join(IMAGE_EXTENSIONS)})"
        )
    return classes, files, labels


def _folder_index(
    what: str,
    root: Path,
    folder: str,
    size: int,
    workers: int | None,
    layout: str = "ImageFolder",
    class_folder: str = "train",
) -> _Index:
    classes, files, labels = _list_folder(root / folder, what, layout)
    if folder != class_folder and (root / class_folder).is_dir():
        # Label by the training split's classes, so that a split that lacks some still agrees.
        reference = sorted(
            p.name
            for p in (root / class_folder).iterdir()
            if p.is_dir() and not p.name.startswith(".")
        )
        unknown = sorted(set(classes) - set(reference))
        if unknown:
            raise ValueError(
                f"{what}: {root / folder} has class folders {unknown} that {root / class_folder} lacks"
            )
        labels = [reference.index(classes[lab]) for lab in labels]
        classes = reference
    label_arr = np.asarray(labels, dtype=np.int64)

    def decode(idx: np.ndarray) -> np.ndarray:
        chosen = [files[i] for i in idx]
        return decode_many(chosen, size, workers, [str(p) for p in chosen], what)

    return _Index(label_arr, tuple(classes), decode, str(root / folder))


def _load_imagefolder(
    root: Path, split: str, limit: int | None, size: int, workers: int | None, seed: int = 0
) -> ImageData:
    if not root.is_dir():
        raise FileNotFoundError(
            f"imagefolder: data root {root} does not exist (expected "
            "train/<class>/*.jpg and val/<class>/*.jpg)"
        )
    folder = "train"
    if split == "valid":
        folder = next((f for f in ("val", "valid") if (root / f).is_dir()), "val")
    index = _folder_index("imagefolder", root, folder, size, workers, "ImageNet (train/, val/)")
    select = limit_per_class(index.labels, limit, seed)
    images = index.decode(select)
    return ImageData(
        torch.from_numpy(images),
        torch.from_numpy(index.labels[select]),
        index.classes,
        IMAGENET_MEAN,
        IMAGENET_STD,
        "imagefolder",
        split,
    )
