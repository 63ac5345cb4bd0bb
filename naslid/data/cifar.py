"""CIFAR-10 / CIFAR-100 in any of three layouts (torchvision pickle batches, an ImageFolder
tree, packed ``train.npz`` / ``test.npz``), the download, and ``cifar10-valid``'s halves.

The pickle batches are parsed by a restricted unpickler that resolves only numpy's array
reconstruction (:class:`_BatchUnpickler`): a batch that names any other global is refused
with one line naming the file, so a data file cannot run code."""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from naslid.data.decode import _Index, _resize_tensor, decode_many
from naslid.data.folder import _folder_index
from naslid.data.images import (
    CIFAR10_MEAN,
    CIFAR10_STD,
    CIFAR100_MEAN,
    CIFAR100_STD,
    ImageData,
    limit_per_class,
    stratified_halves,
)


# ------------------------------------------------------------------------------ CIFAR
@dataclass(frozen=True)
class _TorchvisionLayout:
    folder: str
    train: tuple[str, ...]
    test: tuple[str, ...]
    meta: str
    names_key: str
    labels_key: str


_CIFAR_TV = {
    "cifar10": _TorchvisionLayout(
        "cifar-10-batches-py",
        tuple(f"data_batch_{i}" for i in range(1, 6)),
        ("test_batch",),
        "batches.meta",
        "label_names",
        "labels",
    ),
    "cifar100": _TorchvisionLayout(
        "cifar-100-python", ("train",), ("test",), "meta", "fine_label_names", "fine_labels"
    ),
}


def _expected_layouts(base: str) -> str:
    tv = _CIFAR_TV[base]
    return (
        f"expected a torchvision folder {tv.folder}/ ({', '.join(tv.train[:1])}..., "
        f"{tv.test[0]}, {tv.meta}), an ImageFolder tree train/<class>/*.jpg + test/<class>/*.jpg, "
        "or packed train.npz + test.npz"
    )


def _cifar_layout(base: str, root: Path) -> tuple[str, Path]:
    tv = _CIFAR_TV[base]
    if (root / tv.folder).is_dir():
        return "torchvision", root / tv.folder
    if (root / tv.meta).is_file() or root.name == tv.folder:
        return "torchvision", root
    if (root / "train.npz").is_file() or (root / "test.npz").is_file():
        return "packed", root
    if (root / "train").is_dir() or (root / "test").is_dir():
        return "imagefolder", root
    if not root.exists():
        raise FileNotFoundError(
            f"{base}: data root {root} does not exist ({_expected_layouts(base)}; "
            "or pass download=True / --download where there is a network)"
        )
    raise FileNotFoundError(
        f"{base}: {root} holds none of the known layouts ({_expected_layouts(base)})"
    )


def _download_cifar(base: str, root: Path, train: bool) -> None:
    import torchvision

    cls = torchvision.datasets.CIFAR10 if base == "cifar10" else torchvision.datasets.CIFAR100
    try:
        root.mkdir(parents=True, exist_ok=True)
        cls(str(root), train=train, download=True)
    except Exception as exc:  # noqa: BLE001 - network errors come in many types
        raise RuntimeError(
            f"{base}: download to {root} failed ({type(exc).__name__}: {exc}); "
            "without a network, point the data root at a local copy"
        ) from None


def _load_cifar(
    name: str,
    root: Path,
    split: str,
    download: bool,
    limit: int | None,
    size: int,
    workers: int | None,
    seed: int = 0,
) -> ImageData:
    base = "cifar100" if name == "cifar100" else "cifar10"
    source_split = "test" if split == "test" else "train"
    try:
        layout, where = _cifar_layout(base, root)
    except FileNotFoundError:
        if not download:
            raise
        _download_cifar(base, root, source_split == "train")
        layout, where = _cifar_layout(base, root)
    if layout == "torchvision":
        index = _torchvision_index(base, where, source_split)
    elif layout == "packed":
        index = _packed_index(base, where, source_split, size, workers)
    else:
        index = _folder_index(base, where, source_split, size, workers)
    select = np.arange(len(index.labels))
    if name == "cifar10-valid" and split != "test":
        train_half, valid_half = stratified_halves(index.labels)
        select = train_half if split == "train" else valid_half
    select = select[limit_per_class(index.labels[select], limit, seed)]
    images = index.decode(select)
    if images.shape[2:] != (size, size):
        images = _resize_tensor(images, size)
    mean, std = (CIFAR100_MEAN, CIFAR100_STD) if base == "cifar100" else (CIFAR10_MEAN, CIFAR10_STD)
    return ImageData(
        torch.from_numpy(np.ascontiguousarray(images)),
        torch.from_numpy(index.labels[select].astype(np.int64)),
        index.classes,
        mean,
        std,
        name,
        split,
    )


