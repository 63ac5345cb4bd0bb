"""``naslid finetune``: fine-tune one sub-supernet of a partition tree from its parent's weights."""

from __future__ import annotations

import argparse

from naslid.cli._options import add_config_options, config_values
from naslid.data import DATASETS
from naslid.train import TrainConfig

_DEFAULTS = TrainConfig()
_CONFIG_OPTIONS = {"batch_size": "batch size", "lr": "learning rate", "seed": "random seed"}


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "finetune",
        help="fine-tune one sub-supernet of a partition tree (inherits its parent's weights)",
        description="Take node ID of the partition tree TREE, copy the weights of its parent "
        "(sub-)supernet PARENT (NAS-LID section 3.3: children inherit, they are not re-initialised), "
        "train inside the node's mask with single-path sampling, and save OUT/supernet.pt + meta.json. "
        "Epoch checkpoints go to --checkpoints (default OUT); --resume continues a killed run.",
    )
    p.add_argument("--tree", required=True, help="partition tree JSON (naslid split --out)")
    p.add_argument("--node", required=True, help="node id in the tree, e.g. r0 or r01")
    p.add_argument("--parent", required=True, help="folder of the parent's supernet.pt + meta.json")
    p.add_argument("--dataset", default="digits", choices=sorted(DATASETS))
    p.add_argument("--data-root", help="data folder (cifar*, imagefolder)")
    p.add_argument("--limit", type=int, help="use at most this many images")
    p.add_argument(
        "--epochs",
        type=int,
        default=_DEFAULTS.warmup_epochs,
        help="training epochs (default %(default)s: the warm-up of one split level; a final "
        f"sub-supernet: the paper's 50, the default config's {_DEFAULTS.finetune_epochs})",
    )
    p.add_argument(
        "--restart",
        action="store_true",
        help="start a fresh SGD at the peak --lr instead of continuing the parent's optimiser "
        "(its momentum and last learning rate, NAS-LID's public code)",
    )
    add_config_options(p, _DEFAULTS, _CONFIG_OPTIONS)
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument(
        "--checkpoints", help="checkpoint store: folder or minio://BUCKET/PREFIX (default OUT)"
    )
    p.add_argument(
        "--resume", action="store_true", help="continue from the newest valid checkpoint"
    )
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import torch

    from naslid import data as datasets
    from naslid.saved_model import load_continuation, load_model, save_model
    from naslid.split import PartitionTree
    from naslid.store import open_store
    from naslid.subsupernet import finetune

    tree = PartitionTree.load(args.tree)
    node = tree.node(args.node)
    parent, meta = load_model(args.parent, expected={"space": tree.space.name})
    train_data = datasets.load(
        args.dataset, args.data_root, "train", limit=args.limit, seed=args.seed
    )
    torch.manual_seed(args.seed)
    config = TrainConfig(
        epochs=args.epochs,
        child_schedule="restart" if args.restart else "continue",
        **config_values(args, _CONFIG_OPTIONS),
    )
    parent_state = None if args.restart else load_continuation(args.parent)
    store = open_store(args.checkpoints or args.out)
    print(
        f"finetune: node {node.id} ({tree.space.mask_size(node.mask)} archs) from {args.parent}, "
        f"{args.epochs} epochs, checkpoints in {store.uri}"
    )
    child, result = finetune(
        parent,
        node.mask,
        train_data,
        config,
        epochs=args.epochs,
        parent_state=parent_state,
        store=store,
        resume=args.resume,
        device=args.device,
        progress=not args.no_progress,
        desc=f"finetune {node.id}",
    )
    extra = {"node": node.id, "parent": meta.get("node", tree.root), "dataset": args.dataset}
    path = save_model(
        child,
        args.out,
        mask=node.mask,
        config=result.config,
        extra=extra,
        continuation=result.continuation,
    )
    last = result.history[-1] if result.history else {}
    if last:
        print(
            f"epoch {last['epoch']}: train loss {last['loss']:.3f}, accuracy {last['accuracy']:.1f}%"
        )
    print(f"wrote {path} and meta.json")
    return 0
