"""The NAS-LID steps: pretrain the supernet, profile each sub-supernet, split them, fine-tune
the children, gather them into the next round's partition (NAS-LID sections 3.2-3.4)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from naslid import __version__
from naslid.artifacts import (
    DATA,
    FORMAT,
    META,
    NODE_PROFILE,
    PARTITION,
    SPLIT,
    SUBSUPERNET,
    PathLike,
    artifact_meta,
    lineage,
    load_data,
    read_meta,
    space_of,
    write_meta,
)
from naslid.config import DEFAULT_PROFILE
from naslid.criteria import DEFAULT_CRITERION
from naslid.io import inside, write_json
from naslid.node_ids import ROOT, check_node_id, parent_id
from naslid.steps.registry import HOUR, In, Out, step
from naslid.steps.runtime import checkpoints, copy_file, log, resolve, seed_all, step_device


def _partition_meta(
    round_: int,
    space: str,
    leaves: dict,
    criterion: str | None,
    data_meta: dict,
    supernet: dict,
    **extra: Any,
) -> dict:
    return artifact_meta(
        PARTITION,
        round=round_,
        space=space,
        criterion=criterion,
        leaves=leaves,
        dataset=data_meta["dataset"],
        num_classes=data_meta["num_classes"],
        supernet=supernet,
        **extra,
    )


@step(
    "pretrain-supernet",
    inputs={"data": In(DATA)},
    outputs={"out": Out("supernet", PARTITION)},
    metrics=True,
    gpu=True,
    timeout=24 * HOUR,
)
def pretrain_supernet(
    data: PathLike,
    out: PathLike,
    *,
    profile: str = DEFAULT_PROFILE,
    epochs: int = -1,
    seed: int = 0,
    checkpoint_uri: str = "",
    progress: bool = False,
) -> dict:
    """Train the one-shot supernet with uniform single-path sampling (resumable); write it as
    the round-0 partition (one leaf ``r`` holding the whole space). Returns the metrics."""
    import numpy as np

    from naslid import supernets
    from naslid.saved_model import save_model
    from naslid.train import evaluate, train

    cfg = resolve(profile, epochs=epochs, seed=seed)
    dmeta = read_meta(data, DATA)
    out = Path(out)
    train_data, valid = load_data(data, "train"), load_data(data, "valid")
    seed_all(seed)
    net = supernets.from_profile(cfg, dmeta["num_classes"])
    tcfg = replace(cfg.train, seed=seed)
    device = step_device()
    with checkpoints(checkpoint_uri, out) as store:
        log(
            f"pretrain-supernet: {cfg.space} on {dmeta['dataset']}, {tcfg.epochs} epochs on {device}, "
            f"checkpoints in {store}"
        )
        result = train(
            net,
            train_data,
            tcfg,
            store=store,
            resume=True,
            device=device,
            progress=progress,
            desc="pretrain",
        )
    if result.start_epoch:
        log(f"pretrain-supernet: resumed after epoch {result.start_epoch}")
    rng = np.random.default_rng(seed)
    paths = net.space.sample(rng, 5)
    path_acc = [evaluate(net, valid, a) for a in paths]
    last = result.history[-1] if result.history else {}
    leaf = out / "leaves" / ROOT
    save_model(
        net,
        leaf,
        config=tcfg,
        extra={"node": ROOT, "round": 0, "history": result.history},
        continuation=result.continuation,
    )
    mask_json = net.space.mask_to_json(net.mask)
    write_meta(
        out,
        _partition_meta(
            0,
            cfg.space,
            {ROOT: mask_json},
            None,
            dmeta,
            net.config(),
            train_config=tcfg.to_json(),
            history=result.history,
        ),
    )
    metrics = {
        "epochs": result.epochs,
        "train_loss": float(last.get("loss", float("nan"))),
        "train_accuracy": float(last.get("accuracy", float("nan"))),
        "valid_accuracy_random_paths": float(np.mean(path_acc)),
        "seconds": float(sum(h.get("seconds", 0.0) for h in result.history)),
    }
    log(f"pretrain-supernet: {metrics}")
    return metrics


@step(
    "profile-lid",
    inputs={"data": In(DATA), "partition": In(PARTITION, round="max")},
    outputs={"out": Out("node_profile", NODE_PROFILE)},
    gpu=True,
    timeout=2 * HOUR,
)
def profile_lid(
    data: PathLike,
    partition: PathLike,
    out: PathLike,
    *,
    node: str = ROOT,
    criterion: str = DEFAULT_CRITERION,
    edge_rule: str = "",
    profile: str = DEFAULT_PROFILE,
    seed: int = 0,
    progress: bool = False,
) -> dict:
    """Measure the per-edge similarity of one sub-supernet's candidate operations: layer-wise
    LID vectors (NAS-LID), gradient cosine (GM-NAS) or a random bipartition. ``edge_rule``
    (``lid``; '' = the profile's): how ``split-round`` will rank the edges, recorded in the
    profile (:data:`naslid.cut.EDGE_RULES`)."""
    from naslid import lid, split
    from naslid.saved_model import load_model

    cfg = resolve(profile, criterion=criterion, seed=seed, edge_rule=edge_rule)
    pmeta = read_meta(partition, PARTITION)
    if node not in pmeta["leaves"]:
        raise ValueError(
            f"node: {node!r} is not a sub-supernet of {partition} (it has {sorted(pmeta['leaves'])})"
        )
    if pmeta["criterion"] not in (None, cfg.criterion):
        raise ValueError(
            f"{Path(partition) / META}: field 'criterion' is {pmeta['criterion']!r}, "
            f"expected {cfg.criterion!r}"
        )
    device = step_device()
    net, _ = load_model(inside(partition, "leaves", node), device=device)
    space = net.space
    mask = space.mask_from_json(pmeta["leaves"][node])
    tree_path = Path(partition) / "tree.json"
    if tree_path.exists():
        tree = split.PartitionTree.load(tree_path)
        root = tree.node(tree.root).mask
    else:  # round 1: the partition is the root itself
        root = mask
    batches: list = []
    crit = split.criterion(cfg.criterion)
    measure = crit.batch_config(cfg)
    if measure is not None:
        train = load_data(data, "train")
        size = min(measure.batch_size, len(train))
        batches = lid.sample_batches(train, size, measure.num_batches, seed=seed, device=device)
    t0 = time.perf_counter()
    prof = split.similarity_for_node(
        cfg.criterion,
        net,
        mask,
        batches,
        node_id=node,
        root=root,
        configs=cfg,
        seed=seed,
    )
    out = Path(out)
    prof.save(out / "profile.json", space)
    meta = artifact_meta(
        NODE_PROFILE,
        node=node,
        round=pmeta["round"] + 1,
        criterion=cfg.criterion,
        space=space.name,
        edges=sorted(prof.edges),
        seconds=time.perf_counter() - t0,
    )
    write_meta(out, meta)
    log(
        f"profile-lid: node {node}, {cfg.criterion}, {len(prof.edges)} edges in {meta['seconds']:.1f}s"
    )
    return meta


@step(
    "split-round",
    inputs={
        "partition": In(PARTITION, round="max"),
        "profiles": In(NODE_PROFILE, many=True, round="max"),
    },
    outputs={"out": Out("split", SPLIT)},
    timeout=1800,
)
def split_round(
    partition: PathLike,
    profiles: Sequence[PathLike],
    out: PathLike,
    *,
    criterion: str = DEFAULT_CRITERION,
) -> dict:
    """Split every sub-supernet of ``partition`` on its best never-partitioned edge (balanced
    Eq. 6 cut of its similarity, the criterion's edge rule); write the next level of the
    partition tree."""
    from naslid import split

    pmeta = read_meta(partition, PARTITION)
    space = space_of(pmeta)
    round_ = pmeta["round"] + 1
    if pmeta["round"] == 0:
        tree = split.PartitionTree(space, space.mask_from_json(pmeta["leaves"][ROOT]), criterion)
    else:
        if pmeta["criterion"] != criterion:
            raise ValueError(
                f"{Path(partition) / META}: field 'criterion' is {pmeta['criterion']!r}, "
                f"expected {criterion!r}"
            )
        tree = split.PartitionTree.load(Path(partition) / "tree.json")
    by_node = {}
    for p in profiles:
        meta = read_meta(
            p, NODE_PROFILE, {"criterion": criterion, "round": round_, "space": space.name}
        )
        by_node[meta["node"]] = split.NodeProfile.load(Path(p) / "profile.json", space)
    leaves = [n.id for n in tree.leaves()]
    missing = sorted(set(leaves) - set(by_node))
    if missing:
        raise ValueError(
            f"profiles: no profile of node(s) {', '.join(missing)} among {len(profiles)} given"
        )
    decisions = []
    for node in leaves:
        decision = split.decide_split(by_node[node], node)
        if decision is None:
            raise ValueError(
                f"node {node}: every edge holds one operation, nothing left to split (ask fewer rounds)"
            )
        tree.apply(decision)
        decisions.append(decision.to_json(space))
        names = space.slot_options[decision.edge]
        log(
            f"split-round {round_}: node {node} on edge {decision.edge}: "
            f"{[names[o] for o in decision.groups[0]]} | {[names[o] for o in decision.groups[1]]} "
            f"(edge rule {decision.edge_rule}, score {decision.scores[decision.edge]:.3g})"
        )
    out = Path(out)
    tree.save(out / "tree.json")
    write_json(out / "decisions.json", decisions)
    children = [n.id for n in tree.leaves()]
    rules = sorted({d["edge_rule"] for d in decisions})
    if len(rules) != 1:
        raise ValueError(f"profiles: measured for different edge rules {rules}; profile them again")
    meta = artifact_meta(
        SPLIT,
        round=round_,
        criterion=criterion,
        edge_rule=rules[0],
        space=space.name,
        parents=leaves,
        children=children,
        leaves={n.id: space.mask_to_json(n.mask) for n in tree.leaves()},
        dataset=pmeta["dataset"],
        num_classes=pmeta["num_classes"],
        supernet=pmeta["supernet"],
    )
    write_meta(out, meta)
    return meta


@step(
    "finetune-subsupernet",
    inputs={
        "data": In(DATA),
        "partition": In(PARTITION, round="split-1"),
        "split": In(SPLIT, round="max"),
    },
    outputs={"out": Out("subsupernet", SUBSUPERNET)},
    gpu=True,
    timeout=12 * HOUR,
)
def finetune_subsupernet(
    data: PathLike,
    partition: PathLike,
    split: PathLike,
    out: PathLike,
    *,
    node: str,
    profile: str = DEFAULT_PROFILE,
    finetune_epochs: int = -1,
    rounds: int = -1,
    seed: int = 0,
    checkpoint_uri: str = "",
    progress: bool = False,
) -> dict:
    """Inherit the parent's weights for child ``node`` of the split and train inside its mask
    (NAS-LID sections 3.3-4). A child of the last of ``rounds`` splits (-1: the profile's) is
    a final sub-supernet: it trains ``finetune_epochs`` (-1: the profile's
    ``train.finetune_epochs``; the paper's 50) in all; a child that will be split again
    trains the profile's ``train.warmup_epochs`` first (the public NAS-LID code: 20 per
    level). By default (``train.child_schedule`` ``continue``) it continues its parent's
    optimiser -- momentum buffers and last learning rate, annealed to ``lr_min`` -- as the
    public code resumes the parent's trainer; ``restart`` starts a fresh SGD at the peak rate."""
    from naslid.saved_model import load_continuation, load_model, save_model
    from naslid.subsupernet import finetune

    cfg = resolve(profile, seed=seed, finetune_epochs=finetune_epochs, rounds=rounds)
    smeta = read_meta(split, SPLIT)
    is_last = smeta["round"] == cfg.rounds
    n_epochs = cfg.train.finetune_epochs if is_last else cfg.train.warmup_epochs
    if n_epochs < 1:
        which = "finetune_epochs" if is_last else "warmup_epochs"
        raise ValueError(f"{which}: a sub-supernet needs at least one epoch, got {n_epochs}")
    if node not in smeta["children"]:
        raise ValueError(
            f"node: {node!r} is not a child of the split {split} (children: {smeta['children']})"
        )
    pmeta = read_meta(partition, PARTITION, {"round": smeta["round"] - 1, "space": smeta["space"]})
    parent = parent_id(node)
    if parent not in pmeta["leaves"]:
        raise ValueError(
            f"{Path(partition) / META}: field 'leaves' has no parent {parent!r} of node {node!r}"
        )
    device = step_device()
    parent_dir = Path(partition) / "leaves" / parent
    parent_net, _ = load_model(parent_dir, device=device)
    tcfg = replace(cfg.train, seed=seed)
    parent_state = load_continuation(parent_dir) if tcfg.child_schedule == "continue" else None
    space = parent_net.space
    mask = space.mask_from_json(smeta["leaves"][node])
    train_data = load_data(data, "train")
    out = Path(out)
    seed_all(seed)
    with checkpoints(checkpoint_uri, out) as store:
        child, result = finetune(
            parent_net,
            mask,
            train_data,
            tcfg,
            epochs=n_epochs,
            parent_state=parent_state,
            store=store,
            resume=True,
            device=device,
            progress=progress,
            desc=f"finetune {node}",
        )
    last = result.history[-1] if result.history else {}
    save_model(
        child,
        out,
        mask=mask,
        config=result.config,
        continuation=result.continuation,
        extra={
            "artifact": SUBSUPERNET,
            "format": FORMAT,
            "node": node,
            "round": smeta["round"],
            "last_round": is_last,
            "history": result.history,
            "code_version": __version__,
            **lineage(),
        },
    )
    log(
        f"finetune-subsupernet: node {node}, {result.epochs} epochs, train loss {last.get('loss', float('nan')):.3f}"
    )
    return {
        "node": node,
        "epochs": result.epochs,
        "train_loss": last.get("loss"),
        "train_accuracy": last.get("accuracy"),
    }


@step(
    "gather-subsupernets",
    inputs={
        "split": In(SPLIT, round="max"),
        "subsupernets": In(SUBSUPERNET, many=True, round="max"),
    },
    outputs={"out": Out("partition", PARTITION)},
)
def gather_subsupernets(split: PathLike, subsupernets: Sequence[PathLike], out: PathLike) -> dict:
    """Fan-in: the split's tree and every fine-tuned child as the next round's partition."""
    smeta = read_meta(split, SPLIT)
    out = Path(out)
    found = {}
    for d in subsupernets:
        meta = read_meta(d, SUBSUPERNET, {"round": smeta["round"], "space": smeta["space"]})
        check_node_id(meta["node"], f"{Path(d) / META}: field 'node'")
        if meta["node"] not in smeta["children"]:
            raise ValueError(
                f"{Path(d) / META}: field 'node' is {meta['node']!r}, not a child of {split}"
            )
        if meta["node"] in found:
            raise ValueError(f"{Path(d) / META}: node {meta['node']!r} given twice")
        found[meta["node"]] = Path(d)
    missing = sorted(set(smeta["children"]) - set(found))
    if missing:
        raise ValueError(f"subsupernets: no fine-tuned child for node(s) {', '.join(missing)}")
    for node, d in sorted(found.items()):
        for name in ("supernet.pt", "optimizer.pt", META):
            copy_file(d / name, inside(out, "leaves", node, name))
    copy_file(Path(split) / "tree.json", out / "tree.json")
    copy_file(Path(split) / "decisions.json", out / "decisions.json")
    data_meta = {"dataset": smeta["dataset"], "num_classes": smeta["num_classes"]}
    meta = _partition_meta(
        smeta["round"],
        smeta["space"],
        smeta["leaves"],
        smeta["criterion"],
        data_meta,
        smeta["supernet"],
    )
    write_meta(out, meta)
    log(f"gather-subsupernets: round {smeta['round']}, {len(found)} sub-supernets")
    return meta
