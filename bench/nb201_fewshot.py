"""Few-shot NAS on NAS-Bench-201: LID against gradient against random splitting against one-shot.

One script, same seeds for every criterion: pretrain one supernet on CIFAR-10 (NAS-Bench-201's
cifar10-valid split), split it for R rounds with ``lid``, ``gradient`` (GM-NAS) and ``random``
(``oneshot`` is rounds=0), fine-tune every sub-supernet from the pretrained weights -- and the
one-shot supernet for as many epochs, so every criterion's networks get the same training --
then per criterion:

- Kendall tau of the inherited-weight proxy (BN recalibrated) against the benchmark table over
  the table's top-50/100/150 cells and over a uniform sample of connected cells;
- the separability (Eq. 7 stand-in) of every root edge and the split decisions;
- the evolutionary search's best cell and its test accuracy in the table.

Paper figures to beat (NAS-LID Table 2): tau 0.47/0.35/0.34 (NAS-LID), 0.34/0.21/0.23 (GM-NAS),
0.14/0.19/0.12 (SPOS); best-arch test accuracy 92.90.

Splitting uses the pretrained weights for every round (``split.build_tree``); the pipeline
fine-tunes between rounds instead. Every stage writes its result into ``--work`` (supernet,
trees, leaves with epoch checkpoints, scores per criterion) and is skipped when it is there,
so a budget longer than one call is spread over several calls; the JSON sums the time.

GPU (the paper's budget):  python bench/nb201_fewshot.py --packed ../shared/data/cifar10-packed \
                               --epochs 50 --rounds 4 --finetune-epochs 50 --C 16 --N 5
CPU (2 cores, resumable):    python bench/nb201_fewshot.py --packed ../shared/data/cifar10-packed --cpu
CPU smoke:                  python bench/nb201_fewshot.py --quick  (synthetic data; says nothing)

The mobile spaces (NAS-LID Table 4's protocol: R=2, 50 fine-tuning epochs, evolution 50 x 50)
are pipeline profiles, not this script; their search on a lent GPU, without the ImageNet
transfer, and their cost on paper (bench/mobile_cost.py, bench/RESULTS.md):
    naslid run --profile cifar10-ofa --param dataset_uri=../shared/data/cifar10-packed \
        --param transfer=false --out runs/ofa          # or --profile cifar10-proxyless
    python bench/mobile_cost.py --device cuda --batch 256
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from naslid import data as datasets
from naslid import split
from naslid.benchmarks import DEFAULT_NB201_CSV, load_table
from naslid.distributed import resolve_device
from naslid.evaluate import rank_correlation
from naslid.evolution import EvolutionConfig, evolve
from naslid.gradmatch import GradMatchConfig
from naslid.lid import LIDConfig, sample_batches
from naslid.saved_model import load_model, save_model
from naslid.scoring import ProxyEvaluator, ScoringConfig
from naslid.spaces import nb201
from naslid.split import PartitionTree, build_tree
from naslid.steps.prepare import resize
from naslid.store import open_store
from naslid.supernets.nb201 import Supernet
from naslid.train import TrainConfig, finetune, train

REPO = Path(__file__).resolve().parents[1]


def _train_cfg(args, epochs: int) -> TrainConfig:
    return TrainConfig(epochs=epochs, batch_size=args.batch_size, lr=args.lr, seed=args.seed)


def pretrained(args, train_data, device) -> Supernet:
    out = Path(args.work) / "supernet"
    if (out / "meta.json").is_file():
        return load_model(out, device=device)[0]
    torch.manual_seed(args.seed)
    net = Supernet(C=args.C, N=args.N, num_classes=train_data.num_classes).to(device)
    cfg = _train_cfg(args, args.epochs)
    train(
        net,
        train_data,
        cfg,
        progress=args.progress,
        store=open_store(out / "ckpt"),
        resume=True,
        device=device,
        desc="pretrain",
    )
    save_model(net, out, config=cfg)
    return net


def split_tree(criterion, args, net, train_data, device) -> tuple[PartitionTree, float]:
    path = Path(args.work) / criterion / "tree.json"
    if path.is_file():
        return PartitionTree.load(path), float(json.loads(path.with_suffix(".s").read_text()))
    configs = split.MeasureConfigs(
        LIDConfig(batch_size=args.profile_batch, num_batches=args.lid_batches),
        GradMatchConfig(num_batches=args.grad_batches),
    )
    measure = split.criterion(criterion).batch_config(configs)
    batches = (
        []
        if measure is None
        else sample_batches(
            train_data, measure.batch_size, measure.num_batches, seed=args.seed, device=device
        )
    )
    t = time.perf_counter()
    tree = build_tree(net, batches, args.rounds, criterion, configs=configs, seed=args.seed)
    seconds = time.perf_counter() - t
    tree.save(path)
    path.with_suffix(".s").write_text(f"{seconds}\n")
    return tree, seconds


def leaves_for(criterion, args, net, train_data, device) -> tuple[list[tuple], dict]:
    root = Path(args.work) / criterion
    if criterion == "oneshot":
        tree, split_s = PartitionTree(nb201.SPACE), 0.0
    else:
        tree, split_s = split_tree(criterion, args, net, train_data, device)
    cfg = _train_cfg(args, args.finetune_epochs)
    out = []
    for leaf in tree.leaves():
        d = root / "leaves" / leaf.id
        if not (d / "meta.json").is_file():
            child, _ = finetune(
                net,
                leaf.mask,
                train_data,
                cfg,
                epochs=args.finetune_epochs,
                progress=args.progress,
                store=open_store(d / "ckpt"),
                resume=True,
                device=device,
                desc=f"{criterion} {leaf.id}",
            )
            save_model(child, d, mask=leaf.mask, config=cfg, extra={"node": leaf.id})
        out.append((leaf.mask, d))
    names = nb201.OPS
    info = {
        "split_s": split_s,
        "decisions": {
            n.id: {
                "edge": n.split_edge,
                "groups": [[names[o] for o in g] for g in n.groups],
                "scores": {str(e): v for e, v in n.scores.items()},
                "separability": {str(e): v for e, v in n.separability.items()},
            }
            for n in tree.nodes.values()
            if n.split_edge is not None
        },
        "leaf_sizes": [nb201.SPACE.mask_size(m) for m, _ in out],
    }
    print(
        f"{criterion}: split in {split_s:.1f}s into {len(out)} sub-supernets {info['leaf_sizes']}"
    )
    return out, info


def score_and_search(criterion, args, leaves, train_data, valid, table, probe, device) -> dict:
    path = Path(args.work) / criterion / "result.json"
    if path.is_file():
        return json.loads(path.read_text())
    scoring = ScoringConfig(seed=args.seed, bn_batches=args.bn_batches, val_limit=args.val_limit)
    evaluator = ProxyEvaluator(leaves, train_data, valid, scoring, device=device, space=nb201.SPACE)
    t = time.perf_counter()
    scores = dict(zip(map(str, probe), map(float, evaluator(probe))))
    ranking = rank_correlation(scores, table, sample=args.sample, rng=args.seed)
    search = evolve(nb201.SPACE, evaluator, EvolutionConfig(budget=args.budget), args.seed)
    best = search.best["arch"]
    result = {
        "kendall_tau": {k: v.get("kendall_tau") for k, v in ranking.items()},
        "proxy_range": [min(scores.values()), max(scores.values())],
        "best_arch": best,
        "best_proxy": search.best["score"],
        "best_test_accuracy": table[best],
        "score_and_search_s": time.perf_counter() - t,
    }
    path.write_text(json.dumps(result, indent=2) + "\n")
    return result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--packed", help="CIFAR-10 folder (packed npz, ImageFolder or torchvision layout)"
    )
    p.add_argument(
        "--quick", action="store_true", help="synthetic data, C=4, N=1, a few epochs: CPU smoke"
    )
    p.add_argument("--cpu", action="store_true", help="the 2-core CPU scale (see RESULTS.md)")
    p.add_argument("--table", default=f"table:{DEFAULT_NB201_CSV}:c10_test_acc_200")
    p.add_argument("--epochs", type=int, default=50)
    p.add_argument("--finetune-epochs", type=int, default=10)
    p.add_argument("--rounds", type=int, default=4)
    p.add_argument("--criteria", nargs="+", default=["lid", "gradient", "random", "oneshot"])
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--profile-batch", type=int, default=512)
    p.add_argument("--lid-batches", type=int, default=LIDConfig().num_batches)
    p.add_argument("--grad-batches", type=int, default=GradMatchConfig().num_batches)
    p.add_argument("--C", type=int, default=nb201.CHANNELS)
    p.add_argument("--N", type=int, default=nb201.CELLS_PER_STAGE)
    p.add_argument("--image-size", type=int, help="resize the images (reduced resolution on a CPU)")
    p.add_argument("--limit", type=int, help="at most this many images per split")
    p.add_argument("--val-limit", type=int, help="validate each cell on this many images")
    p.add_argument("--bn-batches", type=int, default=ScoringConfig().bn_batches)
    p.add_argument(
        "--sample", type=int, default=100, help="uniform connected cells scored besides the top-150"
    )
    p.add_argument("--budget", type=int, default=500, help="evolution: distinct cells scored")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bars")
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
        args.grad_batches, args.lid_batches = 2, 2
    if args.cpu:  # the 2-core CPU scale of bench/RESULTS.md (resumes across calls)
        args.epochs, args.finetune_epochs, args.rounds, args.C, args.N = 60, 3, 2, 8, 1
        args.batch_size, args.lr, args.image_size, args.profile_batch = 128, 0.05, 16, 256
        args.val_limit, args.bn_batches, args.budget, args.grad_batches = 1000, 2, 60, 20
    torch.set_num_threads(max(1, torch.get_num_threads()))
    device = resolve_device("auto")
    table = load_table(args.table)
    if args.quick:
        train_data, valid = (
            datasets.load("synthetic", split="train"),
            datasets.load("synthetic", split="valid"),
        )
    else:
        train_data = datasets.load("cifar10-valid", args.packed, "train", limit=args.limit)
        valid = datasets.load("cifar10-valid", args.packed, "valid", limit=args.limit)
    if args.image_size:
        train_data, valid = (
            resize(train_data, args.image_size),
            resize(valid, args.image_size),
        )
    Path(args.work).mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    net = pretrained(args, train_data, device)
    pretrain_s = time.perf_counter() - t0
    rng = np.random.default_rng(args.seed)
    probe = [nb201.from_str(a) for a in table.top(150)]
    probe += [a for a in nb201.sample(rng, 2 * args.sample) if nb201.is_connected(a)][: args.sample]
    results = {}
    for criterion in args.criteria:
        t = time.perf_counter()
        leaves, info = leaves_for(criterion, args, net, train_data, device)
        split_and_ft_s = time.perf_counter() - t
        res = score_and_search(criterion, args, leaves, train_data, valid, table, probe, device)
        results[criterion] = {
            **info,
            **res,
            "sub_supernets": len(leaves),
            "this_call_split_and_finetune_s": split_and_ft_s,
        }
        taus = res["kendall_tau"]
        print(
            f"{criterion:9s} tau top50/100/150 {taus.get('top50'):.3f}/{taus.get('top100'):.3f}/{taus.get('top150'):.3f}"
            f" sample {taus.get(f'sample{args.sample}')}  best {res['best_arch']} -> test {res['best_test_accuracy']:.2f}"
        )
    report = {
        "benchmark": "nb201_fewshot",
        "device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu",
        "quick": args.quick,
        "budget": {
            k: getattr(args, k)
            for k in (
                "epochs",
                "finetune_epochs",
                "rounds",
                "C",
                "N",
                "batch_size",
                "lr",
                "image_size",
                "limit",
                "val_limit",
                "bn_batches",
                "profile_batch",
                "lid_batches",
                "grad_batches",
                "sample",
                "budget",
                "seed",
            )
        },
        "pretrain_s_this_call": pretrain_s,
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
