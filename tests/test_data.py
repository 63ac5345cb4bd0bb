"""Data sets in every layout (made here, tiny), splits, errors, augmentation and batching."""

from __future__ import annotations

import io
import pickle

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import SHARED
from PIL import Image

from naslid.data import (
    CIFAR10_MEAN,
    BatchIterator,
    ImageData,
    crop_flip,
    limit_per_class,
    load,
    random_crop_flip,
    stratified_halves,
    stratified_sample,
)

CLASSES = ["cat", "dog", "frog"]


def pixels(n: int, seed: int, size: int = 32) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(n, size, size, 3), dtype=np.uint8)


def png_bytes(img: np.ndarray, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format=fmt)
    return buf.getvalue()


# ------------------------------------------------------------------ digits and synthetic
def test_digits_splits_shapes_and_scale():
    from sklearn.datasets import load_digits

    parts = {s: load("digits", split=s) for s in ("train", "valid", "test")}
    assert {s: len(d) for s, d in parts.items()} == {"train": 1078, "valid": 359, "test": 360}
    train = parts["train"]
    assert train.images.dtype == torch.uint8 and train.images.shape[1:] == (3, 32, 32)
    assert torch.equal(train.images[:, 0], train.images[:, 2])  # grey copied to 3 channels
    assert train.classes == tuple("0123456789") and set(train.labels.tolist()) == set(range(10))
    # 0..16 scaled to 0..255 (bilinear resizing keeps the mean up to the borders)
    raw = load_digits().images.mean() * 255 / 16
    every = torch.cat([d.images for d in parts.values()]).float().mean().item()
    assert every == pytest.approx(raw, rel=0.03)
    # disjoint splits that cover the 1,797 images: compare whole images as bytes
    keys = [
        {bytes(x.numpy()) + bytes([int(y)]) for x, y in zip(d.images, d.labels)}
        for d in parts.values()
    ]
    assert (
        len(keys[0] & keys[1]) + len(keys[0] & keys[2]) + len(keys[1] & keys[2]) < 10
    )  # digits has a few duplicates
    assert torch.equal(load("digits").images, train.images)  # fixed permutation
    assert train.mean[0] == pytest.approx(train.images.float().mean().item() / 255, rel=1e-5)


def test_synthetic_is_deterministic_and_class_dependent():
    a = load("synthetic", split="train", n=200, num_classes=5, seed=1)
    b = load("synthetic", split="train", n=200, num_classes=5, seed=1)
    v = load("synthetic", split="valid", n=100, num_classes=5, seed=1)
    assert torch.equal(a.images, b.images) and torch.equal(a.labels, b.labels)
    assert not torch.equal(a.images[:100], v.images)
    assert a.labels.bincount().tolist() == [40] * 5
    # nearest class mean (from train) classifies the valid split almost perfectly
    means = torch.stack([a.images[a.labels == c].float().mean(0) for c in range(5)])
    dist = ((v.images.float()[:, None] - means[None]) ** 2).flatten(2).sum(-1)
    assert (dist.argmin(1) == v.labels).float().mean().item() > 0.95
    assert len(load("synthetic", split="test", n=100, num_classes=5, limit=10)) == 10


# ------------------------------------------------------------------ CIFAR, torchvision layout
def write_cifar10_pickles(root, per_batch: int = 3) -> tuple[np.ndarray, np.ndarray]:
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    with (folder / "batches.meta").open("wb") as f:
        pickle.dump({"label_names": [f"c{i}" for i in range(10)]}, f)
    train_x, train_y = [], []
    for b in range(1, 6):
        x = pixels(per_batch, seed=b).transpose(0, 3, 1, 2)
        y = [(b * per_batch + i) % 10 for i in range(per_batch)]
        with (folder / f"data_batch_{b}").open("wb") as f:
            pickle.dump({"data": x.reshape(per_batch, -1), "labels": y}, f)
        train_x.append(x)
        train_y += y
    with (folder / "test_batch").open("wb") as f:
        pickle.dump(
            {
                "data": pixels(4, seed=9).transpose(0, 3, 1, 2).reshape(4, -1),
                "labels": [1, 2, 3, 4],
            },
            f,
        )
    return np.concatenate(train_x), np.asarray(train_y)


def test_cifar10_torchvision_pickles(tmp_path):
    x, y = write_cifar10_pickles(tmp_path)
    train = load("cifar10", tmp_path, "train")
    assert train.images.shape == (15, 3, 32, 32) and train.classes == tuple(
        f"c{i}" for i in range(10)
    )
    assert np.array_equal(train.images.numpy(), x) and train.labels.tolist() == y.tolist()
    assert train.mean == CIFAR10_MEAN
    test = load(
        "cifar10", tmp_path / "cifar-10-batches-py", "test"
    )  # the batches folder itself works too
    assert test.labels.tolist() == [1, 2, 3, 4]
    assert np.array_equal(test.images.numpy(), pixels(4, seed=9).transpose(0, 3, 1, 2))


