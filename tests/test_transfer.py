"""``naslid transfer``: the found network trained on an ImageNet-layout tree, exported, resumable."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from naslid.checkpoints import LATEST_KEY, checkpoint_key
from naslid.cli import main
from naslid.io import CorruptFileError, load_torch, write_json
from naslid.spaces import mobilenet as M
from naslid.spaces import nb201 as N
from naslid.supernets import imagenet_network
from naslid.supernets.mobilenet import Supernet
from naslid.transfer import (
    TransferConfig,
    cosine_lr_factor,
    count_flops,
    init_from_supernet,
    load_weights,
    make_digits_imagefolder,
    param_groups,
    read_supernet_meta,
    resolve_data,
    supernet_width,
    topk_correct,
    transfer,
)

ARCH = str(M.sample(np.random.default_rng(0), 1)[0])
SMOKE = dict(epochs=2, batch_size=32, lr=0.4, image_size=32, width_mult=0.25, workers=0)


@pytest.fixture(scope="module")
def digits(tmp_path_factory) -> Path:
    return make_digits_imagefolder(tmp_path_factory.mktemp("digits"), 20, 5, size=32)


@pytest.fixture(scope="module")
def smoke(digits, tmp_path_factory, one_thread):
    """The smoke profile through the CLI: mobilenet, width 0.25, 2 epochs, 32x32, arch from top.json."""
    out = tmp_path_factory.mktemp("transfer")
    write_json(out / "top.json", [{"arch": ARCH, "score": 0.9}, {"arch": "other", "score": 0.1}])
    argv = [
        "transfer",
        "--space",
        "mobilenet",
        "--arch-from",
        str(out / "top.json"),
        "--data",
        str(digits),
        "--out",
        str(out),
        "--quiet",
    ]
    for key, value in SMOKE.items():
        argv += [f"--{key.replace('_', '-')}", str(value)]
    assert main(argv) == 0
    return out


# ------------------------------------------------------------------- pieces
def test_digits_tree(digits):
    for split, per_class in (("train", 20), ("val", 5)):
        classes = sorted(p.name for p in (digits / split).iterdir())
        assert classes == [str(i) for i in range(10)]
        files = sorted((digits / split).glob("*/*.png"))
        assert len(files) == 10 * per_class
    img = Image.open(files[0])
    assert img.size == (32, 32) and img.mode == "RGB"
    train = {p.name for p in (digits / "train").glob("*/*.png")}
    assert not train & {p.name for p in (digits / "val").glob("*/*.png")}  # disjoint digits


def test_cosine_schedule():
    assert cosine_lr_factor(0, 100) == 1.0
    assert cosine_lr_factor(50, 100) == pytest.approx(0.5)
    assert cosine_lr_factor(100, 100) == pytest.approx(0.0)
    assert cosine_lr_factor(25, 100) == pytest.approx(0.5 * (1 + np.cos(np.pi / 4)))
    assert [cosine_lr_factor(s, 100, 4) for s in range(5)] == [0.25, 0.5, 0.75, 1.0, 1.0]
    assert cosine_lr_factor(52, 100, 4) == pytest.approx(0.5)


def test_topk_correct():
    logits = torch.tensor(
        [
            [0.1, 0.9, 0.0, 0.05, 0.02, 0.03],
            [0.5, 0.1, 0.2, 0.3, 0.4, 0.0],
            [0.6, 0.5, 0.4, 0.3, 0.2, 0.1],
        ]
    )
    assert topk_correct(logits, torch.tensor([1, 1, 0])).tolist() == [
        2,
        3,
    ]  # row 1: class 1 ranks 5th
    assert topk_correct(logits, torch.tensor([1, 5, 1])).tolist() == [
        1,
        2,
    ]  # row 1: class 5 ranks 6th
    assert topk_correct(logits[:, :3], torch.tensor([1, 2, 0])).tolist() == [
        2,
        3,
    ]  # k capped at 3 classes


def test_no_weight_decay_on_batchnorm():
    net = imagenet_network("mobilenet", ARCH, 10, 0.25)
    decay, rest = param_groups(net, 4e-5, True)
    bn = {
        id(p) for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d) for p in m.parameters()
    }
    assert {id(p) for p in rest["params"]} == bn and rest["weight_decay"] == 0.0
    assert not bn & {id(p) for p in decay["params"]} and decay["weight_decay"] == 4e-5


def test_imagenet_networks():
    arch = M.from_str(ARCH)
    mob = imagenet_network("mobilenet", ARCH, 1000, 1.0, dropout=0.1)
    assert mob.stem[0].stride == (2, 2) and mob.affine and mob.dropout.p == 0.1
    assert sum(p.numel() for p in mob.parameters()) == M.cost(arch)[1]  # ProxylessNAS ImageNet net
    cell = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_1x1~1|+|skip_connect~0|nor_conv_3x3~1|avg_pool_3x3~2|"
    net = imagenet_network("nb201", cell, 1000, 1.0).eval()
    with torch.no_grad():
        logits, feats = net(torch.randn(1, 3, 224, 224), return_features=True)
    assert logits.shape == (1, 1000)
    cells = net.options.N  # a stage: N cells, then the next one's reduction block first
    assert [f.shape[-1] for f in feats] == [28] * cells + [14] * (cells + 1) + [7] * (cells + 1)
    assert net.stem[0].stride == (2, 2) and len(net.stem) == 8


def test_bad_inputs(digits, tmp_path):
    with pytest.raises(FileNotFoundError, match="val"):
        resolve_data(tmp_path)
    with pytest.raises(ValueError, match="cache"):
        resolve_data("minio://bucket/imagenet")
    with pytest.raises(ValueError, match="arch string"):
        transfer("mobilenet", "mb3k3", digits, tmp_path, TransferConfig(**SMOKE))
    with pytest.raises(ValueError, match="ema_decay"):
        TransferConfig(ema_decay=1.0)
    assert (
        main(["transfer", "--space", "mobilenet", "--data", str(digits), "--out", str(tmp_path)])
        == 1
    )


def test_a_file_that_is_no_image_is_one_line_naming_it(digits, tmp_path, capsys):
    import shutil

    tree = tmp_path / "tree"
    shutil.copytree(digits, tree)
    bad = tree / "val" / "3" / "broken.png"
    bad.write_bytes(b"this is not a PNG")
    cell = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_1x1~1|+|skip_connect~0|nor_conv_3x3~1|avg_pool_3x3~2|"
    args = ["transfer", "--space", "nb201", "--arch", cell, "--data", str(tree)]
    args += ["--image-size", "32", "--epochs", "1", "--out", str(tmp_path / "out")]
    capsys.readouterr()
    assert main([*args, "--workers", "2"]) == 1  # raised inside a loader worker
    err = capsys.readouterr().err.strip().splitlines()  # the progress bar writes there too
    assert (
        err[-1] == f"naslid transfer: error: {bad}: not a readable image (UnidentifiedImageError)"
    )
    assert not any("Traceback" in line for line in err)


# ------------------------------------------------------------------- supernet
def _save_supernet(net, folder: Path) -> Path:
    """As the pretrain / finetune steps leave it (naslid.saved_model.save_model)."""
    from naslid.saved_model import save_model

    return save_model(net, folder)


def test_init_from_a_mobilenet_supernet_keeps_its_function(tmp_path):
    torch.manual_seed(0)
    arch = M.from_str(ARCH)
    # a sub-supernet (the arch's op and mb3k3 / mb6k7 on every layer), as a split step leaves it
    mask = tuple(sorted({op, 0, 5}) for op in arch.ops)
    sup = Supernet(0.25, 10, mask, stem="imagenet").train()
    with torch.no_grad():
        sup(torch.randn(8, 3, 32, 32))  # running statistics
    ckpt = _save_supernet(sup.eval(), tmp_path)
    assert supernet_width(read_supernet_meta(ckpt)) == 0.25  # transfer's default width
    net = imagenet_network("mobilenet", ARCH, 10, 0.25).eval()
    report = init_from_supernet(net, "mobilenet", ckpt)
    # only the affine parameters of the candidates' BatchNorms (index 1 in conv-BN-ReLU6) stay
    assert report["loaded"] > 100 and report["skipped"]
    assert all(".candidates." in k and k.split(".")[-2] == "1" for k in report["skipped"])
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():  # non-affine supernet BN == affine standalone BN at weight 1, bias 0
        torch.testing.assert_close(net(x), sup(x, arch))
    with pytest.raises(ValueError, match="'space'"):
        init_from_supernet(imagenet_network("nb201", str(N.Arch((3,) * 6)), 10), "nb201", ckpt)


def test_init_from_an_nb201_supernet_skips_the_stem(tmp_path):
    from naslid.supernets.nb201 import Supernet as NB201

    sup = NB201(C=4, N=5, num_classes=10)
    ckpt = _save_supernet(sup, tmp_path)
    assert supernet_width(read_supernet_meta(ckpt)) == 0.25  # C = 4
    cell = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_1x1~1|+|skip_connect~0|nor_conv_3x3~1|avg_pool_3x3~2|"
    net = imagenet_network("nb201", cell, 10, 0.25)
    report = init_from_supernet(net, "nb201", ckpt)
    # the CIFAR stem, and the affine parameters of the edges' BatchNorms (index 2 in ReLU-conv-BN)
    assert all(
        k.startswith("stem.") or (".edges." in k and k.split(".")[-2] == "2")
        for k in report["skipped"]
    )
    assert any(k.startswith("stem.") for k in report["skipped"])
    key = "layers.0.edges.0.nor_conv_3x3.1.weight"
    assert torch.equal(net.state_dict()[key], sup.state_dict()[key])


# ------------------------------------------------------------------ the run
def test_smoke_run_reports_and_exports(smoke, digits):
    info = json.loads((smoke / "arch.json").read_text())
    assert info["space"] == "mobilenet" and info["arch"] == ARCH
    assert info["image_size"] == 32 and info["num_classes"] == 10 and info["width_mult"] == 0.25
    macs, params = M.cost(M.from_str(ARCH), M.NetConfig(0.25, 10, "imagenet"), 32)
    assert info["flops_M"] == pytest.approx(macs / 1e6) and info["params_M"] == pytest.approx(
        params / 1e6
    )
    assert 0 <= info["top1"] <= info["top5"] <= 100
    assert info["mean"] == [0.485, 0.456, 0.406] and info["std"] == [0.229, 0.224, 0.225]
    history = json.loads((smoke / "history.json").read_text())
    assert [h["epoch"] for h in history] == [1, 2] and all(
        np.isfinite(h["train_loss"]) for h in history
    )
    assert history[-1]["lr"] == pytest.approx(0.0)  # cosine ends at zero
    # the weights moved away from the initialisation, and reload through naslid
    net = load_weights(smoke)
    torch.manual_seed(123)
    fresh = imagenet_network("mobilenet", ARCH, 10, 0.25)
    assert not torch.equal(net.classifier.weight, fresh.classifier.weight)

    # the program runs in plain PyTorch, never importing naslid, and reproduces the reported top-1
    script = f"""
