"""Image data sets held in memory as uint8 tensors, with augmentation on the device.

``load(name, root, split)`` decodes a data set once into an :class:`ImageData` (uint8 NCHW
images, int64 labels, class names, normalisation mean/std); :class:`BatchIterator` moves it
once to the training device (GPU memory when there is one, RAM otherwise) and cuts
shuffled, augmented, normalised batches there, so no CPU worker has to feed the GPU.
Shuffling and augmentation draw from one seeded ``torch.Generator`` whose state is saved in
training checkpoints (``state_dict`` / ``load_state_dict``).

Data sets (``DATASETS`` lists each one's splits):

- ``digits``: scikit-learn's bundled handwritten digits (1,797 8x8 images in 0..16), scaled
  to 0..255, resized to 32x32 (bilinear) and copied to three channels; train/valid/test are
  60/20/20 % of a fixed permutation. Needs no download: the default of ``make run``.
- ``synthetic``: small, deterministic, class-dependent images (a colour and a coarse pattern
  per class plus noise) that a network can learn; for tests and benchmarks.
- ``cifar10`` / ``cifar100``: from any of three layouts under ``root``: torchvision's
  (``cifar-10-batches-py/`` or ``cifar-100-python/`` pickle batches; ``download=True`` fetches
  it with torchvision where there is a network), an ImageFolder tree (``train/<class>/*.jpg``,
  ``test/<class>/*.jpg``, read in place and decoded in a thread pool) or the packed form
  (``train.npz`` / ``test.npz`` holding ``data``, ``off``, ``y``, ``classes``: every image file's
  bytes concatenated, with offsets).
- ``cifar10-valid``: NAS-Bench-201's "cifar10-valid" setting: the 50,000 training images split
  25,000/25,000 into train/valid, the test set as test. NAS-Bench-201 used a fixed split file
  that we do not have; we use a fixed, class-stratified permutation instead (seed 0), so the
  split is balanced and reproducible but not image-for-image the benchmark's.
- ``imagefolder``: an ImageNet-style tree, ``train/<class>/*`` and ``val/<class>/*`` (split
  ``valid``), resized (shorter side) and centre-cropped to ``image_size``.
"""

from __future__ import annotations

import functools
import io
import math
import os
import pickle
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

DATASETS: dict[str, tuple[str, ...]] = {
    "digits": ("train", "valid", "test"),
    "synthetic": ("train", "valid", "test"),
    "cifar10": ("train", "test"),
    "cifar10-valid": ("train", "valid", "test"),
    "cifar100": ("train", "test"),
    "imagefolder": ("train", "valid"),
}
_SPLIT_ALIASES = {"val": "valid", "validation": "valid"}

# Normalisation constants of NAS-Bench-201 (Dong & Yang 2020; AutoDL-Projects get_datasets).
CIFAR10_MEAN = (125.3 / 255, 123.0 / 255, 113.9 / 255)
CIFAR10_STD = (63.0 / 255, 62.1 / 255, 66.7 / 255)
CIFAR100_MEAN = (129.3 / 255, 124.1 / 255, 112.4 / 255)
CIFAR100_STD = (68.2 / 255, 65.4 / 255, 70.4 / 255)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
SYNTHETIC_MEAN = (0.5, 0.5, 0.5)
SYNTHETIC_STD = (0.25, 0.25, 0.25)

SPLIT_SEED = 0
"""Seed of the fixed permutations (digits splits, cifar10-valid's stratified halves)."""
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".webp", ".tif", ".tiff")


