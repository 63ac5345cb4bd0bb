"""Cost of one split decision: NAS-LID's LID profiling against GM-NAS's gradient matching.

One decision = every edge x every operation of the full NAS-Bench-201 supernet (C=16, N=5,
32x32 input; 6 x 5 sub-supernets), each criterion as it is defined: NAS-LID's summed
sub-supernet (Eq. 4, forward only, ``LIDConfig.num_batches`` batches), faithful GM-NAS (one
sampled path per repeat, forward + backward, cell-weight gradients, ``GradMatchConfig.num_batches``
repeats). One batch drawn at random from all classes is timed per criterion, fp32, after a
warm-up; a decision's time is that times its batch count (peak memory does not grow with the
count: batches run one after another). For each criterion: seconds per batch and per decision
and, on a GPU, peak memory (``torch.cuda.max_memory_allocated``, also net of what is resident
before: weights + batch), and the LID / gradient ratios (time ratio per decision). Goal on a GPU at batch 2048: memory ratio <= 0.03, time ratio
<= 0.10. On the CPU only the time ratio is printed (use a small batch).

    python bench/split_cost.py                                 # GPU: batches 512 and 2048
    python bench/split_cost.py --cifar ../shared/data/cifar10-packed/train.npz
    python bench/split_cost.py --device cpu --batch 64         # about a minute on 2 cores

Data: CIFAR-10 from a packed npz (``data``, ``off``, ``y``: JPEG bytes with offsets) when
``--cifar`` is given, decoding only the drawn images; otherwise naslid's synthetic images.
Writes ``bench/results/split_cost.json``.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from naslid import data as datasets  # noqa: E402
from naslid.gradmatch import GradMatchConfig  # noqa: E402
from naslid.io import write_json  # noqa: E402
from naslid.lid import LIDConfig, profiling_indices, sample_batches  # noqa: E402
from naslid.spaces import nb201  # noqa: E402
from naslid.split import MeasureConfigs, decide_split, similarity_for_node  # noqa: E402
from naslid.split import criterion as split_criterion  # noqa: E402
from naslid.supernets.nb201 import Supernet  # noqa: E402

GOAL = {"batch": 2048, "memory_ratio": 0.03, "time_ratio": 0.10}


def cifar_batch(
    path: Path, batch: int, seed: int, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """A stratified random batch of the packed CIFAR-10 training set, normalised."""
    path = path / "train.npz" if path.is_dir() else path
    if not path.is_file():
        raise FileNotFoundError(f"--cifar: {path} not found")
    with np.load(path, allow_pickle=False) as z:
        blob, off, y = z["data"], z["off"], z["y"]
    idx = profiling_indices(y, len(y), batch, 1, seed)[0]
    mv = memoryview(blob)
    images = datasets.decode_many([bytes(mv[off[i] : off[i + 1]]) for i in idx], 32)
    mean = torch.tensor(datasets.CIFAR10_MEAN, device=device).view(1, 3, 1, 1)
    std = torch.tensor(datasets.CIFAR10_STD, device=device).view(1, 3, 1, 1)
    x = datasets.normalize(torch.from_numpy(images).to(device), mean, std)
    return x, torch.from_numpy(y[idx].astype(np.int64)).to(device)


def synthetic_batch(
    batch: int, seed: int, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    data = datasets.synthetic("train", n=batch, num_classes=10, seed=seed)
    return sample_batches(data, batch, 1, seed=seed, device=device)[0]


def measure(criterion: str, net, batch, device: torch.device, k: int) -> dict:
    """Seconds per batch and per decision (and peak memory on a GPU) of one split decision of
    the root supernet."""
    configs = MeasureConfigs(
        LIDConfig(k=k, batch_size=len(batch[0]), num_batches=1),
        GradMatchConfig(batch_size=len(batch[0]), num_batches=1),
    )
    count = split_criterion(criterion).batch_config(MeasureConfigs()).num_batches
    # warm-up: one edge (kernels, allocator, cuDNN heuristics), not timed
    similarity_for_node(criterion, net, None, [batch], edges=[0], configs=configs)
    cuda = device.type == "cuda"
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
        resident = torch.cuda.memory_allocated()
    start = time.perf_counter()
    prof = similarity_for_node(criterion, net, None, [batch], configs=configs)
    decision = decide_split(prof)
    if cuda:
        torch.cuda.synchronize()
    per_batch = time.perf_counter() - start
    out = {
        "seconds_per_batch": per_batch,
        "batches_per_decision": count,
        "seconds": per_batch * count,
        "edge": decision.edge,
    }
    if cuda:
        peak = torch.cuda.max_memory_allocated()
        out.update(
            peak_mib=peak / 2**20,
            resident_mib=resident / 2**20,
            extra_mib=(peak - resident) / 2**20,
        )
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p.add_argument(
        "--batch",
        type=int,
        nargs="+",
        help="batch sizes (default 512 2048 on a GPU, 64 on the CPU)",
    )
    p.add_argument(
        "--cifar",
        type=Path,
        help="packed CIFAR-10 train.npz (or its folder); default synthetic data",
    )
    p.add_argument("--C", type=int, default=nb201.CHANNELS)
    p.add_argument("--N", type=int, default=nb201.CELLS_PER_STAGE)
    p.add_argument("--k", type=int, default=LIDConfig.k)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--out", type=Path, default=Path(__file__).resolve().parent / "results" / "split_cost.json"
    )
    args = p.parse_args(argv)

    device = torch.device(
        "cuda" if args.device == "auto" and torch.cuda.is_available() else args.device
    )
    if device.type == "auto":
        device = torch.device("cpu")
    cuda = device.type == "cuda"
    batches = args.batch or ([512, 2048] if cuda else [64])
    torch.manual_seed(args.seed)
    net = Supernet(C=args.C, N=args.N, num_classes=10).to(device)
    results = []
    for size in batches:
        batch = (
            cifar_batch(args.cifar, size, args.seed, device)
            if args.cifar
            else synthetic_batch(size, args.seed, device)
        )
        lid = measure("lid", net, batch, device, args.k)
        grad = measure("gradient", net, batch, device, args.k)
        row = {
            "batch": size,
            "lid": lid,
            "gradient": grad,
            "time_ratio": lid["seconds"] / grad["seconds"],
        }
        if cuda:
            row["memory_ratio"] = lid["peak_mib"] / grad["peak_mib"]
            row["extra_memory_ratio"] = lid["extra_mib"] / grad["extra_mib"]
            print(
                f"batch {size}: LID {lid['seconds']:.2f} s, {lid['peak_mib']:.0f} MiB | gradient "
                f"{grad['seconds']:.2f} s, {grad['peak_mib']:.0f} MiB | time ratio {row['time_ratio']:.3f}, "
                f"memory ratio {row['memory_ratio']:.4f} (net of resident {row['extra_memory_ratio']:.4f})"
            )
        else:
            print(
                f"batch {size}: LID {lid['seconds_per_batch']:.2f} s/batch x {lid['batches_per_decision']}, "
                f"gradient {grad['seconds_per_batch']:.2f} s/batch x {grad['batches_per_decision']}, "
                f"time ratio per decision {row['time_ratio']:.3f}"
            )
        results.append(row)
        del batch
    report = {
        "benchmark": "split_cost",
        "device": torch.cuda.get_device_name(device)
        if cuda
        else f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)",
        "torch": torch.__version__,
        "supernet": {
            "C": args.C,
            "N": args.N,
            "input": 32,
            "edges": len(net.space.slot_options),
            "ops": max(len(o) for o in net.space.slot_options),
        },
        "data": str(args.cifar) if args.cifar else "synthetic",
        "k": args.k,
        "mode": {
            c: split_criterion(c).batch_config(MeasureConfigs()).mode for c in ("lid", "gradient")
        },
        "dtype": "float32",
        "results": results,
        "goal": GOAL,
    }
    at_goal = [r for r in results if r["batch"] == GOAL["batch"] and "memory_ratio" in r]
    if at_goal:
        r = at_goal[0]
        report["goal_met"] = (
            r["memory_ratio"] <= GOAL["memory_ratio"] and r["time_ratio"] <= GOAL["time_ratio"]
        )
    write_json(args.out, report)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