def test_cifar100_torchvision_pickles(tmp_path):
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    with (folder / "meta").open("wb") as f:
        pickle.dump({"fine_label_names": ["apple", "bee", "cloud"], "coarse_label_names": ["x"]}, f)
    for split, n in (("train", 6), ("test", 2)):
        with (folder / split).open("wb") as f:
            pickle.dump(
                {
                    "data": pixels(n, 3).transpose(0, 3, 1, 2).reshape(n, -1),
                    "fine_labels": [i % 3 for i in range(n)],
                    "coarse_labels": [0] * n,
                },
                f,
                protocol=4,  # numpy's _reconstruct path, as in the torchvision files
            )
    train = load("cifar100", tmp_path, "train")
    assert (
        len(train) == 6
        and train.classes == ("apple", "bee", "cloud")
        and train.labels.tolist() == [0, 1, 2] * 2
    )
    assert len(load("cifar100", tmp_path, "test")) == 2


class _RunsCode:
    """Unpickling this calls ``pathlib.Path.touch`` (a crafted batch's payload)."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        import pathlib

        return (pathlib.Path.touch, (pathlib.Path(self.path),))


def test_a_cifar_batch_that_would_run_code_is_refused_naming_it(tmp_path):
    write_cifar10_pickles(tmp_path)
    marker = tmp_path / "pwned"
    batch = tmp_path / "cifar-10-batches-py" / "data_batch_2"
    with batch.open("wb") as f:
        pickle.dump({"data": _RunsCode(marker), "labels": [0]}, f)
    with pytest.raises(ValueError) as err:
        load("cifar10", tmp_path, "train")
    assert not marker.exists()  # nothing ran
    msg = str(err.value)
    assert (
        msg.startswith(f"cifar10: {batch}: refused: the pickle names pathlib") and "\n" not in msg
    )
    # an object array (elements of any type) is not pixels either
    with batch.open("wb") as f:
        pickle.dump({"data": np.array([[1] * 3072], dtype=object), "labels": [0]}, f)
    with pytest.raises(ValueError, match=r"data_batch_2: 'data' is not an array of pixels"):
        load("cifar10", tmp_path, "train")


def test_cifar10_valid_is_a_fixed_stratified_half_split(tmp_path):
    x, y = write_cifar10_pickles(tmp_path, per_batch=8)  # 40 images, 4 per class
    tr, va = load("cifar10-valid", tmp_path, "train"), load("cifar10-valid", tmp_path, "valid")
    assert len(tr) == len(va) == 20
    assert (
        tr.labels.bincount(minlength=10).tolist()
        == [2] * 10
        == va.labels.bincount(minlength=10).tolist()
    )
    rows = {bytes(img.numpy()) for img in tr.images}
    assert rows.isdisjoint(bytes(img.numpy()) for img in va.images)
    assert rows | {bytes(img.numpy()) for img in va.images} == {bytes(img) for img in x}
    assert torch.equal(load("cifar10-valid", tmp_path, "train").images, tr.images)
    a, b = stratified_halves(np.array([0, 0, 0, 1, 1, 1, 1]))
    assert len(a) == 3 and len(b) == 4 and sorted(np.concatenate([a, b])) == list(range(7))


# ------------------------------------------------------------------ ImageFolder and packed
def write_folder(
    root, split: str, fmt: str = "png", per_class: int = 2, size: int = 32, classes=CLASSES
):
    images = {}
    for c, cls in enumerate(classes):
        (root / split / cls).mkdir(parents=True)
        for i in range(per_class):
            img = pixels(1, seed=100 * c + i, size=size)[0]
            Image.fromarray(img).save(root / split / cls / f"{i:04d}.{fmt}")
            images[(cls, i)] = img
    return images


def test_cifar10_imagefolder_png_exact_and_jpeg(tmp_path):
    imgs = write_folder(tmp_path / "png", "train", "png")
    data = load("cifar10", tmp_path / "png", "train", workers=2)
    assert data.classes == tuple(CLASSES) and data.labels.tolist() == [0, 0, 1, 1, 2, 2]
    assert np.array_equal(data.images[2].numpy().transpose(1, 2, 0), imgs[("dog", 0)])
    write_folder(tmp_path / "jpg", "test", "jpg")
    jpg = load("cifar10", tmp_path / "jpg", "test")
    assert jpg.images.shape == (6, 3, 32, 32) and jpg.labels.tolist() == [0, 0, 1, 1, 2, 2]
    limited = load("cifar10", tmp_path / "png", "train", limit=4)  # round-robin over classes
    assert limited.labels.tolist() == [0, 0, 1, 2]


def test_cifar10_packed_npz(tmp_path):
    imgs = [pixels(1, seed=i)[0] for i in range(5)]
    blobs = [png_bytes(im) for im in imgs]
    off = np.cumsum([0] + [len(b) for b in blobs])
    np.savez(
        tmp_path / "test.npz",
        data=np.frombuffer(b"".join(blobs), dtype=np.uint8),
        off=off,
        y=np.array([0, 0, 1, 1, 2]),
        classes=np.array(CLASSES),
    )
    data = load("cifar10", tmp_path, "test")
    assert data.classes == tuple(CLASSES) and data.labels.tolist() == [0, 0, 1, 1, 2]
    assert np.array_equal(data.images.numpy().transpose(0, 2, 3, 1), np.stack(imgs))
    np.savez(tmp_path / "train.npz", data=np.zeros(3, np.uint8), y=np.array([0]))
    with pytest.raises(ValueError, match=r"train.npz lacks classes, off"):
        load("cifar10", tmp_path, "train")


def test_imagenet_style_imagefolder_resizes_and_keeps_train_labels(tmp_path):
    write_folder(tmp_path, "train", "jpg", per_class=1, size=40)
    write_folder(
        tmp_path, "val", "png", per_class=2, size=24, classes=["dog", "frog"]
    )  # a class missing
    train = load("imagefolder", tmp_path, "train", image_size=16)
    val = load("imagefolder", tmp_path, "val", image_size=16)
    assert train.images.shape == (3, 3, 16, 16) and val.images.shape == (4, 3, 16, 16)
    assert val.classes == tuple(CLASSES) and val.labels.tolist() == [1, 1, 2, 2]
    # a wide image is scaled by its shorter side and centre-cropped: red | green | blue -> green
    wide = np.zeros((16, 48, 3), np.uint8)
    wide[:, :16, 0], wide[:, 16:32, 1], wide[:, 32:, 2] = 255, 255, 255
    Image.fromarray(wide).save(tmp_path / "train" / "cat" / "wide.png")
    cat = load("imagefolder", tmp_path, "train", image_size=16)
    green = (
        cat.images[cat.labels == 0][-1].float().mean(dim=(1, 2))
    )  # wide.png sorts after 0000.jpg
    assert green.tolist() == [0.0, 255.0, 0.0]


# ------------------------------------------------------------------ errors
def test_missing_root_and_wrong_layout_name_the_path(tmp_path):
    with pytest.raises(
        FileNotFoundError,
        match=rf"{tmp_path / 'nope'} does not exist.*cifar-10-batches-py.*train.npz",
    ):
        load("cifar10", tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="holds none of the known layouts"):
        load("cifar10", tmp_path / "empty")
    write_cifar10_pickles(tmp_path / "tv")
    (tmp_path / "tv" / "cifar-10-batches-py" / "data_batch_3").unlink()
    with pytest.raises(FileNotFoundError, match="data_batch_3 missing"):
        load("cifar10", tmp_path / "tv")
    write_folder(tmp_path / "f", "train")
    with pytest.raises(FileNotFoundError, match=r"f/test not found"):
        load("cifar10", tmp_path / "f", "test")
    with pytest.raises(FileNotFoundError, match="imagefolder: data root"):
        load("imagefolder", tmp_path / "nope")
    (tmp_path / "bad" / "train" / "cat").mkdir(parents=True)
    (tmp_path / "bad" / "train" / "cat" / "x.jpg").write_bytes(b"not an image")
    with pytest.raises(ValueError, match=r"x.jpg: cannot decode image"):
        load("cifar10", tmp_path / "bad")
    with pytest.raises(ValueError, match="dataset: unknown 'mnist'"):
        load("mnist")
    with pytest.raises(ValueError, match="cifar10 has no split 'valid'"):
        load("cifar10", tmp_path, "valid")


# ------------------------------------------------------------------ augmentation and batches
def test_crop_flip_matches_pad_crop_mirror():
    x = torch.randint(0, 256, (6, 3, 8, 10), dtype=torch.uint8)
    dy, dx = torch.tensor([0, 8, 3, 4, 1, 7]), torch.tensor([8, 0, 5, 4, 2, 6])
    flip = torch.tensor([0, 1, 1, 0, 1, 0]).bool()
    out = crop_flip(x, dy, dx, flip, pad=4)
    padded = F.pad(x, (4, 4, 4, 4))
    for i in range(6):
        ref = padded[i, :, dy[i] : dy[i] + 8, dx[i] : dx[i] + 10]
        assert torch.equal(out[i], ref.flip(-1) if flip[i] else ref)
    centre = crop_flip(
        x, torch.full((6,), 4), torch.full((6,), 4), torch.zeros(6, dtype=torch.bool)
    )
    assert torch.equal(centre, x)
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    assert torch.equal(random_crop_flip(x, g1), random_crop_flip(x, g2))


def test_batch_iterator_epochs_state_and_normalisation():
    data = load("synthetic", split="train", n=50, num_classes=5)
    it = BatchIterator(data, 16, shuffle=True, augment=True, seed=3, drop_last=True)
    assert len(it) == 3 and len(BatchIterator(data, 16)) == 4
    epoch = list(it)
    assert all(x.shape == (16, 3, 32, 32) and x.dtype == torch.float32 for x, _ in epoch)
    state = it.state_dict()
    nxt = list(it)
    again = BatchIterator(data, 16, shuffle=True, augment=True, seed=999, drop_last=True)
    again.load_state_dict(state)
    assert all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(nxt, again))
    plain = BatchIterator(data, 64)  # one batch, in order, no augmentation
    ((x, y),) = list(plain)
    assert torch.equal(y, data.labels)
    back = x * torch.tensor(data.std).view(1, 3, 1, 1) + torch.tensor(data.mean).view(1, 3, 1, 1)
    torch.testing.assert_close(back * 255, data.images.float(), atol=1e-3, rtol=0)
    everything = BatchIterator(data, 7, shuffle=True, seed=1)
    assert sorted(torch.cat([y for _, y in everything]).tolist()) == sorted(data.labels.tolist())
    assert list(BatchIterator(data, 8, channels_last=True))[0][0].is_contiguous(
        memory_format=torch.channels_last
    )
    with pytest.raises(ValueError, match="larger than the 50 images"):
        BatchIterator(data, 64, drop_last=True)


def test_image_data_checks_and_limit():
    with pytest.raises(ValueError, match="uint8"):
        ImageData(
            torch.zeros(2, 3, 4, 4), torch.zeros(2, dtype=torch.long), ("a",), (0, 0, 0), (1, 1, 1)
        )
    with pytest.raises(ValueError, match="labels: values outside"):
        ImageData(
            torch.zeros(2, 3, 4, 4, dtype=torch.uint8),
            torch.tensor([0, 3]),
            ("a", "b"),
            (0, 0, 0),
            (1, 1, 1),
        )
    labels = np.array([0, 0, 0, 1, 1, 2])
    picked = limit_per_class(labels, 4)
    assert picked.tolist() == sorted(picked) and np.bincount(labels[picked]).tolist() == [2, 1, 1]


def test_a_limited_subset_of_a_class_sorted_split_is_random_and_stratified():
    """CIFAR splits built here are sorted by class: "the first N" is one class. Every subset
    naslid takes is a seeded, class-stratified random draw: classes in proportion, members
    drawn at random within their class, the same for the same seed."""
    labels = np.repeat(np.arange(10), [500] * 9 + [250])  # sorted, one class half as large
    pick = stratified_sample(labels, 950, seed=3)
    counts = np.bincount(labels[pick], minlength=10)
    assert counts.tolist() == [100] * 9 + [50]  # exactly in proportion
    assert len(set(pick.tolist())) == 950
    within = pick[labels[pick] == 0]
    assert within.max() > 200  # not the first 100 of class 0
    assert np.array_equal(pick, stratified_sample(labels, 950, seed=3))
    assert not np.array_equal(pick, stratified_sample(labels, 950, seed=4))
    odd = np.bincount(labels[stratified_sample(labels, 37, seed=0)], minlength=10)
    assert odd.sum() == 37 and odd.max() - odd[:9].min() <= 1  # rounding spreads the rest
    data = ImageData(
        torch.zeros(len(labels), 3, 2, 2, dtype=torch.uint8),
        torch.from_numpy(labels),
        tuple(str(i) for i in range(10)),
        (0, 0, 0),
        (1, 1, 1),
    )
    assert len(set(data.subset(limit_per_class(labels, 20)).labels.tolist())) == 10


# ------------------------------------------------------------------ the shared CIFAR-10 copy
def test_shared_cifar10_packed_equals_jpeg_folder():
    packed, folder = SHARED / "data" / "cifar10-packed", SHARED / "data" / "cifar10-jpeg"
    if not (packed / "test.npz").is_file() or not (folder / "test").is_dir():
        pytest.skip(
            f"shared CIFAR-10 not found under {SHARED / 'data'} (set NASLID_SHARED to the shared/ folder)"
        )
    a = load("cifar10", packed, "test", limit=100)
    b = load("cifar10", folder, "test", limit=100)
    assert a.images.shape == (100, 3, 32, 32) and a.labels.bincount().tolist() == [10] * 10
    assert a.classes[0] == "airplane" and a.classes == b.classes
    assert torch.equal(a.images, b.images) and torch.equal(a.labels, b.labels)
    assert 90 < a.images.float().mean().item() < 150  # README: channel means about 114..125
