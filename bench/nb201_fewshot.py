"""Does splitting help? Few-shot NAS on NAS-Bench-201 against one-shot, seed after seed.

Per seed, one supernet is pretrained (its own initialisation and batches) and then, for every
criterion, the pipeline's procedure runs on it (NAS-LID section 3.3-4):

- ``R`` rounds: profile every leaf on its own (warmed-up) weights, split it on a
  never-partitioned edge, and train each child from its parent, continuing the parent's
  optimiser (:func:`naslid.subsupernet.finetune`): a child that is split again warms up
  ``--warmup-epochs``, a final sub-supernet fine-tunes ``--finetune-epochs``;
- criteria: ``lid`` (the paper's edge rule: highest Eq. 6 partition score),
  ``lid-separability`` (the most separable edge), ``gradient`` (GM-NAS), ``random-D`` (a
  random edge and bipartition, D = 0, 1, 2 ... independent draws), and ``oneshot``: the
  same supernet trained on, unsplit, for as many epochs as every leaf's path
  (warm-up x (R - 1) + fine-tuning), so every criterion's networks get the same training;
- the inherited-weight proxy (BN recalibrated on a class-stratified random draw) scores the
  table's top-150 cells and ``--sample`` uniformly drawn connected cells on ``--val``
  class-stratified random validation images; Kendall tau / Spearman rho over the top-50/100/150
  and over the uniform cells alone (``uniform{N}``: no top cell in it);
- the evolutionary search (with that proxy, ``--budget`` distinct cells) and its best cell's
  accuracy in the table.

Across seeds: each criterion's mean and 95 % t-interval, and the paired difference against
one-shot and against random (the mean over its draws, same seed) with its 95 % interval.

Every model is kept in ``--work``, keyed by what made it (the chain of masks, epochs and
schedule), so criteria that make the same split share it, and a budget longer than one call
is spread over several calls (each stage is skipped when its result is there; training
resumes from its epoch checkpoints). Every model keeps the CPU seconds of its training, so
the JSON's ``cpu_s_per_seed`` sums each seed's cost over every call (training, split
decisions, scoring and search).

CPU (2 cores, resumable; the issue's scale): python bench/nb201_fewshot.py --cpu \
    --data ../shared/data/cifar10-packed --seeds 0 1 2
    (or one process per seed, OMP_NUM_THREADS=1, then --finished-only over all seeds for
    the summary of what is done so far)
GPU (one H100, < 9 min; C=16, N=5):        python bench/nb201_fewshot.py --gpu \
    --data ../shared/data/cifar10-packed --seeds 0
Quick (synthetic data; says nothing):     python bench/nb201_fewshot.py --quick

The mobile spaces (NAS-LID Table 4's protocol: R=2, 50 fine-tuning epochs, evolution 50 x 50)
are pipeline profiles, not this script; their search on a lent GPU, without the ImageNet
transfer, and their cost on paper (bench/mobile_cost.py, bench/RESULTS.md):
    naslid run --profile cifar10-ofa --param dataset_uri=../shared/data/cifar10-packed \
        --param transfer=false --out runs/ofa          # or --profile cifar10-proxyless
    python bench/mobile_cost.py --device cuda --batch 256
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import shutil
import time
from pathlib import Path

import numpy as np
import torch
from scipy import stats

from naslid import data as datasets
from naslid import split
from naslid.benchmarks import DEFAULT_NB201_CSV, load_table
from naslid.cut import SplitConfig
from naslid.distributed import resolve_device
from naslid.evaluate import rank_correlation
from naslid.evolution import EvolutionConfig, evolve
from naslid.gradmatch import GradMatchConfig
from naslid.lid import LIDConfig, sample_batches
from naslid.node_ids import ROOT, parent_id
from naslid.partition import PartitionTree
from naslid.saved_model import load_continuation, load_model, save_model
from naslid.scoring import ProxyEvaluator, ScoringConfig
from naslid.spaces import nb201
from naslid.store import open_store
from naslid.subsupernet import finetune
from naslid.supernets.nb201 import Supernet
from naslid.train import TrainConfig, train

REPO = Path(__file__).resolve().parents[1]
CRITERIA = {  # name -> (split criterion, lid edge rule); random-D and oneshot are built below
    "lid": ("lid", "partition"),
    "lid-separability": ("lid", "separability"),
    "gradient": ("gradient", "partition"),
}
UNSPLIT = {"leaf_sizes": [nb201.SPACE.mask_size(nb201.SPACE.full_mask())], "split_cpu_s": 0.0}
"""What one-shot decided: nothing; its one leaf is the whole space."""
DEFAULT_CRITERIA = ["lid", "oneshot", "lid-separability", "random", "gradient"]
"""What a run compares by default (``random``: ``random_draws`` independent draws)."""
PAPER = {  # NAS-LID Table 2 (Kendall tau top-50/100/150) and Table 3 (best test accuracy)
    "lid": [0.47, 0.35, 0.34],
    "gradient": [0.34, 0.21, 0.23],
    "oneshot": [0.14, 0.19, 0.12],
    "best_test_accuracy": 92.90,
}
SCALES = {
    # the 2-core CPU scale: 32 px, all 25k cifar10-valid training images, C=8 N=1
    "cpu": dict(
        epochs=60, warmup_epochs=5, finetune_epochs=5, rounds=2, C=8, N=1, batch_size=128,
        lr=0.05, profile_batch=256, grad_batches=20, bn_batches=4, bn_batch_size=256,
        val=2000, sample=100, budget=100, random_draws=3,
    ),
    # one H100 within the 9 minutes of bench/gpu_fewshot.sh (C=16 N=5 at 32 px): a guess
    # from CPU throughput, not yet timed on a GPU
    "gpu": dict(
        epochs=20, warmup_epochs=2, finetune_epochs=3, rounds=2, C=16, N=5, batch_size=256,
        lr=0.1, profile_batch=512, grad_batches=100, bn_batches=8, bn_batch_size=256,
        val=5000, sample=100, budget=200, random_draws=2,
    ),
    "quick": dict(
        epochs=2, warmup_epochs=1, finetune_epochs=1, rounds=2, C=4, N=1, batch_size=64,
        lr=0.05, profile_batch=64, grad_batches=2, bn_batches=2, bn_batch_size=64,
        val=200, sample=20, budget=20, random_draws=2,
    ),
}  # fmt: skip


def criteria_of(args) -> list[str]:
    """The criteria run, in the order asked (``random`` expands to its draws): by default
    lid and its one-shot baseline first, so a run cut short still compares them."""
    names: list[str] = []
    for c in args.criteria:
        names += [f"random-{d}" for d in range(args.random_draws)] if c == "random" else [c]
    return names


def _cfg(args, seed: int, epochs: int) -> TrainConfig:
    return TrainConfig(epochs=epochs, batch_size=args.batch_size, lr=args.lr, seed=seed)


def _key(*parts) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]


class Models:
    """The models of one seed, each trained once and kept under a key of what made it."""

    def __init__(self, args, seed: int, train_data, device):
        self.args, self.seed, self.data, self.device = args, seed, train_data, device
        self.root = Path(args.work) / f"seed{seed}"
        self.seconds = 0.0  # training time of this call

    def pretrained(self) -> Path:
        out = self.root / "supernet"
        if not (out / "meta.json").is_file():
            torch.manual_seed(self.seed)
            net = Supernet(C=self.args.C, N=self.args.N, num_classes=self.data.num_classes)
            cfg = _cfg(self.args, self.seed, self.args.epochs)
            t = time.process_time()
            result = train(
                net,
                self.data,
                cfg,
                store=open_store(self.root / "ckpt" / "supernet"),
                resume=True,
                device=self.device,
                progress=self.args.progress,
                desc=f"seed {self.seed} pretrain",
            )
            save_model(
                net,
                out,
                config=cfg,
                extra=self._spent(t, result),
                continuation=result.continuation,
            )
            shutil.rmtree(self.root / "ckpt" / "supernet", ignore_errors=True)
        return out

    def child(self, parent: Path, mask, epochs: int, what: str) -> Path:
        """``parent``'s child for ``mask``, trained ``epochs`` on, continuing its optimiser."""
        key = _key(str(parent.relative_to(self.root)), nb201.SPACE.mask_to_json(mask), epochs)
        out = self.root / "models" / key
        if not (out / "meta.json").is_file():
            net, _ = load_model(parent, device=self.device)
            t = time.process_time()
            child, result = finetune(
                net,
                mask,
                self.data,
                _cfg(self.args, self.seed, epochs),
                epochs=epochs,
                parent_state=load_continuation(parent),
                store=open_store(self.root / "ckpt" / key),
                resume=True,
                device=self.device,
                progress=self.args.progress,
                desc=f"seed {self.seed} {what}",
            )
            save_model(
                child,
                out,
                mask=mask,
                config=result.config,
                extra={"made_by": what, **self._spent(t, result)},
                continuation=result.continuation,
            )
            shutil.rmtree(self.root / "ckpt" / key, ignore_errors=True)
        return out

    def _spent(self, start: float, result) -> dict:
        """The CPU seconds of the training that finished a model, and its epochs (those run
        before a resume are not in them), kept in the model's meta."""
        seconds = time.process_time() - start
        self.seconds += seconds
        return {"train_cpu_s": seconds, "epochs_timed": result.epochs - result.start_epoch}

    def cpu_account(self, names: list[str]) -> dict:
        """What this seed's models and criteria cost in CPU seconds, over every call: the
        training of every model kept (``train_recorded_s`` over ``epochs_timed`` of its
        ``epochs``; models trained before the time was kept, or resumed, leave epochs
        untimed), the split decisions and the scoring and search of ``names``."""
        metas = [self.root / "supernet" / "meta.json", *self.root.glob("models/*/meta.json")]
        out = {"train_recorded_s": 0.0, "epochs_timed": 0, "epochs": 0}
        for path in filter(Path.is_file, metas):
            meta = json.loads(path.read_text())
            out["epochs"] += int(meta["epochs"])
            out["train_recorded_s"] += float(meta.get("train_cpu_s", 0.0))
            out["epochs_timed"] += int(meta.get("epochs_timed", 0))
        parts = {"split_s": ("tree.json", "split_cpu_s")}
        parts["score_and_search_s"] = ("result.json", "score_and_search_cpu_s")
        for key, (file, field) in parts.items():
            files = [self.root / name / file for name in names]
            out[key] = sum(float(json.loads(f.read_text())[field]) for f in files if f.is_file())
        return out


