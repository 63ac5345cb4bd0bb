"""Training throughput of the found network at 224x224 against torchvision's MobileNetV2.

Both networks train (forward, backward, SGD step) on the same synthetic batches in the same
process, under the same settings (bf16 autocast and channels-last on GPU, float32 on CPU),
alternating rounds so that drift in the machine's speed hits both. The figure of merit is
throughput per FLOP:

    ratio = (images/s of found x MACs of found) / (images/s of MobileNetV2 x MACs of MobileNetV2)

(goal >= 0.9: the found network uses its multiply-adds at least 90 % as well as MobileNetV2).
MACs are ``torch.utils.flop_counter.FlopCounterMode``'s forward count / 2 at batch 1.

The found network is ``--arch-json OUT/arch.json`` (written by ``naslid transfer``) or
``--arch``; by default the ProxylessNAS-space network that NAS-LID's public code trains on
ImageNet (marsggbo/NAS-LID, ``Imagenet_train/scripts/proxylessv1/arch.json``, read with
ProxylessNAS's candidate order and ``Zero`` last; there at width 1.4, here at ``--width-mult``,
default 1.0: 348 M MACs against MobileNetV2's 301 M). A GPU is used when one is available;
``--quick`` makes a short CPU run (batch 8, one thread, 8 alternating one-step blocks).
Throughput is the median over the timed blocks.

    python bench/transfer_throughput.py [--quick] [--arch-json OUT/arch.json]

Writes bench/results/transfer_throughput.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import torch
from torch import nn

from naslid.io import write_json
from naslid.program import count_flops
from naslid.spaces import get as get_space
from naslid.supernets import imagenet_network

RESULTS = Path(__file__).resolve().parent / "results" / "transfer_throughput.json"
NAS_LID_PROXYLESS_V1 = (
    "mb3k5-mb3k3-skip-mb6k7-mb3k7-mb3k3-mb3k5-mb3k5-mb6k7-mb3k5-mb3k5"
    "-mb3k5-mb6k5-mb3k5-mb3k5-mb3k5-mb6k7-mb6k7-mb3k7-mb3k7-mb6k7"
)


def make_step(net: nn.Module, batch: int, device: torch.device, image_size: int = 224):
    """One training step (forward, backward, SGD) of ``net`` on a fixed synthetic batch."""
    cuda = device.type == "cuda"
    net.train()
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9, nesterov=True, weight_decay=4e-5)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=0.1)
    g = torch.Generator(device="cpu").manual_seed(0)
    x = torch.randn(batch, 3, image_size, image_size, generator=g).to(device)
    y = torch.randint(0, 1000, (batch,), generator=g).to(device)
    if cuda:
        x = x.contiguous(memory_format=torch.channels_last)

    def step() -> None:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cuda):
            loss = loss_fn(net(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def block_rate(step, steps: int, batch: int, device: torch.device) -> float:
    """Images per second over ``steps`` consecutive steps."""
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return steps * batch / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> int:
    from torchvision.models import mobilenet_v2

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--arch", help="mobile-space arch string of the found network")
    p.add_argument(
        "--width-mult", type=float, default=1.0, help="width of --arch / the default arch"
    )
    p.add_argument(
        "--arch-json", help="arch.json written by naslid transfer (space, arch, width_mult)"
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="short run: batch 8, 2 warm-up steps, 8 rounds of 1 timed step, 1 CPU thread",
    )
    p.add_argument("--batch-size", type=int, default=None, help="default 128 (GPU), 8 with --quick")
    p.add_argument(
        "--steps", type=int, default=None, help="timed steps per block (default 20, 1 with --quick)"
    )
    p.add_argument(
        "--rounds",
        type=int,
        default=None,
        help="alternating timed blocks per network (default 5, 8 with --quick); the median counts",
    )
    p.add_argument("--device", default=None, help="default: cuda when available")
    p.add_argument(
        "--threads", type=int, default=None, help="CPU threads (default: torch's; 1 with --quick)"
    )
    p.add_argument("--out", default=str(RESULTS))
    args = p.parse_args(argv)

    # --quick: one CPU thread unless told otherwise; on a shared 2-core machine OpenMP threads
    # spinning against other processes made 2-thread runs 5x slower and erratic
    threads = args.threads or (1 if args.quick else None)
    if threads:
        torch.set_num_threads(threads)
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    batch = args.batch_size or (8 if args.quick else 128)
    steps = args.steps or (1 if args.quick else 20)
    rounds = args.rounds or (8 if args.quick else 5)
    warmup = 2 if args.quick else 10
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True

    mbv2 = mobilenet_v2(num_classes=1000)
    mbv2_macs = count_flops(mbv2, 224)
    space, width = "mobilenet", args.width_mult
    if args.arch_json:
        info = json.loads(Path(args.arch_json).read_text())
        space, arch, width = info["space"], info["arch"], float(info.get("width_mult", 1.0))
        origin = f"from {args.arch_json}"
    elif args.arch:
        arch, origin = args.arch, "given"
    else:
        arch, origin = NAS_LID_PROXYLESS_V1, "NAS-LID public code, scripts/proxylessv1/arch.json"
    get_space(space).from_str(arch)  # validates
    found = imagenet_network(space, arch, 1000, width, dropout=0.1)
    found_macs = count_flops(found, 224)
    nets = {"found": found.to(device), "mobilenet_v2": mbv2.to(device)}
    if device.type == "cuda":
        nets = {k: v.to(memory_format=torch.channels_last) for k, v in nets.items()}

    step = {k: make_step(v, batch, device) for k, v in nets.items()}
    for name in nets:
        for _ in range(warmup):
            step[name]()
    # short timed blocks, alternating A B B A ...: drift and other processes' load hit both alike
    rates: dict[str, list[float]] = {k: [] for k in nets}
    for r in range(rounds):
        for name in list(nets) if r % 2 == 0 else list(reversed(nets)):
            rates[name].append(block_rate(step[name], steps, batch, device))
        print(
            f"round {r + 1}: "
            + ", ".join(f"{k} {v[-1]:.1f}" for k, v in rates.items())
            + " images/s",
            flush=True,
        )
    median = {k: statistics.median(v) for k, v in rates.items()}
    macs = {"found": found_macs, "mobilenet_v2": mbv2_macs}
    ratio = (median["found"] * macs["found"]) / (median["mobilenet_v2"] * macs["mobilenet_v2"])
    result = {
        "device": torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)",
        "torch": torch.__version__,
        "precision": "bf16 autocast, channels-last" if device.type == "cuda" else "float32",
        "image_size": 224,
        "batch_size": batch,
        "timed_steps_per_block": steps,
        "warmup_steps": warmup,
        "rounds": rounds,
        "quick": args.quick,
        "found": {
            "space": space,
            "arch": arch,
            "width_mult": width,
            "origin": origin,
            "macs_M": found_macs / 1e6,
            "params_M": sum(p.numel() for p in found.parameters()) / 1e6,
            "images_per_s": median["found"],
            "median_of_rounds": True,
            "all_rounds": rates["found"],
        },
        "mobilenet_v2": {
            "macs_M": mbv2_macs / 1e6,
            "params_M": sum(p.numel() for p in mbv2.parameters()) / 1e6,
            "images_per_s": median["mobilenet_v2"],
            "all_rounds": rates["mobilenet_v2"],
        },
        "images_per_s_ratio": median["found"] / median["mobilenet_v2"],
        "per_flop_ratio": ratio,
        "goal": 0.9,
        "goal_met": ratio >= 0.9,
    }
    write_json(args.out, result)
    print(
        json.dumps(
            {k: result[k] for k in ("device", "images_per_s_ratio", "per_flop_ratio", "goal_met")},
            indent=2,
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
