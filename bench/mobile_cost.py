"""The cost, on paper, of NAS-LID's open-domain protocol (section 4, Table 4) on the ProxylessNAS
and the OFA space: measured CPU throughput of each supernet, scaled to the protocol's work.

Per space, the supernet of the profile (``cifar10-proxyless`` / ``cifar10-ofa``: CIFAR stem,
width 1.0, 10 classes, 32x32) is timed on this machine for the three kinds of work the
protocol does, each after one warm-up batch:

- ``train``: one SGD step on a uniformly random path (forward + backward), pretraining and
  fine-tuning;
- ``profile``: one forward of the summed sub-supernet with one layer fixed (LID, Eq. 4,
  ``LIDConfig.mode="mask"``);
- ``score``: one forward of a path (BN recalibration and proxy validation of the search).

The protocol's work, in images, comes from the profiles (written once in ``naslid.config``):
pretraining ``epochs`` x 25,000 images; per round, each node profiled on every never-split
layer's options x ``num_batches`` x ``batch_size`` images; ``warmup_epochs`` per child after
round 1 and ``finetune_epochs`` for the four final sub-supernets; ``population x generations``
archs scored, each on ``bn_batches x bn_batch_size`` + 25,000 validation images. The LID
estimate itself (a k-NN per layer) is not timed; the ImageNet transfer is reported apart, from
the FLOPs of Table 4's NAS-LID network of the space (fwd + bwd = 3x, the profile's epochs of
1,281,167 images at 224 px, at the same assumed H100 rate).

H100 time is an estimate, not a measurement: the measured CPU throughput gives the CPU's
effective multiply-add rate on each kind of work (closed-form FLOPs of the paths / seconds);
the H100 is assumed to sustain ``--gpu-tmacs`` tera multiply-adds per second on the same work
(default 4, i.e. 8 TFLOP/s: depthwise-separable networks at 32x32 are memory-bound and reach
about 1 % of the H100's dense bf16 peak). Change the assumption, not the code, when a device
measures it (the GPU command is ``--device cuda``: it then reports the measured rate instead).

    OMP_NUM_THREADS=1 python bench/mobile_cost.py            # CPU (minutes)
    python bench/mobile_cost.py --device cuda --batch 256    # on a lent GPU: measured rates

Writes bench/results/mobile_cost.json.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from naslid import config, spaces, supernets
from naslid.io import write_json
from naslid.lid import unsplit_edges
from naslid.spaces.table4 import TABLE4

OUT = Path(__file__).resolve().parent / "results" / "mobile_cost.json"
PROFILES = {"mobilenet": "cifar10-proxyless", "ofa": "cifar10-ofa"}
TRAIN_IMAGES = 25_000  # cifar10-valid: NAS-Bench-201's train half
VALID_IMAGES = 25_000
IMAGENET_TRAIN_IMAGES = 1_281_167


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, device: torch.device, repeats: int) -> float:
    """Median seconds of ``fn()`` over ``repeats`` calls after one warm-up call."""
    fn()
    sync(device)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def measure(space_name: str, batch: int, repeats: int, device: torch.device) -> dict:
    prof = config.get(PROFILES[space_name])
    mod = spaces.get(space_name)
    space = mod.SPACE
    net = supernets.from_profile(prof, 10).to(device)
    cfg = mod.NetConfig(prof.supernet_options.width_mult, 10, prof.supernet_options.stem)
    rng = np.random.default_rng(0)
    x = torch.randn(batch, 3, 32, 32, device=device)
    y = torch.randint(0, 10, (batch,), device=device)
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
    paths = space.sample(rng, repeats + 1)
    it = iter(paths * 2)

    def train_step():
        opt.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(net(x, next(it)), y).backward()
        opt.step()

    full = space.full_mask()
    layer = int(rng.integers(space.num_slots))
    fixed = tuple((full[layer][0],) if s == layer else m for s, m in enumerate(full))

    def profile_step():
        with torch.no_grad():
            net(x, fixed)

    def score_step():
        with torch.no_grad():
            net(x, next(it))

    net.train()
    t_train = timed(train_step, device, repeats)
    t_profile = timed(profile_step, device, max(1, repeats // 3))
    net.eval()
    t_score = timed(score_step, device, repeats)
    path_macs = float(np.mean([mod.cost(a, cfg, 32)[0] for a in paths]))
    return {
        "space": space_name,
        "profile": prof.name,
        "batch": batch,
        "img_per_s": {
            "train": batch / t_train,
            "profile": batch / t_profile,
            "score": batch / t_score,
        },
        "path_macs_M": path_macs / 1e6,
        "train_tmacs_per_s": 3 * path_macs * batch / t_train / 1e12,  # fwd + 2x bwd
        "score_tmacs_per_s": path_macs * batch / t_score / 1e12,
        "supernet_params_M": sum(p.numel() for p in net.parameters()) / 1e6,
    }


def protocol_images(space_name: str) -> dict:
    """Images each kind of work processes in the profile's protocol (no transfer)."""
    prof = config.get(PROFILES[space_name])
    space = spaces.get(space_name).SPACE
    full = space.full_mask()
    t, lid, sc, ev = prof.train, prof.lid, prof.scoring, prof.evolution
    options = [len(full[e]) for e in unsplit_edges(full, full)]
    # round r profiles 2**(r-1) nodes, each on every option of the layers its ancestors left
    # unsplit (r-1 fewer layers: counted at the mean number of options)
    profile_forwards = sum(
        2 ** (r - 1) * lid.num_batches * (sum(options) - (r - 1) * np.mean(options))
        for r in range(1, prof.rounds + 1)
    )
    warmup_children = sum(2**r for r in range(1, prof.rounds))  # children not final
    train_epochs = t.epochs + warmup_children * t.warmup_epochs + 2**prof.rounds * t.finetune_epochs
    archs = ev.population * ev.generations
    return {
        "train": train_epochs * TRAIN_IMAGES,
        "profile": int(profile_forwards * lid.batch_size),
        "score": archs * (sc.bn_batches * sc.bn_batch_size + VALID_IMAGES),
        "train_epochs": train_epochs,
        "archs_scored": archs,
    }