class _Refused(Exception):
    """A pickle that names a global outside the CIFAR batch format."""


# The only globals a CIFAR python batch names: numpy's array reconstruction. Everything else a
# pickle can name (os.system, builtins.eval, any class) would run code on load: refused.
_BATCH_GLOBALS = frozenset(
    {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.numeric", "_frombuffer"),  # protocol 5, as numpy >= 1.16 writes it
        ("numpy._core.numeric", "_frombuffer"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
    }
)


class _BatchUnpickler(pickle.Unpickler):
    """Reads the torchvision CIFAR batches (dicts of lists, strings, bytes and uint8 numpy
    arrays) and nothing else: a global outside :data:`_BATCH_GLOBALS` is refused before it
    is looked up, so a crafted batch cannot run code (the data set comes from a bucket)."""

    def find_class(self, module: str, name: str):
        if (module, name) not in _BATCH_GLOBALS:
            raise _Refused(
                f"the pickle names {module}.{name}, which is not part of the CIFAR batch format "
                "(only numpy arrays, lists, strings and numbers are read)"
            )
        if module.startswith("numpy.core.") and hasattr(np, "_core"):
            module = "numpy._core." + module[len("numpy.core.") :]  # numpy 2 (no warning)
        return super().find_class(module, name)


def _read_pickle(path: Path, base: str) -> dict:
    if not path.is_file():
        tv = _CIFAR_TV[base]
        raise FileNotFoundError(
            f"{base}: {path} missing (the torchvision layout holds "
            f"{', '.join(tv.train + tv.test)}, {tv.meta})"
        )
    try:
        with path.open("rb") as f:
            obj = _BatchUnpickler(f, encoding="latin1").load()
    except _Refused as exc:
        raise ValueError(f"{base}: {path}: refused: {exc}") from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as exc:
        raise ValueError(f"{base}: {path} is not a CIFAR pickle batch ({exc})") from None
    if not isinstance(obj, dict):
        raise ValueError(f"{base}: {path} is not a CIFAR pickle batch (no dict inside)")
    return obj


def _torchvision_index(base: str, folder: Path, split: str) -> _Index:
    tv = _CIFAR_TV[base]
    meta = _read_pickle(folder / tv.meta, base)
    if tv.names_key not in meta:
        raise ValueError(f"{base}: {folder / tv.meta} has no {tv.names_key!r}")
    data, labels = [], []
    for fname in tv.train if split == "train" else tv.test:
        batch = _read_pickle(folder / fname, base)
        for key in ("data", tv.labels_key):
            if key not in batch:
                raise ValueError(f"{base}: {folder / fname} has no {key!r}")
        if not isinstance(batch["data"], np.ndarray) or batch["data"].dtype.hasobject:
            raise ValueError(f"{base}: {folder / fname}: 'data' is not an array of pixels")
        arr = np.asarray(batch["data"], dtype=np.uint8)
        if arr.ndim != 2 or arr.shape[1] != 3 * 32 * 32:
            raise ValueError(
                f"{base}: {folder / fname}: 'data' should be [n, 3072], got {arr.shape}"
            )
        data.append(arr.reshape(-1, 3, 32, 32))
        labels.append(np.asarray(batch[tv.labels_key], dtype=np.int64))
    pixels = np.concatenate(data)
    return _Index(
        np.concatenate(labels),
        tuple(str(c) for c in meta[tv.names_key]),
        lambda idx: pixels[idx],
        str(folder),
    )


def _packed_index(base: str, root: Path, split: str, size: int, workers: int | None) -> _Index:
    path = root / f"{split}.npz"
    if not path.is_file():
        raise FileNotFoundError(
            f"{base}: {path} missing (the packed layout holds train.npz and test.npz)"
        )
    with np.load(path, allow_pickle=False) as z:
        missing = {"data", "off", "y", "classes"} - set(z.files)
        if missing:
            raise ValueError(
                f"{base}: {path} lacks {', '.join(sorted(missing))} (expected data, off, y, classes)"
            )
        blob, off, y, classes = z["data"], z["off"], z["y"], z["classes"]
    if len(off) != len(y) + 1 or off[-1] > len(blob):
        raise ValueError(f"{base}: {path}: 'off' must hold len(y) + 1 offsets into 'data'")
    mv = memoryview(blob)

    def decode(idx: np.ndarray) -> np.ndarray:
        return decode_many(
            [bytes(mv[off[i] : off[i + 1]]) for i in idx],
            size,
            workers,
            [f"{path}[{i}]" for i in idx],
            base,
        )

    return _Index(y.astype(np.int64), tuple(str(c) for c in classes), decode, str(path))