def split_and_train(name: str, args, models: Models, batches: dict) -> tuple[list, dict]:
    """Run criterion ``name``'s rounds on the pretrained supernet: the leaves (mask, model
    folder) and what was decided."""
    root_dir = models.pretrained()
    space = nb201.SPACE
    path = models.root / name / "tree.json"
    if name == "oneshot":
        epochs = args.warmup_epochs * (args.rounds - 1) + args.finetune_epochs
        leaf = models.child(root_dir, space.full_mask(), epochs, "oneshot")
        return [(space.full_mask(), leaf)], UNSPLIT
    crit, rule = ("random", "partition") if name.startswith("random-") else CRITERIA[name]
    draw = int(name.split("-")[1]) if crit == "random" else 0
    configs = split.MeasureConfigs(
        LIDConfig(batch_size=args.profile_batch),
        GradMatchConfig(num_batches=args.grad_batches),
        SplitConfig(edge_rule=rule),
    )
    tree = PartitionTree(space, space.full_mask(), crit)
    dirs = {ROOT: root_dir}
    split_s = 0.0
    done = json.loads(path.read_text()) if path.is_file() else None
    if done is not None:
        tree = PartitionTree.from_json(done["tree"], str(path))
    for r in range(1, args.rounds + 1):
        if done is None:
            for leaf in list(tree.leaves()):
                net, _ = load_model(dirs[leaf.id], device=models.device)
                t = time.process_time()
                prof = split.similarity_for_node(
                    crit,
                    net,
                    leaf.mask,
                    batches.get(crit, []),
                    node_id=leaf.id,
                    configs=configs,
                    seed=models.seed + 1000 * draw,
                )
                tree.apply(split.decide_split(prof, leaf.id))
                split_s += time.process_time() - t
        final = r == args.rounds
        for node in tree.nodes.values():
            if node.depth == r:
                epochs = args.finetune_epochs if final else args.warmup_epochs
                dirs[node.id] = models.child(
                    dirs[parent_id(node.id)], node.mask, epochs, f"{name} {node.id}"
                )
        if done is None and final:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps({"tree": tree.to_json(), "split_cpu_s": split_s}))
    info = decisions(tree, split_s if done is None else done["split_cpu_s"])
    return [(n.mask, dirs[n.id]) for n in tree.leaves()], info


