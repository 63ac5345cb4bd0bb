"""Few-shot NAS on NAS-Bench-201: LID against gradient splitting against one-shot (a GPU benchmark).

One script, same seeds for every criterion: pretrain one supernet on CIFAR-10 (NAS-Bench-201's
cifar10-valid split), split it for R rounds with ``lid`` and with ``gradient`` (rounds=0 is
plain one-shot), fine-tune every sub-supernet from the pretrained weights, then per criterion:

- Kendall tau of the inherited-weight proxy (BN recalibrated) against the benchmark table over
  the table's top-50/100/150 cells and over a uniform sample of cells;
- the evolutionary search's best cell and its test accuracy in the table.

Paper figures to beat (NAS-LID Table 2): tau 0.47/0.35/0.34 (NAS-LID), 0.34/0.21/0.23 (GM-NAS),
0.14/0.19/0.12 (SPOS); best-arch test accuracy 92.90.

Splitting uses the pretrained weights for every round (``split.build_tree``); the pipeline
fine-tunes between rounds instead. Pretraining and fine-tuning checkpoint every epoch into
``--work`` and resume, so a budget longer than one call is spread over several calls.

GPU:  python bench/nb201_fewshot.py --packed ../shared/data/cifar10-packed --epochs 50
CPU:  python bench/nb201_fewshot.py --quick       (synthetic data, tiny supernet: a smoke run)
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from naslid import data as datasets
from naslid.benchmarks import DEFAULT_NB201_CSV, load_table
from naslid.evaluate import rank_correlation
from naslid.evolution import EvolutionConfig, evolve
from naslid.lid import LIDConfig, sample_batches
from naslid.scoring import ProxyEvaluator, ScoringConfig
from naslid.spaces import nb201
from naslid.split import build_tree
from naslid.store import open_store
from naslid.supernets.nb201 import Supernet
from naslid.train import TrainConfig, finetune, load_model, resolve_device, save_model, train

REPO = Path(__file__).resolve().parents[1]


def pretrained(args, train_data, device) -> Supernet:
    out = Path(args.work) / "supernet"
    if (out / "meta.json").is_file():
        return load_model(out, device=device)[0]
    torch.manual_seed(args.seed)
    net = Supernet(C=args.C, N=args.N, num_classes=train_data.num_classes)
    cfg = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, seed=args.seed)
    train(
        net,
        train_data,
        cfg,
        store=open_store(out / "ckpt"),
        resume=True,
        device=device,
        desc="pretrain",
    )
    save_model(net, out, config=cfg)
    return net


def leaves_for(criterion, args, net, train_data, device) -> list[tuple]:
    root = Path(args.work) / criterion
    if criterion == "oneshot":
        return [(nb201.full_mask(), Path(args.work) / "supernet")]
    batches = sample_batches(train_data, args.profile_batch, 1, seed=args.seed, device=device)
    t = time.perf_counter()
    tree = build_tree(
        net,
        batches,
        args.rounds,
        criterion,
        lid_config=LIDConfig(batch_size=args.profile_batch),
        seed=args.seed,
    )
    split_s = time.perf_counter() - t
    tree.save(root / "tree.json")
    cfg = TrainConfig(
        epochs=args.finetune_epochs, batch_size=args.batch_size, lr=args.lr, seed=args.seed
    )
    out = []
    for leaf in tree.leaves():
        d = root / "leaves" / leaf.id
        if not (d / "meta.json").is_file():
            child, _ = finetune(
                net,
                leaf.mask,
                train_data,
                cfg,
                store=open_store(d / "ckpt"),
                resume=True,
                device=device,
                desc=f"{criterion} {leaf.id}",
            )
            save_model(child, d, mask=leaf.mask, config=cfg, extra={"node": leaf.id})
        out.append((leaf.mask, d))
    print(f"{criterion}: split in {split_s:.1f}s into {len(out)} sub-supernets")
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--packed", help="CIFAR-10 folder (packed npz, ImageFolder or torchvision layout)"
    )
    p.add_argument(
        "--quick", action="store_true", help="synthetic data, C=4, N=1, a few epochs: CPU smoke"
    )
    p.add_argument("--table", default=f"table:{DEFAULT_NB201_CSV}:c10_test_acc_200")
    p.add_argument("--epochs", type=int, default=50)
    p.add_argument("--finetune-epochs", type=int, default=10)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--criteria", nargs="+", default=["lid", "gradient", "oneshot"])
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--profile-batch", type=int, default=512)
    p.add_argument("--C", type=int, default=16)
    p.add_argument("--N", type=int, default=5)
    p.add_argument(
        "--sample", type=int, default=300, help="uniform cells scored besides the top-150"
    )
    p.add_argument("--budget", type=int, default=500, help="evolution: distinct cells scored")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--work", default="bench/results/nb201_fewshot", help="checkpoints and models (resumable)"
    )
    p.add_argument("--out", default="bench/results/nb201_fewshot.json")
    args = p.parse_args()
    if args.quick:
        args.epochs, args.finetune_epochs, args.C, args.N = 2, 1, 4, 1
        args.batch_size, args.profile_batch, args.sample, args.budget, args.rounds = (
            64,
            64,
            20,
            20,
            1,
        )
    device = resolve_device("auto")
    table = load_table(args.table)
    if args.quick:
        train_data, valid = (
            datasets.load("synthetic", split="train"),
            datasets.load("synthetic", split="valid"),
        )
    else:
        train_data = datasets.load("cifar10-valid", args.packed, "train")
        valid = datasets.load("cifar10-valid", args.packed, "valid")
    t0 = time.perf_counter()
    net = pretrained(args, train_data, device)
    pretrain_s = time.perf_counter() - t0
    rng = np.random.default_rng(args.seed)
    probe = [nb201.from_str(a) for a in table.top(150)]
    probe += [a for a in nb201.sample(rng, args.sample) if nb201.is_connected(a)]
    results = {}
    for criterion in args.criteria:
        leaves = leaves_for(criterion, args, net, train_data, device)
        evaluator = ProxyEvaluator(
            leaves, train_data, valid, ScoringConfig(seed=args.seed), device=device
        )
        t = time.perf_counter()
        scores = dict(zip(map(str, probe), evaluator(probe)))
        ranking = rank_correlation(scores, table, sample=args.sample, rng=args.seed)
        search = evolve(nb201.SPACE, evaluator, EvolutionConfig(budget=args.budget), args.seed)
        best = search.best["arch"]
        results[criterion] = {
            "kendall_tau": {k: v.get("kendall_tau") for k, v in ranking.items()},
            "best_arch": best,
            "best_proxy": search.best["score"],
            "best_test_accuracy": table[best],
            "sub_supernets": len(leaves),
            "score_and_search_s": time.perf_counter() - t,
        }
        taus = results[criterion]["kendall_tau"]
        print(
            f"{criterion:9s} tau top50/100/150 {taus.get('top50')}/{taus.get('top100')}/{taus.get('top150')}"
            f"  best {best} -> test {table[best]:.2f}"
        )
    report = {
        "benchmark": "nb201_fewshot",
        "device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu",
        "quick": args.quick,
        "budget": {
            "pretrain_epochs": args.epochs,
            "finetune_epochs": args.finetune_epochs,
            "rounds": args.rounds,
            "C": args.C,
            "N": args.N,
            "batch_size": args.batch_size,
            "lr": args.lr,
            "evolution_budget": args.budget,
            "pretrain_s": pretrain_s,
        },
        "table": args.table.replace(str(REPO.parent), ".."),
        "results": results,
        "paper": {
            "lid": [0.47, 0.35, 0.34],
            "gradient": [0.34, 0.21, 0.23],
            "oneshot": [0.14, 0.19, 0.12],
            "best_test_accuracy": 92.90,
        },
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