def _shown(path: Path) -> str:
    """``path`` relative to the repository when it lies inside (no machine paths in results)."""
    repo = Path(__file__).resolve().parents[1]
    full = Path(path).resolve()
    return str(full.relative_to(repo)) if full.is_relative_to(repo) else str(path)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=6)
    ap.add_argument("--gpu-tmacs", type=float, default=4.0)
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    device = torch.device(args.device)
    torch.manual_seed(0)
    rows = []
    for name in PROFILES:
        m = measure(name, args.batch, args.repeats, device)
        work = protocol_images(name)
        secs = {k: work[k] / m["img_per_s"][k] for k in ("train", "profile", "score")}
        # the measured rate scales to the GPU by the ratio of MAC rates (train and score
        # measured; profile forwards share score's rate per MAC)
        cpu_rate = m["train_tmacs_per_s"], m["score_tmacs_per_s"]
        gpu = args.gpu_tmacs
        gpu_secs = {
            "train": secs["train"] * cpu_rate[0] / gpu,
            "profile": secs["profile"] * cpu_rate[1] / gpu,
            "score": secs["score"] * cpu_rate[1] / gpu,
        }
        # the transfer: the profile's ImageNet epochs of Table 4's NAS-LID network (its FLOPs)
        nas_lid = next(r for r in TABLE4[name] if r.method.startswith("NAS-LID"))
        epochs = config.get(PROFILES[name]).transfer_config.epochs
        transfer_h = epochs * IMAGENET_TRAIN_IMAGES * 3 * nas_lid.flops_m * 1e6 / gpu / 1e12 / 3600
        row = {
            **m,
            "transfer_epochs": epochs,
            "transfer_h100_hours_estimate": transfer_h,
            "work_images": work,
            "measured_device": args.device,
            "device_days": sum(secs.values()) / 86400,
            "device_seconds": secs,
            "h100_assumed_tmacs_per_s": gpu,
            "h100_hours_estimate": sum(gpu_secs.values()) / 3600,
            "h100_seconds_estimate": gpu_secs,
        }
        rows.append(row)
        print(
            f"{name}: train {m['img_per_s']['train']:.1f} img/s, profile "
            f"{m['img_per_s']['profile']:.1f}, score {m['img_per_s']['score']:.1f} "
            f"({args.device}, batch {args.batch}); protocol = {work['train_epochs']} epochs, "
            f"{work['archs_scored']} archs: {row['device_days']:.1f} {args.device}-days; "
            f"H100 at {gpu} TMAC/s: {row['h100_hours_estimate']:.1f} h "
            f"({ {k: round(v / 3600, 2) for k, v in gpu_secs.items()} } h); ImageNet transfer "
            f"({epochs} epochs, {nas_lid.flops_m:.0f} M MACs): {transfer_h:.0f} h"
        )
    write_json(
        args.out,
        {
            "machine": platform.processor() or platform.machine(),
            "args": vars(args) | {"out": _shown(args.out)},
            "rows": rows,
        },
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