def decisions(tree: PartitionTree, split_s: float) -> dict:
    """What a criterion decided (per split node: edge, rule, groups, every edge's score and
    separability), the leaves' sizes, and the CPU seconds of the decisions."""
    names = nb201.OPS
    return {
        "split_cpu_s": split_s,
        "decisions": {
            n.id: {
                "edge": n.split_edge,
                "edge_rule": n.edge_rule,
                "groups": [[names[o] for o in g] for g in n.groups],
                "scores": {str(e): v for e, v in n.scores.items()},
                "separability": {str(e): v for e, v in n.separability.items()},
            }
            for n in tree.nodes.values()
            if n.split_edge is not None
        },
        "leaf_sizes": [nb201.SPACE.mask_size(n.mask) for n in tree.leaves()],
    }


def finished(models: Models, name: str) -> dict | None:
    """A criterion's result and decisions from an earlier call, or ``None`` if not done."""
    done, tree = models.root / name / "result.json", models.root / name / "tree.json"
    if not done.is_file():
        return None
    out = json.loads(done.read_text())
    if tree.is_file():
        saved = json.loads(tree.read_text())
        out |= decisions(PartitionTree.from_json(saved["tree"], str(tree)), saved["split_cpu_s"])
    elif name == "oneshot":
        out |= UNSPLIT
    return out | {"sub_supernets": len(out["leaf_sizes"])}


