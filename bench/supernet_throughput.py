"""Supernet training throughput (a GPU benchmark; ``--quick`` runs small sizes on a CPU).

(a) The NB201 supernet trained with its path fixed to the best cell against the standalone
    network of that cell (``net.export(arch)``), trained the same way (SGD, bf16 autocast and
    channels_last on a GPU): images/s of each and the ratio (goal >= 0.95).
(b) Seconds per CIFAR-10 epoch (50,000 images; decoded from the packed npz given with
    ``--packed``, or synthetic images of the same size) with a uniformly random path per
    batch at batch 256, and with the path fixed to the best cell at batch 1024 (goals on an
    H100: <= 3.0 s and <= 1.5 s).

    python bench/supernet_throughput.py --packed ../shared/data/cifar10-packed
    python bench/supernet_throughput.py --quick          # CPU smoke run

Writes bench/results/supernet_throughput.json.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

from naslid import __version__
from naslid.data import BatchIterator, ImageData, load
from naslid.distributed import resolve_device
from naslid.io import write_json
from naslid.spaces.nb201 import SPACE, Arch
from naslid.supernets.nb201 import Supernet
from naslid.train import TrainConfig, build_optimizer, train_epoch

BEST = Arch.from_str(
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"
)
OUT = Path(__file__).resolve().parent / "results" / "supernet_throughput.json"
GOALS = {"ratio_min": 0.95, "epoch_random_b256_s_max": 3.0, "epoch_best_b1024_s_max": 1.5}


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def prepare(net: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    fmt = torch.channels_last if device.type == "cuda" else torch.preserve_format
    return net.to(device, memory_format=fmt)


def timed_epoch(
    net, data: ImageData, batch: int, archs_fn, device: torch.device, seed: int = 0
) -> tuple[float, int]:
    """Seconds of one training pass over ``data`` (drop_last) and the number of images seen."""
    cuda = device.type == "cuda"
    batches = BatchIterator(
        data,
        batch,
        shuffle=True,
        augment=True,
        device=device,
        drop_last=True,
        channels_last=cuda,
        seed=seed,
    )
    cfg = TrainConfig(epochs=1, batch_size=batch)
    opt, sched = build_optimizer(net, cfg, len(batches))
    archs = archs_fn(len(batches))
    sync(device)
    t0 = time.perf_counter()
    train_epoch(net, batches, opt, sched, archs, grad_clip=cfg.grad_clip, amp=cuda)
    sync(device)
    return time.perf_counter() - t0, len(batches) * batch


def warm_up(net, data: ImageData, batch: int, archs_fn, device: torch.device, steps: int) -> None:
    """A few untimed steps: cuDNN autotuning, allocator growth, lazy initialisation."""
    timed_epoch(net, data.subset(np.arange(min(len(data), batch * steps))), batch, archs_fn, device)


def fixed(arch):
    return lambda n: [arch] * n


def random_paths(seed: int):
    rng = np.random.default_rng(seed)
    return lambda n: SPACE.sample(rng, n, None)


def part_a(
    data: ImageData, C: int, N: int, batch: int, steps: int, rounds: int, device: torch.device
) -> dict:
    torch.manual_seed(0)
    supernet = prepare(Supernet(C=C, N=N, num_classes=data.num_classes), device)
    standalone = prepare(supernet.export(BEST), device)
    sub = data.subset(np.arange(min(len(data), batch * steps)))
    runs = {"supernet_fixed_path": [], "standalone": []}
    contenders = (
        (supernet, "supernet_fixed_path", fixed(BEST)),
        (standalone, "standalone", fixed(None)),
    )
    for net, _key, fn in contenders:
        warm_up(net, data, batch, fn, device, 2 if device.type == "cpu" else 5)
    for _ in range(rounds):  # interleaved, so drifts in clocks or load hit both alike
        for net, key, fn in contenders:
            seconds, images = timed_epoch(net, sub, batch, fn, device)
            runs[key].append(images / seconds)
    ips = {k: statistics.median(v) for k, v in runs.items()}
    return {
        "C": C,
        "N": N,
        "batch": batch,
        "steps": len(sub) // batch,
        "rounds": rounds,
        "images_per_s": ips,
        "runs": runs,
        "ratio": ips["supernet_fixed_path"] / ips["standalone"],
    }


def part_b(data: ImageData, C: int, N: int, batches: tuple[int, int], device: torch.device) -> dict:
    out = {"C": C, "N": N, "images": len(data)}
    for label, batch, fn in (
        ("random_paths", batches[0], random_paths(1)),
        ("best_cell", batches[1], fixed(BEST)),
    ):
        torch.manual_seed(0)
        net = prepare(Supernet(C=C, N=N, num_classes=data.num_classes), device)
        warm_up(net, data, batch, fn, device, 2 if device.type == "cpu" else 10)
        seconds, images = timed_epoch(net, data, batch, fn, device)
        out[label] = {
            "batch": batch,
            "seconds_per_epoch": seconds,
            "images_per_s": images / seconds,
        }
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--packed", help="folder with CIFAR-10 train.npz (the packed layout); default: synthetic"
    )
    ap.add_argument(
        "--quick", action="store_true", help="small sizes (C=8, N=1, 512 images): a CPU smoke run"
    )
    ap.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    ap.add_argument(
        "--rounds", type=int, default=3, help="interleaved timing rounds in (a) (default 3)"
    )
    ap.add_argument("--out", default=str(OUT))
    args = ap.parse_args(argv)

    device = resolve_device(args.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    if args.quick:
        C, N, n_images, b_ratio, steps, b_epoch = 8, 1, 512, 32, 4, (32, 128)
    else:
        C, N, n_images, b_ratio, steps, b_epoch = 16, 5, 50_000, 256, 60, (256, 1024)
    t0 = time.perf_counter()
    if args.packed:
        data = load("cifar10", args.packed, "train", limit=n_images if args.quick else None)
        source = f"cifar10 packed {args.packed}"
    else:
        data = load("synthetic", split="train", n=n_images, num_classes=10)
        source = "synthetic (same size as CIFAR-10)" if not args.quick else "synthetic"
    load_s = time.perf_counter() - t0
    print(
        f"data: {source}, {len(data)} images, loaded in {load_s:.1f} s; device {device}",
        file=sys.stderr,
    )

    a = part_a(data, C, N, b_ratio, steps, args.rounds, device)
    print(
        f"(a) supernet fixed path {a['images_per_s']['supernet_fixed_path']:.0f} img/s, standalone "
        f"{a['images_per_s']['standalone']:.0f} img/s, ratio {a['ratio']:.3f} (goal >= {GOALS['ratio_min']})"
    )
    b = part_b(data, C, N, b_epoch, device)
    print(
        f"(b) epoch of {len(data)} images: random paths (batch {b_epoch[0]}) "
        f"{b['random_paths']['seconds_per_epoch']:.2f} s, best cell (batch {b_epoch[1]}) "
        f"{b['best_cell']['seconds_per_epoch']:.2f} s"
    )
    result = {
        "benchmark": "supernet_throughput",
        "quick": args.quick,
        "device": torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)",
        "torch": torch.__version__,
        "naslid": __version__,
        "data": {"source": source, "images": len(data), "load_seconds": load_s},
        "precision": "bf16 autocast + channels_last" if device.type == "cuda" else "fp32",
        "a_fixed_path_vs_standalone": a,
        "b_epoch_seconds": b,
        "goals": GOALS,
        "goals_apply": (not args.quick) and device.type == "cuda",
        "met": {
            "ratio": a["ratio"] >= GOALS["ratio_min"],
            "epoch_random_b256": b["random_paths"]["seconds_per_epoch"]
            <= GOALS["epoch_random_b256_s_max"],
            "epoch_best_b1024": b["best_cell"]["seconds_per_epoch"]
            <= GOALS["epoch_best_b1024_s_max"],
        },
    }
    write_json(args.out, result)
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
