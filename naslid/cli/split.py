"""``naslid profile-lid`` and ``naslid split``: NAS-LID's supernet partitioning.

``profile-lid`` measures one (sub-)supernet: per unsplit edge, the LID vectors of its
operations and their similarity (or the GM-NAS gradient similarity, or a random
bipartition), written as a node-profile JSON. ``split`` either splits in-process for R
rounds (profiling every node with the same weights) or, given the profiles of one round's
nodes (``--profiles``), decides each node's split and merges them into the tree -- the
pipeline's split-round step.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from naslid.criteria import CRITERIA, DEFAULT_CRITERION, MeasureConfigs, criterion
from naslid.cut import CUTS, EDGE_RULES, METRICS, SplitConfig
from naslid.gradmatch import GradMatchConfig
from naslid.lid import MODES, LIDConfig
from naslid.node_ids import ROOT

_DEFAULTS = MeasureConfigs()
_LID, _GRAD, _SPLIT = _DEFAULTS.lid, _DEFAULTS.gradmatch, _DEFAULTS.split


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--model", help="supernet folder written by `naslid pretrain` (supernet.pt, meta.json)"
    )
    p.add_argument(
        "--dataset",
        default="digits",
        help="data set to draw profiling batches from (default digits)",
    )
    p.add_argument(
        "--data-root", help="data folder (cifar*, imagefolder); default $NASLID_DATA/<name>"
    )
    p.add_argument("--data-split", default="train", help="data split to draw from (default train)")
    p.add_argument(
        "--limit", type=int, help="decode at most this many images (evenly over the classes)"
    )
    p.add_argument(
        "--criterion",
        default=DEFAULT_CRITERION,
        choices=CRITERIA,
        help=f"split criterion (default {DEFAULT_CRITERION})",
    )
    p.add_argument(
        "--batches",
        type=int,
        help=f"profiling batches, averaged (default {_LID.num_batches} for lid, "
        f"{_GRAD.num_batches} for gradient)",
    )
    p.add_argument(
        "--batch-size",
        type=int,
        help=f"samples per batch, drawn at random from all classes (default {_LID.batch_size} for lid, "
        f"{_GRAD.batch_size} for gradient)",
    )
    p.add_argument("--k", type=int, default=_LID.k, help=f"LID neighbours (default {_LID.k})")
    p.add_argument(
        "--mode",
        choices=MODES,
        help="other edges: sum of enabled ops (mask, paper Eq. 4) or one sampled path per batch "
        f"(single_path); default {_LID.mode} for lid, {_GRAD.mode} for gradient (GM-NAS)",
    )
    p.add_argument(
        "--metric",
        default=_SPLIT.metric,
        choices=METRICS,
        help=f"LID-vector similarity (default {_SPLIT.metric}, Eq. 5)",
    )
    p.add_argument(
        "--cut",
        default=_SPLIT.cut,
        choices=CUTS,
        help="how an edge's operations are cut: balanced (Eq. 6, |G1|,|G2| >= m//2) "
        f"or stoer_wagner (unconstrained global min-cut); default {_SPLIT.cut}",
    )
    p.add_argument(
        "--edge-rule",
        default=_SPLIT.edge_rule,
        choices=EDGE_RULES,
        help="lid: which never-partitioned edge splits: partition (the paper, section 3.3: the "
        "highest Eq. 6 partition score, per pair) or separability (the highest inside/across "
        f"similarity ratio, not the paper's); default {_SPLIT.edge_rule}",
    )
    p.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seed of the batch draw, sampled paths and random splits",
    )
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--debug", action="store_true", help="show tracebacks")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "profile-lid",
        help="profile one (sub-)supernet for splitting: LID vectors / similarity per unsplit edge",
        description="For every never-partitioned edge of the node's mask and every operation it allows, fix the "
        "edge to the operation and measure the layer-wise LID of the sub-supernet (forward only, "
        "BatchNorm on batch statistics, running buffers untouched), or the GM-NAS gradient similarity, or a random bipartition; "
        "write the per-edge similarity matrices as JSON.",
    )
    _common(p)
    p.add_argument("--tree", help="partition tree JSON holding the node to profile")
    p.add_argument("--node", default=ROOT, help=f"node id in --tree (default {ROOT}, the root)")
    p.add_argument(
        "--mask",
        help="mask to profile instead of a tree node: JSON (list of op-name lists) or a file",
    )
    p.add_argument("--out", required=True, help="output profile JSON")
    p.set_defaults(func=run_profile)

    s = subparsers.add_parser(
        "split",
        help="split a supernet into 2^R sub-supernets by balanced cuts of LID similarity (NAS-LID)",
        description="Without --profiles: profile and split every sub-supernet once per round for "
        "--rounds rounds (same weights for every round) and write the partition tree. With "
        "--profiles: split each profiled node of --tree on its best never-partitioned edge "
        "and write the merged tree.",
    )
    _common(s)
    s.add_argument(
        "--rounds", type=int, default=1, help="split rounds R (2^R sub-supernets; default 1)"
    )
    s.add_argument("--tree", help="tree to continue (default: a new root with the model's mask)")
    s.add_argument(
        "--profiles", nargs="+", help="node profiles of `naslid profile-lid` to decide and merge"
    )
    s.add_argument("--out", required=True, help="output partition tree JSON")
    s.set_defaults(func=run_split)


# ------------------------------------------------------------------------------ helpers
def _configs(args: argparse.Namespace) -> MeasureConfigs:
    lid_cfg = LIDConfig(
        k=args.k,
        num_batches=args.batches or _LID.num_batches,
        mode=args.mode or _LID.mode,
        batch_size=args.batch_size or _LID.batch_size,
    )
    grad_cfg = GradMatchConfig(
        num_batches=args.batches or _GRAD.num_batches,
        mode=args.mode or _GRAD.mode,
        batch_size=args.batch_size or _GRAD.batch_size,
    )
    return MeasureConfigs(
        lid_cfg, grad_cfg, SplitConfig(metric=args.metric, cut=args.cut, edge_rule=args.edge_rule)
    )


def _load_model(args: argparse.Namespace):
    from naslid.saved_model import load_model

    if not args.model:
        raise ValueError("model: --model is required (a folder written by `naslid pretrain`)")
    if not Path(args.model).is_dir():
        raise FileNotFoundError(f"{args.model}: no such model folder")
    net, _ = load_model(args.model, device=args.device)
    return net


def _batches(args: argparse.Namespace, net, configs: MeasureConfigs) -> list:
    cfg = criterion(args.criterion).batch_config(configs)
    if cfg is None:
        return []
    from naslid import data
    from naslid.lid import sample_batches

    dataset = data.load(
        args.dataset, args.data_root, args.data_split, limit=args.limit, seed=args.seed
    )
    device = next(net.parameters()).device
    return sample_batches(dataset, cfg.batch_size, cfg.num_batches, seed=args.seed, device=device)


def _parse_mask(space, text: str):
    path = Path(text)
    try:
        raw = json.loads(path.read_text()) if path.is_file() else json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"mask: not valid JSON ({exc.msg})") from None
    return space.mask_from_json(raw)


def _bar(total: int, desc: str, disable: bool):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="pass", disable=disable)


# ------------------------------------------------------------------------------ commands
def run_profile(args: argparse.Namespace) -> int:
    from naslid.split import PartitionTree, forwards_per_node, similarity_for_node

    configs = _configs(args)
    net = _load_model(args)
    space = net.space
    if args.mask and args.tree:
        raise ValueError("mask: give either --mask or --tree/--node, not both")
    root = space.full_mask()
    if args.tree:
        tree = PartitionTree.load(args.tree)
        mask, node_id, root = tree.node(args.node).mask, args.node, tree.node(tree.root).mask
    elif args.mask:
        mask, node_id = _parse_mask(space, args.mask), args.node
    else:
        mask, node_id = net.mask, ROOT
    batches = _batches(args, net, configs)
    measure = criterion(args.criterion).batch_config(configs)
    total = 0 if measure is None else forwards_per_node(mask, measure.num_batches, root)
    with _bar(total, f"profile {node_id} ({args.criterion})", args.no_progress) as bar:
        prof = similarity_for_node(
            args.criterion,
            net,
            mask,
            batches,
            node_id=node_id,
            root=root,
            configs=configs,
            seed=args.seed,
            progress=bar.update,
        )
    prof.save(args.out, space)
    print(
        f"profile-lid: node {node_id}, {len(prof.edges)} unsplit edges, criterion {args.criterion} -> {args.out}"
    )
    return 0


def run_split(args: argparse.Namespace) -> int:
    from naslid.split import NodeProfile, PartitionTree, build_tree, decide_split

    if args.rounds < 0:
        raise ValueError(f"rounds: must be >= 0, got {args.rounds}")
    tree = PartitionTree.load(args.tree) if args.tree else None
    if args.profiles:
        if tree is None:
            raise ValueError("tree: --profiles needs the --tree whose nodes they profile")
        for path in args.profiles:
            prof = NodeProfile.load(path, tree.space)
            decision = decide_split(prof)
            if decision is None:
                print(f"split: node {prof.node_id} has no unsplit edge; left as it is")
                continue
            a, b = tree.apply(decision)
            print(f"split: node {prof.node_id} on edge {decision.edge} -> {a}, {b}")
    else:
        configs = _configs(args)
        net = _load_model(args)
        if tree is not None and tree.space is not net.space:
            raise ValueError(
                f"tree: space {tree.space.name!r} differs from the model's {net.space.name!r}"
            )
        batches = _batches(args, net, configs) if args.rounds else []
        # no data, no passes; else node masks shrink: no fixed total
        total = 0 if criterion(args.criterion).batches_from is None else None
        with _bar(
            total, f"split ({args.criterion}, {args.rounds} rounds)", args.no_progress
        ) as bar:
            tree = build_tree(
                net,
                batches,
                args.rounds,
                args.criterion,
                tree=tree,
                configs=configs,
                seed=args.seed,
                progress=bar.update,
            )
    tree.save(args.out)
    for leaf in tree.leaves():
        print(
            f"{leaf.id:>6}  {tree.space.mask_size(leaf.mask):>6} archs  {tree.space.mask_to_json(leaf.mask)}"
        )
    print(f"split: {len(tree.leaves())} sub-supernets -> {args.out}")
    return 0