def proxy(args, models: Models, leaves: list, valid) -> ProxyEvaluator:
    """The inherited-weight proxy over ``leaves`` (mask, model folder): BN recalibrated on
    class-stratified training batches, accuracy on ``args.val`` stratified validation images."""
    scoring = ScoringConfig(
        seed=models.seed,
        bn_batches=args.bn_batches,
        bn_batch_size=args.bn_batch_size,
        val_limit=args.val,
    )
    return ProxyEvaluator(
        leaves, models.data, valid, scoring, device=models.device, space=nb201.SPACE
    )


def probes(table, seed: int, sample: int) -> tuple[list, list]:
    """The cells every criterion scores: the table's top 150 and ``sample`` connected cells
    drawn uniformly (seeded); and those uniform cells alone."""
    rng = np.random.default_rng(seed)
    probe = [nb201.from_str(a) for a in table.top(150)]
    uniform = [a for a in nb201.sample(rng, 3 * sample) if nb201.is_connected(a)]
    uniform = list(dict.fromkeys(uniform))[:sample]
    probe += [a for a in uniform if str(a) not in set(map(str, probe))]
    return probe, uniform


def score_and_search(name, args, models, leaves, valid, table, probe, uniform) -> dict:
    path = models.root / name / "result.json"
    if path.is_file():
        return json.loads(path.read_text())
    evaluator = proxy(args, models, leaves, valid)
    t = time.process_time()
    scores = dict(zip(map(str, probe), map(float, evaluator(probe))))
    ranking = rank_correlation(scores, table, uniform=[str(a) for a in uniform])
    search = evolve(nb201.SPACE, evaluator, EvolutionConfig(budget=args.budget), models.seed)
    best = search.best["arch"]
    result = {
        "correlations": ranking,
        "proxy_range": [min(scores.values()), max(scores.values())],
        "best_arch": best,
        "best_proxy": search.best["score"],
        "best_test_accuracy": table[best],
        "score_and_search_cpu_s": time.process_time() - t,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")
    return result


def interval(values: list[float]) -> dict:
    """Mean and 95 % t-interval of ``values`` (over seeds); no interval from fewer than 2."""
    x = np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=float)
    out = {"n": int(x.size), "mean": float(x.mean()) if x.size else None}
    if x.size >= 2:
        half = float(stats.t.ppf(0.975, x.size - 1) * x.std(ddof=1) / math.sqrt(x.size))
        out["ci95"] = [out["mean"] - half, out["mean"] + half]
    return out