import json, sys, torch
from pathlib import Path
from PIL import Image
from torchvision.transforms import v2
model = torch.export.load({str(smoke / "model.pt2")!r}).module()
tf = v2.Compose([v2.Resize(37, antialias=True), v2.CenterCrop(32), v2.ToImage(), v2.ToDtype(torch.float32, scale=True)])
files = sorted(Path({str(digits / "val")!r}).glob('*/*.png'))
x = torch.stack([tf(Image.open(f).convert('RGB')) for f in files])
y = torch.tensor([int(f.parent.name) for f in files])
with torch.no_grad():
    logits = model(x)
    one = model(x[:1])
print(json.dumps({{"top1": 100 * float((logits.argmax(1) == y).float().mean()), "shape": list(logits.shape),
                  "one": list(one.shape), "naslid": any(m.startswith("naslid") for m in sys.modules)}}))
"""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        cwd=smoke,
        timeout=300,
        env=env,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    got = json.loads(done.stdout.strip().splitlines()[-1])
    assert got["naslid"] is False
    assert got["shape"] == [50, 10] and got["one"] == [1, 10]
    assert got["top1"] == pytest.approx(info["top1"], abs=2.0)  # at most one near-tie flips


def test_resumed_run_equals_the_uninterrupted_one(smoke, digits, tmp_path):
    config = TransferConfig(**SMOKE)
    first = transfer(
        "mobilenet", ARCH, digits, tmp_path, config, stop_after=1, export=False, progress=False
    )
    assert (
        first["finished"] is False
        and first["epoch"] == 1
        and (tmp_path / "checkpoints" / checkpoint_key(1)).is_file()
    )
    assert not (tmp_path / "arch.json").exists()
    second = transfer("mobilenet", ARCH, digits, tmp_path, config, export=False, progress=False)
    assert second["finished"] and [h["epoch"] for h in second["history"]] == [1, 2]
    reference = json.loads((smoke / "history.json").read_text())
    for got, want in zip(second["history"], reference):
        assert got["train_loss"] == pytest.approx(want["train_loss"], rel=1e-4)
        assert got["top1"] == want["top1"]
    a, b = load_torch(tmp_path / "weights.pt"), load_torch(smoke / "weights.pt")
    for key in b:
        torch.testing.assert_close(a[key], b[key], rtol=1e-4, atol=1e-5)


def test_truncated_or_foreign_checkpoint_is_refused(smoke, digits, tmp_path):
    last = checkpoint_key(SMOKE["epochs"])
    ckpt_dir = tmp_path / "checkpoints"
    (ckpt_dir / last).parent.mkdir(parents=True)
    data = (smoke / "checkpoints" / last).read_bytes()
    (ckpt_dir / last).write_bytes(data[: len(data) // 2])
    with (
        pytest.warns(UserWarning, match="truncated"),
        pytest.raises(CorruptFileError, match="no valid checkpoint"),
    ):
        transfer(
            "mobilenet",
            ARCH,
            digits,
            tmp_path,
            TransferConfig(**SMOKE),
            checkpoint_dir=ckpt_dir,
            progress=False,
        )
    shutil.copy(smoke / "checkpoints" / last, ckpt_dir / last)
    with pytest.raises(ValueError, match="epochs=2.*epochs=3"):
        transfer(
            "mobilenet",
            ARCH,
            digits,
            tmp_path,
            TransferConfig(**{**SMOKE, "epochs": 3}),
            checkpoint_dir=ckpt_dir,
            progress=False,
        )


def test_nb201_with_ema(digits, tmp_path):
    cell = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_1x1~1|+|skip_connect~0|nor_conv_3x3~1|avg_pool_3x3~2|"
    config = TransferConfig(**{**SMOKE, "epochs": 1, "ema_decay": 0.9})
    result = transfer("nb201", cell, digits, tmp_path, config, export=False, progress=False)
    assert result["finished"] and result["ema"] and result["arch"] == cell
    net = load_weights(tmp_path)
    assert count_flops(net, 32) / 1e6 == pytest.approx(result["flops_M"])
    assert sum(p.numel() for p in net.parameters()) / 1e6 == pytest.approx(result["params_M"])
    state = load_torch(tmp_path / "checkpoints" / checkpoint_key(config.epochs))
    ema = {k.removeprefix("module."): v for k, v in state["ema"].items() if k.startswith("module.")}
    for key, value in net.state_dict().items():  # the written network is the EMA's
        torch.testing.assert_close(value, ema[key])


@pytest.mark.slow
def test_data_and_checkpoints_on_an_s3_server(tmp_path, monkeypatch, seaweedfs):
    """The cluster path over real HTTP, on a SeaweedFS server (tests/s3server.py)."""
    digits = make_digits_imagefolder(tmp_path / "digits", 4, 1, size=32)  # 50 files: one PUT each
    from s3server import ACCESS_KEY, SECRET_KEY

    from naslid.store import open_store

    monkeypatch.setenv("MINIO_ENDPOINT", seaweedfs.endpoint)
    monkeypatch.setenv("MINIO_ACCESS_KEY", ACCESS_KEY)
    monkeypatch.setenv("MINIO_SECRET_KEY", SECRET_KEY)
    bucket = open_store("minio://naslid/digits")
    bucket.ensure_bucket()
    files = sorted(p for p in digits.rglob("*.png"))
    for f in files:
        bucket.put_bytes(f.relative_to(digits).as_posix(), f.read_bytes())

    root = resolve_data("minio://naslid/digits", tmp_path / "cache")
    copied = sorted(root.rglob("*.png"))
    assert [p.relative_to(root) for p in copied] == [p.relative_to(digits) for p in files]
    assert all(a.read_bytes() == b.read_bytes() for a, b in zip(copied, files))

    config = TransferConfig(**SMOKE)
    first = transfer(
        "mobilenet",
        ARCH,
        "minio://naslid/digits",
        tmp_path / "out",
        config,
        checkpoint_dir="minio://naslid/ckpt",
        stop_after=1,
        export=False,
        progress=False,
    )
    assert first == {"finished": False, "epoch": 1, "history": first["history"]}
    ckpts = open_store("minio://naslid/ckpt")
    assert ckpts.list() == [checkpoint_key(1), LATEST_KEY]
    from naslid.io import torch_from_bytes

    state = torch_from_bytes(ckpts.get_bytes(checkpoint_key(1)))
    assert state["epoch"] == 1 and state["meta"]["arch"] == ARCH


def test_a_diverged_or_zero_epoch_run_is_one_line_and_writes_no_model(digits, tmp_path, capsys):
    """`transfer --lr 1e6` exported a NaN model with exit 0; `--stop-after -1` exited 0
    without one (issue 22, point 5)."""
    cell = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_1x1~1|+|skip_connect~0|nor_conv_3x3~1|avg_pool_3x3~2|"
    args = ["transfer", "--space", "nb201", "--arch", cell, "--data", str(digits), "--quiet"]
    args += ["--image-size", "32", "--epochs", "2", "--workers", "0", "--out", str(tmp_path / "o")]
    assert main([*args, "--lr", "1e12"]) == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert re.fullmatch(
        r"naslid transfer: error: transfer: epoch \d: (the training loss is nan .*; lower --lr or "
        r"--batch-size|the weights are not finite .*; lower the learning rate)",
        err,
    )
    assert not list((tmp_path / "o").glob("*.pt*")) and not (tmp_path / "o" / "meta.json").exists()
    assert main([*args, "--stop-after", "-1"]) == 1
    assert capsys.readouterr().err.strip() == (
        "naslid transfer: error: --stop-after: must be >= 1, got -1"
    )