@dataclass(frozen=True)
class ImageData:
    """A decoded split: ``images`` uint8 [n, 3, H, W], ``labels`` int64 [n]."""

    images: Tensor
    labels: Tensor
    classes: tuple[str, ...]
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    name: str = ""
    split: str = ""

    def __post_init__(self) -> None:
        if self.images.dtype != torch.uint8 or self.images.dim() != 4 or self.images.shape[1] != 3:
            raise ValueError(
                f"images: expected uint8 [n, 3, H, W], got {self.images.dtype} {tuple(self.images.shape)}"
            )
        if self.labels.shape != (self.images.shape[0],):
            raise ValueError(
                f"labels: expected shape ({self.images.shape[0]},), got {tuple(self.labels.shape)}"
            )
        if len(self.labels) and (
            int(self.labels.min()) < 0 or int(self.labels.max()) >= len(self.classes)
        ):
            raise ValueError(f"labels: values outside 0..{len(self.classes) - 1}")

    def __len__(self) -> int:
        return int(self.images.shape[0])

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def image_size(self) -> tuple[int, int]:
        return int(self.images.shape[2]), int(self.images.shape[3])

    def subset(self, index: Sequence[int] | np.ndarray | Tensor) -> ImageData:
        if isinstance(index, Tensor):
            idx = index.to(self.images.device, torch.long)
        else:
            idx = torch.as_tensor(np.asarray(index), dtype=torch.long, device=self.images.device)
        return ImageData(
            self.images[idx],
            self.labels[idx],
            self.classes,
            self.mean,
            self.std,
            self.name,
            self.split,
        )

    def to(self, device: str | torch.device) -> ImageData:
        return ImageData(
            self.images.to(device),
            self.labels.to(device),
            self.classes,
            self.mean,
            self.std,
            self.name,
            self.split,
        )


# ------------------------------------------------------------------------------ entry point
def load(
    name: str,
    root: str | os.PathLike | None = None,
    split: str = "train",
    *,
    download: bool = False,
    limit: int | None = None,
    image_size: int | None = None,
    workers: int | None = None,
    n: int | None = None,
    num_classes: int | None = None,
    seed: int = 0,
) -> ImageData:
    """Decode ``split`` of data set ``name`` into memory.

    ``root``: the data folder (cifar*, imagefolder; default ``$NASLID_DATA/<name>``).
    ``download``: fetch CIFAR with torchvision when ``root`` holds no copy (needs a network).
    ``limit``: at most this many images, taken evenly over the classes (the first of each
    class in file order), and only those are decoded. ``image_size``: side of the square
    images (default 32; other sizes are resized, shorter side, then centre-cropped).
    ``workers``: decoding threads. ``n``, ``num_classes``, ``seed``: synthetic data only.
    """
    name = name.lower()
    if name not in DATASETS:
        raise ValueError(f"dataset: unknown {name!r}; expected one of {', '.join(DATASETS)}")
    split = _SPLIT_ALIASES.get(split, split)
    if split not in DATASETS[name]:
        raise ValueError(
            f"split: {name} has no split {split!r} (it has {', '.join(DATASETS[name])})"
        )
    if limit is not None and limit <= 0:
        raise ValueError(f"limit: must be positive, got {limit}")
    if name == "digits":
        data = digits(split)
        return data.subset(limit_per_class(data.labels.numpy(), limit)) if limit else data
    if name == "synthetic":
        data = synthetic(
            split, n=n, num_classes=num_classes or 10, size=image_size or 32, seed=seed
        )
        return data.subset(limit_per_class(data.labels.numpy(), limit)) if limit else data
    size = image_size or 32
    if name.startswith("cifar"):
        return _load_cifar(name, _root(name, root), split, download, limit, size, workers)
    return _load_imagefolder(_root(name, root), split, limit, size, workers)


DATA_ENV = "NASLID_DATA"


def data_home() -> Path:
    """The folder holding the data sets: ``$NASLID_DATA`` (on a cluster the dataset volume),
    else ``~/.cache/naslid/data``."""
    return Path(os.environ.get(DATA_ENV, "~/.cache/naslid/data")).expanduser()


def _root(name: str, root: str | os.PathLike | None) -> Path:
    if root is not None:
        return Path(root).expanduser()
    return data_home() / name.split("-")[0]


def limit_per_class(labels: np.ndarray, limit: int | None) -> np.ndarray:
    """Indices of at most ``limit`` items, round-robin over classes in index order."""
    labels = np.asarray(labels)
    if limit is None or limit >= len(labels):
        return np.arange(len(labels))
    rank = np.zeros(len(labels), dtype=np.int64)
    for c in np.unique(labels):
        where = np.flatnonzero(labels == c)
        rank[where] = np.arange(len(where))
    order = np.lexsort((labels, rank))  # by rank within class, then by class
    return np.sort(order[:limit])