def summarise(per_seed: dict, names: list[str], keys: list[str]) -> dict:
    """Across seeds: each criterion's taus and best-cell accuracy, and its paired difference
    against one-shot and against random (mean of the draws, same seed)."""

    def value(res: dict, key: str):
        if key == "best_test_accuracy":
            return res["best_test_accuracy"]
        return res["correlations"][key]["kendall_tau"]

    groups = {"random": [n for n in names if n.startswith("random-")]}
    out: dict = {}
    for name in [n for n in names if not n.startswith("random-")] + ["random"]:
        members = groups.get(name, [name])
        if not members:
            continue
        row: dict = {}
        for key in keys + ["best_test_accuracy"]:
            vals, vs_one, vs_rand = [], [], []
            for results in per_seed.values():
                if not all(m in results for m in members):
                    continue
                v = float(np.mean([value(results[m], key) for m in members]))
                vals.append(v)
                if "oneshot" in results and name != "oneshot":
                    vs_one.append(v - value(results["oneshot"], key))
                rand = [value(results[m], key) for m in groups["random"] if m in results]
                if rand and name != "random" and len(rand) == len(groups["random"]):
                    vs_rand.append(v - float(np.mean(rand)))
            row[key] = {
                "value": interval(vals),
                "minus_oneshot": interval(vs_one),
                "minus_random": interval(vs_rand),
            }
        out[name] = row
    return out


def _cell(stat: dict, digits: int = 3, sign: str = "+") -> str:
    if stat.get("mean") is None:
        return "-"
    text = f"{stat['mean']:{sign}.{digits}f}"
    if "ci95" in stat:
        lo, hi = stat["ci95"]
        text += f" [{lo:{sign}.{digits}f}, {hi:{sign}.{digits}f}]"
    return text


def markdown(summary: dict, keys: list[str]) -> str:
    """The summary as two Markdown tables: each criterion's mean [95 % interval] over seeds,
    and its paired difference against one-shot and against random."""
    cols = [*keys, "best_test_accuracy"]
    head = [f"tau {k}" for k in keys] + ["best cell, test acc."]
    rows = ["| criterion | n | " + " | ".join(head) + " |", "|---" * (len(cols) + 2) + "|"]
    for name, row in summary.items():
        n = row[cols[0]]["value"]["n"]
        cells = [
            _cell(row[c]["value"], *((2, "") if c == "best_test_accuracy" else (3, "+")))
            for c in cols
        ]
        rows.append(f"| {name} | {n} | " + " | ".join(cells) + " |")
    rows += ["", "| paired difference | " + " | ".join(head) + " |", "|---" * (len(cols) + 1) + "|"]
    for name, row in summary.items():
        for other in ("oneshot", "random"):
            if name in (other, "oneshot") or not row[cols[0]][f"minus_{other}"]["n"]:
                continue
            cells = [
                _cell(row[c][f"minus_{other}"], 2 if c == "best_test_accuracy" else 3) for c in cols
            ]
            rows.append(f"| {name} - {other} | " + " | ".join(cells) + " |")
    return "\n".join(rows) + "\n"


def apply_scale(args: argparse.Namespace) -> argparse.Namespace:
    """``args`` with its scale's settings; the quick scale keeps its models apart."""
    for k, v in SCALES[args.scale].items():
        setattr(args, k, v)
    if args.scale == "quick":
        args.work = str(Path(args.work).with_name(Path(args.work).name + "-quick"))
    return args


