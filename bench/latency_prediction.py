"""How well a latency lookup table predicts whole networks (issue 24).

Per space (NB201, ProxylessNAS, OFA), on one device:

1. measure the table (``naslid.latency.measure``: every option of every layer and the fixed
   parts of the space's cost-model network, at batch ``--batch`` and the space's input size);
2. time ``--networks`` random archs as whole standalone networks, built the way the rest of
   naslid builds them: the mobile spaces' ``imagenet_network`` (what ``naslid.transfer``
   trains: ImageNet 224 px, width 1.0, 1000 classes) and, for NB201, the network of the cost
   model, ``Supernet(C=16, N=5, 10 classes, mask=one cell)`` at 32 px (what
   ``Supernet.export`` gives; the transfer's 224-px NB201 variant with DARTS's stem is another
   network, which the cost model does not describe). Eval mode, ``torch.inference_mode``, the
   table's batch size and threads; ``--warmup`` untimed calls, then the median of
   ``--repeats`` timed ones, interleaved round-robin over the networks as the table's entries
   are (``naslid.latency.time_calls``), so that a burst of load from another process spoils
   one timing of many networks rather than all timings of one.
3. compare: Spearman and Kendall between predicted and measured, the mean absolute percentage
   error, and the bias (measured / predicted, its mean and range: > 1 when whole networks cost
   more than their parts, e.g. Python dispatch between modules or colder caches); the MAPE
   after one scale factor (the median ratio: what is left once the bias is known), and, for
   comparison, Spearman between the closed-form FLOPs and the measured latency.

The machine is recorded (``naslid.device.device_record``, the load average before and after:
on a shared CPU other processes' load is noise in every figure).

    OMP_NUM_THREADS=1 python bench/latency_prediction.py --networks 20      # this CPU
    python bench/latency_prediction.py --device cuda --networks 50          # a lent GPU
    python bench/latency_prediction.py --quick --out /tmp/x.json            # tests: seconds

Writes bench/results/latency_prediction.json (``--out``) and prints a table.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
from scipy import stats

from naslid import latency, spaces, supernets
from naslid.distributed import resolve_device
from naslid.io import write_json

OUT = Path(__file__).resolve().parent / "results" / "latency_prediction.json"
SPACES = ("nb201", "mobilenet", "ofa")


def build_network(space: str, arch) -> torch.nn.Module:
    """The standalone network of ``arch`` the table describes (see the module docstring)."""
    if space == "nb201":
        from naslid.spaces.nb201 import CELLS_PER_STAGE, CHANNELS, SPACE
        from naslid.supernets.nb201 import Supernet

        return Supernet(CHANNELS, CELLS_PER_STAGE, 10, SPACE.arch_mask(arch), affine=True)
    return supernets.imagenet_network(space, str(arch), 1000)


def run_space(space: str, args, device: torch.device, sync) -> dict:
    sp = spaces.get(space).SPACE
    started = time.perf_counter()
    table = latency.measure(
        space, batch_size=args.batch, warmup=args.warmup, repeats=args.table_repeats,
        device=str(device),
    )  # fmt: skip
    table_seconds = time.perf_counter() - started
    rng = np.random.default_rng(args.seed)
    archs = [a for a in sp.sample(rng, 4 * args.networks) if sp.is_connected(a)][: args.networks]
    x = torch.randn(args.batch, 3, table.resolution, table.resolution, device=device)
    with torch.inference_mode():
        nets = [build_network(space, arch).to(device).eval() for arch in archs]
        calls = {i: (lambda net=net: net(x)) for i, net in enumerate(nets)}
        timed = latency.time_calls(calls, args.warmup, args.repeats, sync)
    rows = [
        {
            "arch": str(arch),
            "predicted_ms": table.predict(arch),
            "measured_ms": timed[i].median_ms,
            "measured_iqr_ms": timed[i].iqr_ms,
            "flops_M": sp.flops(arch),
        }
        for i, arch in enumerate(archs)
    ]
    pred = np.array([r["predicted_ms"] for r in rows])
    meas = np.array([r["measured_ms"] for r in rows])
    flops = np.array([r["flops_M"] for r in rows])
    ratio = meas / pred
    return {
        "networks": len(rows),
        "spearman": float(stats.spearmanr(pred, meas).statistic),
        "kendall": float(stats.kendalltau(pred, meas).statistic),
        "mape": float(np.mean(np.abs(pred - meas) / meas)),
        "bias": float(np.mean(ratio)),
        "bias_min": float(ratio.min()),
        "bias_max": float(ratio.max()),
        "mape_after_bias": float(np.mean(np.abs(pred * np.median(ratio) - meas) / meas)),
        "spearman_flops": float(stats.spearmanr(flops, meas).statistic),
        "measured_ms": [float(meas.min()), float(np.median(meas)), float(meas.max())],
        "table_seconds": round(table_seconds, 2),
        "table_entries": latency.summary(table)["entries"],
        "resolution": table.resolution,
        "rows": rows,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--spaces", nargs="+", default=list(SPACES), choices=SPACES)
    p.add_argument("--networks", type=int, default=20, help="random archs per space")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--repeats", type=int, default=20, help="timed calls of a whole network")
    p.add_argument("--table-repeats", type=int, default=20, help="timed calls of an entry")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (recorded)")
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true", help="4 networks, 3 timed calls (tests)")
    p.add_argument("--out", type=Path, default=OUT)
    args = p.parse_args(argv)
    if args.quick:
        args.networks, args.warmup, args.repeats, args.table_repeats = 4, 1, 3, 3
    torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    load_before = os.getloadavg()
    started = time.perf_counter()
    results = {space: run_space(space, args, device, sync) for space in args.spaces}
    report = {
        "command": " ".join(["python", "bench/latency_prediction.py", *(argv or sys.argv[1:])]),
        "machine": {
            "device": latency.device_record(device),
            "omp_num_threads": os.environ.get("OMP_NUM_THREADS", ""),
            "cpu_count": os.cpu_count(),
            "loadavg_before": [round(v, 2) for v in load_before],
            "loadavg_after": [round(v, 2) for v in os.getloadavg()],
        },
        "settings": {
            k: getattr(args, k)
            for k in ("networks", "batch", "warmup", "repeats", "table_repeats", "threads", "seed")
        },
        "seconds": round(time.perf_counter() - started, 1),
        "spaces": results,
    }
    write_json(args.out, report)
    dev = report["machine"]["device"]
    print(f"{dev['name']} ({dev['kind']}, {dev['threads']} threads), batch {args.batch}, "
          f"load {report['machine']['loadavg_before'][0]} -> {report['machine']['loadavg_after'][0]}")  # fmt: skip
    print(f"{'space':<10} {'n':>3} {'spearman':>8} {'kendall':>7} {'MAPE':>6} {'bias':>5} "
          f"{'bias range':>11} {'MAPE/bias':>9} {'measured ms min/med/max':>24} {'rho(FLOPs)':>10}")  # fmt: skip
    for space, r in results.items():
        lo, med, hi = r["measured_ms"]
        print(f"{space:<10} {r['networks']:>3} {r['spearman']:>8.3f} {r['kendall']:>7.3f} "
              f"{100 * r['mape']:>5.1f}% {r['bias']:>5.2f} {r['bias_min']:>5.2f}-{r['bias_max']:<5.2f} "
              f"{100 * r['mape_after_bias']:>8.1f}% {lo:>7.2f}/{med:>6.2f}/{hi:>6.2f}   "
              f"{r['spearman_flops']:>8.3f}")  # fmt: skip
    print(f"wrote {args.out} ({report['seconds']} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