def stratified_halves(labels: np.ndarray, seed: int = SPLIT_SEED) -> tuple[np.ndarray, np.ndarray]:
    """Split indices in two halves with the same class counts, by a fixed permutation."""
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    first, second = [], []
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        first.append(idx[: len(idx) // 2])
        second.append(idx[len(idx) // 2 :])
    return np.sort(np.concatenate(first)), np.sort(np.concatenate(second))


# ------------------------------------------------------------------------------ digits
@functools.lru_cache(maxsize=1)
def _digits_all() -> tuple[Tensor, Tensor, dict[str, np.ndarray], tuple, tuple]:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = torch.from_numpy(bunch.images).float().mul(255.0 / 16.0).unsqueeze(1)
    x = F.interpolate(x, size=(32, 32), mode="bilinear", align_corners=False)
    images = x.round().clamp(0, 255).to(torch.uint8).expand(-1, 3, -1, -1).contiguous()
    labels = torch.from_numpy(bunch.target.astype(np.int64))
    perm = np.random.default_rng(SPLIT_SEED).permutation(len(labels))
    n_train, n_valid = round(0.6 * len(perm)), round(0.2 * len(perm))
    parts = {
        "train": np.sort(perm[:n_train]),
        "valid": np.sort(perm[n_train : n_train + n_valid]),
        "test": np.sort(perm[n_train + n_valid :]),
    }
    train = images[torch.from_numpy(parts["train"])].float() / 255.0
    mean = tuple(float(v) for v in train.mean(dim=(0, 2, 3)))
    std = tuple(float(v) for v in train.std(dim=(0, 2, 3)))
    return images, labels, parts, mean, std


def digits(split: str = "train") -> ImageData:
    """scikit-learn's digits at 32x32x3; 60/20/20 % train/valid/test of a fixed permutation.

    The mean/std are those of the training split (all three channels are equal).
    """
    if split not in DATASETS["digits"]:
        raise ValueError(f"split: digits has no split {split!r} (it has train, valid, test)")
    images, labels, parts, mean, std = _digits_all()
    idx = torch.from_numpy(parts[split])
    return ImageData(
        images[idx], labels[idx], tuple(str(c) for c in range(10)), mean, std, "digits", split
    )


# ------------------------------------------------------------------------------ synthetic
_SYNTHETIC_SIZES = {"train": 512, "valid": 128, "test": 128}


def synthetic(
    split: str = "train", n: int | None = None, num_classes: int = 10, size: int = 32, seed: int = 0
) -> ImageData:
    """Deterministic images whose class decides their colour and a coarse 4x4 pattern.

    Each class has a prototype (half a random colour, half a random 4x4 pattern upsampled to
    ``size``); an image is its class prototype plus Gaussian noise (sigma 24 of 255). The
    splits share the prototypes and draw independent noise and labels.
    """
    if split not in _SYNTHETIC_SIZES:
        raise ValueError(f"split: synthetic has no split {split!r} (it has train, valid, test)")
    n = _SYNTHETIC_SIZES[split] if n is None else int(n)
    if n <= 0 or num_classes < 2 or size < 4:
        raise ValueError(
            f"synthetic: need n > 0, num_classes >= 2, size >= 4 (got {n}, {num_classes}, {size})"
        )
    proto_rng = np.random.default_rng([seed, 0])
    colours = proto_rng.uniform(40, 215, size=(num_classes, 3, 1, 1)).astype(np.float32)
    coarse = torch.from_numpy(
        proto_rng.uniform(0, 255, size=(num_classes, 3, 4, 4)).astype(np.float32)
    )
    pattern = F.interpolate(coarse, size=(size, size), mode="bilinear", align_corners=False).numpy()
    protos = 0.5 * colours + 0.5 * pattern
    rng = np.random.default_rng([seed, 1 + ("train", "valid", "test").index(split)])
    labels = rng.permutation(np.arange(n) % num_classes)
    images = np.empty((n, 3, size, size), dtype=np.uint8)
    for start in range(0, n, 4096):  # chunks keep the float noise small for large n
        stop = min(n, start + 4096)
        noise = rng.standard_normal((stop - start, 3, size, size), dtype=np.float32) * 24.0
        images[start:stop] = np.clip(np.rint(protos[labels[start:stop]] + noise), 0, 255)
    return ImageData(
        torch.from_numpy(images),
        torch.from_numpy(labels.astype(np.int64)),
        tuple(f"class{c}" for c in range(num_classes)),
        SYNTHETIC_MEAN,
        SYNTHETIC_STD,
        "synthetic",
        split,
    )


# ------------------------------------------------------------------------------ decoding
def _resize_center_crop(im, size: int):
    from PIL import Image

    w, h = im.size
    scale = size / min(w, h)
    nw, nh = max(size, round(w * scale)), max(size, round(h * scale))
    im = im.resize((nw, nh), Image.BILINEAR)
    left, top = (nw - size) // 2, (nh - size) // 2
    return im.crop((left, top, left + size, top + size))


def decode_image(source: str | os.PathLike | bytes, size: int, name: str = "") -> np.ndarray:
    """One image file (path or bytes) as uint8 [3, size, size] RGB."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(
            io.BytesIO(source) if isinstance(source, bytes | bytearray | memoryview) else source
        ) as im:
            if im.format == "JPEG":
                im.draft("RGB", (size, size))  # DCT-domain downscale of large JPEGs
            rgb = im.convert("RGB")
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise ValueError(f"{name or source}: cannot decode image ({exc})") from None
    if rgb.size != (size, size):
        rgb = _resize_center_crop(rgb, size)
    return np.asarray(rgb, dtype=np.uint8).transpose(2, 0, 1)


def decode_many(
    sources: Sequence,
    size: int,
    workers: int | None = None,
    names: Sequence[str] | None = None,
    what: str = "images",
) -> np.ndarray:
    """Decode image files (paths or bytes) in a thread pool into uint8 [n, 3, size, size]."""
    n = len(sources)
    _check_memory(n, size, what)
    out = np.empty((n, 3, size, size), dtype=np.uint8)
    workers = workers or min(32, os.cpu_count() or 1)

    def work(chunk: range) -> None:
        for i in chunk:
            out[i] = decode_image(sources[i], size, names[i] if names else "")

    step = max(1, math.ceil(n / (workers * 8)))
    chunks = [range(s, min(n, s + step)) for s in range(0, n, step)]
    if workers <= 1 or len(chunks) <= 1:
        for chunk in chunks:
            work(chunk)
    else:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            list(pool.map(work, chunks))
    return out


def _check_memory(n: int, size: int, what: str) -> None:
    need = n * 3 * size * size
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - non-POSIX
        return
    if need > total // 2:
        raise ValueError(
            f"{what}: {n:,} images at {size}x{size} need {need / 2**30:.1f} GiB in memory, more "
            f"than half of this machine's {total / 2**30:.0f} GiB; pass a smaller image_size or a limit"
        )


@dataclass
class _Index:
    """Labels known up front; pixels decoded only for the indices asked for."""

    labels: np.ndarray
    classes: tuple[str, ...]
    decode: Callable[[np.ndarray], np.ndarray]
    source: str = ""
    extra: dict = field(default_factory=dict)


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
    select = select[limit_per_class(index.labels[select], limit)]
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


def _resize_tensor(images: np.ndarray, size: int) -> np.ndarray:
    x = F.interpolate(
        torch.from_numpy(images).float(),
        size=(size, size),
        mode="bilinear",
        align_corners=False,
        antialias=True,
    )
    return x.round().clamp(0, 255).to(torch.uint8).numpy()


def _read_pickle(path: Path, base: str) -> dict:
    if not path.is_file():
        tv = _CIFAR_TV[base]
        raise FileNotFoundError(
            f"{base}: {path} missing (the torchvision layout holds "
            f"{', '.join(tv.train + tv.test)}, {tv.meta})"
        )
    try:
        with path.open("rb") as f:
            obj = pickle.load(f, encoding="latin1")
    except (pickle.UnpicklingError, EOFError, ValueError) as exc:
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
    root: Path, split: str, limit: int | None, size: int, workers: int | None
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
    select = limit_per_class(index.labels, limit)
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


# ------------------------------------------------------------------------------ augmentation
def crop_flip(x: Tensor, dy: Tensor, dx: Tensor, flip: Tensor, pad: int = 4) -> Tensor:
    """Per image: zero-pad by ``pad``, crop at offset (dy, dx), mirror where ``flip``.

    One gather for the whole batch (``x`` [n, c, h, w], any dtype; offsets in 0..2*pad).
    Equals torchvision's RandomCrop(padding=pad) followed by RandomHorizontalFlip.
    """
    n, c, h, w = x.shape
    padded = F.pad(x, (pad, pad, pad, pad)) if pad else x
    dev = x.device
    rows = dy.to(dev, torch.long)[:, None] + torch.arange(h, device=dev)[None]
    cols = torch.arange(w, device=dev)[None].expand(n, w)
    cols = (
        torch.where(flip.to(dev, torch.bool)[:, None], w - 1 - cols, cols)
        + dx.to(dev, torch.long)[:, None]
    )
    b = torch.arange(n, device=dev)[:, None, None, None]
    ch = torch.arange(c, device=dev)[None, :, None, None]
    return padded[b, ch, rows[:, None, :, None], cols[:, None, None, :]]


def random_crop_flip(x: Tensor, generator: torch.Generator, pad: int = 4) -> Tensor:
    """Random crop with ``pad``-pixel zero padding and horizontal flip, drawn from ``generator``."""
    n = x.shape[0]
    draws = torch.randint(0, 2 * pad + 1, (2, n), generator=generator, device=generator.device)
    flip = torch.randint(0, 2, (n,), generator=generator, device=generator.device).bool()
    return crop_flip(x, draws[0], draws[1], flip, pad)


def normalize(x: Tensor, mean: Tensor, std: Tensor) -> Tensor:
    """uint8 images to float, ``(x / 255 - mean) / std`` per channel (``mean``, ``std`` [1, 3, 1, 1])."""
    return (x.float() / 255.0 - mean) / std


class BatchIterator:
    """Batches of one ImageData on one device; each ``iter()`` is one epoch.

    The images are copied to ``device`` once (uint8); every batch is gathered, augmented
    (random crop with 4-pixel padding + horizontal flip) and normalised there. Shuffling and
    augmentation draw from ``self.generator`` (seeded with ``seed``), which ``state_dict`` /
    ``load_state_dict`` save and restore, so a resumed run sees the same batches.
    """

    def __init__(
        self,
        data: ImageData,
        batch_size: int,
        *,
        shuffle: bool = False,
        augment: bool = False,
        device: str | torch.device = "cpu",
        drop_last: bool = False,
        channels_last: bool = False,
        seed: int = 0,
        pad: int = 4,
    ):
        if batch_size <= 0:
            raise ValueError(f"batch_size: must be positive, got {batch_size}")
        if len(data) == 0:
            raise ValueError(f"{data.name or 'data'} {data.split}: no images")
        if drop_last and len(data) < batch_size:
            raise ValueError(
                f"batch_size: {batch_size} is larger than the {len(data)} images of "
                f"{data.name or 'the data'} {data.split} (drop_last would leave no batch)"
            )
        self.data, self.batch_size = data, batch_size
        self.shuffle, self.augment, self.drop_last = shuffle, augment, drop_last
        self.channels_last, self.pad, self.seed = channels_last, pad, seed
        self.device = torch.device(device)
        self.images = data.images.to(self.device)
        self.labels = data.labels.to(self.device)
        self.mean = torch.tensor(data.mean, dtype=torch.float32, device=self.device).view(
            1, 3, 1, 1
        )
        self.std = torch.tensor(data.std, dtype=torch.float32, device=self.device).view(1, 3, 1, 1)
        self.generator = torch.Generator(device=self.device)
        self.generator.manual_seed(seed)

    def __len__(self) -> int:
        n = len(self.data)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        n = len(self.data)
        if self.shuffle:
            order = torch.randperm(n, generator=self.generator, device=self.device)
        else:
            order = torch.arange(n, device=self.device)
        for b in range(len(self)):
            idx = order[b * self.batch_size : (b + 1) * self.batch_size]
            x = self.images[idx]
            if self.augment:
                x = random_crop_flip(x, self.generator, self.pad)
            x = normalize(x, self.mean, self.std)
            if self.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            yield x, self.labels[idx]

    def state_dict(self) -> dict:
        return {
            "generator": self.generator.get_state(),
            "device": self.device.type,
            "seed": self.seed,
        }

    def load_state_dict(self, state: dict) -> None:
        """Restore the generator; a state saved on another device type cannot be, and says so."""
        if state.get("device") != self.device.type:
            raise ValueError(
                f"data generator: state saved on {state.get('device')!r}, this run uses "
                f"{self.device.type!r}"
            )
        self.generator.set_state(state["generator"].cpu())