def load_data(args: argparse.Namespace) -> tuple:
    """The training and validation halves the scale runs on (synthetic when quick)."""
    if args.scale == "quick":
        return (
            datasets.load("synthetic", split="train", n=512),
            datasets.load("synthetic", split="valid", n=256),
        )
    return (
        datasets.load("cifar10-valid", args.data, "train"),
        datasets.load("cifar10-valid", args.data, "valid"),
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", help="CIFAR-10 folder (packed npz, ImageFolder or torchvision)")
    scale = p.add_mutually_exclusive_group(required=True)
    for name in SCALES:
        scale.add_argument(f"--{name}", dest="scale", action="store_const", const=name)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument(
        "--criteria",
        nargs="+",
        default=DEFAULT_CRITERIA,
        choices=[*CRITERIA, "random", "oneshot"],
    )
    p.add_argument("--table", default=f"table:{DEFAULT_NB201_CSV}:c10_test_acc_200")
    p.add_argument("--no-progress", dest="progress", action="store_false")
    p.add_argument("--work", default="bench/results/nb201_fewshot", help="models (resumable)")
    p.add_argument("--out", help="JSON (default bench/results/nb201_fewshot[-SCALE].json)")
    p.add_argument(
        "--finished-only",
        action="store_true",
        help="train nothing: summarise the criteria whose results are already in --work "
        "(what a benchmark spread over several sittings has so far)",
    )
    args = apply_scale(p.parse_args())
    args.out = args.out or (
        "bench/results/nb201_fewshot.json"
        if args.scale == "cpu"
        else f"bench/results/nb201_fewshot-{args.scale}.json"
    )
    if args.scale != "quick" and not args.data:
        p.error("--data: a CIFAR-10 folder is needed (e.g. ../shared/data/cifar10-packed)")
    device = resolve_device("auto")
    table = load_table(args.table)
    train_data, valid = load_data(args)
    names = criteria_of(args)
    keys = ["top50", "top100", "top150"]
    per_seed: dict = {}
    details: dict = {}
    cpu_s, cpu = 0.0, {}
    for seed in args.seeds:
        models = Models(args, seed, train_data, device)
        per_seed[seed], details[seed] = {}, {}
        if args.finished_only:
            cpu[seed] = models.cpu_account(names)
            for name in names:
                if (done := finished(models, name)) is not None:
                    per_seed[seed][name] = details[seed][name] = done
                    uni = next(
                        k for k in per_seed[seed][name]["correlations"] if k.startswith("uniform")
                    )
                    keys += [uni] if uni not in keys else []
            continue
        models.pretrained()
        probe, uniform = probes(table, seed, args.sample)
        batches = {
            "lid": sample_batches(train_data, args.profile_batch, 2, seed=seed, device=device),
            "gradient": sample_batches(
                train_data, GradMatchConfig().batch_size, args.grad_batches, seed, device
            ),
        }
        for name in names:
            leaves, info = split_and_train(name, args, models, batches)
            res = score_and_search(name, args, models, leaves, valid, table, probe, uniform)
            per_seed[seed][name] = res
            details[seed][name] = {**info, **res, "sub_supernets": len(leaves)}
            corr = res["correlations"]
            uni = next(k for k in corr if k.startswith("uniform"))
            print(
                f"seed {seed} {name:17s} tau top50/100/150 "
                + "/".join(f"{corr[k]['kendall_tau']:.3f}" for k in keys[:3])
                + f" {uni} {corr[uni]['kendall_tau']:.3f}  best {res['best_test_accuracy']:.2f}",
                flush=True,
            )
            if uni not in keys:
                keys.append(uni)
        cpu_s += models.seconds
        cpu[seed] = models.cpu_account(names)
    report = {
        "benchmark": "nb201_fewshot",
        "scale": args.scale,
        "device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu",
        "threads": torch.get_num_threads(),
        "settings": {k: getattr(args, k) for k in SCALES[args.scale]},
        "seeds": args.seeds,
        "criteria": names,
        "table": args.table.replace(str(REPO.parent), ".."),
        "summary": summarise(per_seed, names, keys),
        "per_seed": details,
        "training_cpu_s_this_call": cpu_s,
        "cpu_s_per_seed": cpu,
        "paper": PAPER,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(report, indent=2, default=float)  # no machine paths: ../shared
    Path(args.out).write_text(text.replace(str(REPO.parent), "..") + "\n")
    table = markdown(report["summary"], keys)
    Path(args.out).with_suffix(".md").write_text(table)
    print(table + f"wrote {args.out} and its .md table")


if __name__ == "__main__":
    main()
