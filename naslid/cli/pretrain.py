"""``naslid pretrain``: train a one-shot supernet with uniform single-path sampling."""

from __future__ import annotations

import argparse
import dataclasses

from naslid import supernets
from naslid.cli._options import add_space_option
from naslid.data import DATASETS
from naslid.spaces import SPACES
from naslid.train import TrainConfig

_DEFAULTS = TrainConfig()


def _option_flags(p: argparse.ArgumentParser) -> None:
    """One flag per supernet option of every space (``--C``, ``--width-mult``), from the
    spaces' ``Options``; unset, the option keeps its default."""
    seen: set[str] = set()
    for space in SPACES:
        for f in dataclasses.fields(supernets.get(space).Options):
            if f.name in seen:
                continue
            seen.add(f.name)
            p.add_argument(
                f"--{f.name.replace('_', '-')}",
                type=type(f.default),
                help=f"{f.metadata['help']} ({space}; default {f.default})",
            )


def _options(args: argparse.Namespace) -> dict:
    """The supernet options of ``args.space`` given on the command line."""
    names = [f.name for f in dataclasses.fields(supernets.get(args.space).Options)]
    return {n: getattr(args, n) for n in names if getattr(args, n) is not None}


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "pretrain",
        help="train a one-shot supernet (uniform single-path sampling, resumable)",
        description="Train a supernet with one uniformly sampled path per batch (SPOS/RSPS), "
        "write epoch checkpoints to --checkpoints (resume with --resume), save OUT/supernet.pt "
        "with OUT/meta.json, and print the accuracy of a few random paths.",
    )
    add_space_option(p)
    p.add_argument(
        "--dataset", default="digits", choices=sorted(DATASETS), help="data set (default digits)"
    )
    p.add_argument(
        "--data-root", help="data folder (cifar*, imagefolder); default $NASLID_DATA/<name>"
    )
    p.add_argument(
        "--download", action="store_true", help="download CIFAR with torchvision (needs a network)"
    )
    p.add_argument("--limit", type=int, help="use at most this many images per split")
    p.add_argument(
        "--epochs", type=int, default=_DEFAULTS.epochs, help=f"default {_DEFAULTS.epochs}"
    )
    p.add_argument(
        "--batch-size",
        type=int,
        default=_DEFAULTS.batch_size,
        help=f"default {_DEFAULTS.batch_size}",
    )
    p.add_argument(
        "--lr",
        type=float,
        default=_DEFAULTS.lr,
        help=f"initial learning rate (default {_DEFAULTS.lr})",
    )
    p.add_argument("--out", required=True, help="output folder: supernet.pt, meta.json, eval.json")
    p.add_argument(
        "--checkpoints", help="checkpoint store: a folder or minio://BUCKET/PREFIX (default: OUT)"
    )
    p.add_argument(
        "--resume", action="store_true", help="continue from the newest valid checkpoint"
    )
    _option_flags(p)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p.add_argument(
        "--eval-paths", type=int, default=5, help="random paths to evaluate at the end (default 5)"
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import random

    import numpy as np
    import torch

    from naslid import data as datasets
    from naslid import supernets
    from naslid.distributed import resolve_device
    from naslid.io import write_json
    from naslid.saved_model import save_model
    from naslid.store import open_store
    from naslid.train import evaluate, train

    supernets.options(args.space, _options(args))  # refuses an option out of range before work
    device = resolve_device(args.device)
    train_data = datasets.load(
        args.dataset,
        args.data_root,
        "train",
        download=args.download,
        limit=args.limit,
        seed=args.seed,
    )
    eval_split = "valid" if "valid" in datasets.DATASETS[args.dataset] else "test"
    eval_data = datasets.load(
        args.dataset,
        args.data_root,
        eval_split,
        download=args.download,
        limit=args.limit,
        seed=args.seed,
    )
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    net = supernets.from_options(args.space, _options(args), train_data.num_classes)
    config = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, seed=args.seed)
    store = open_store(args.checkpoints or args.out)
    print(
        f"pretrain: {args.space} supernet on {args.dataset} ({len(train_data)} images, "
        f"{train_data.num_classes} classes), {config.epochs} epochs on {device}, checkpoints in {store.uri}"
    )
    result = train(
        net,
        train_data,
        config,
        store=store,
        resume=args.resume,
        device=device,
        progress=not args.no_progress,
        desc="pretrain",
    )
    if result.start_epoch:
        print(f"resumed after epoch {result.start_epoch}")
    last = result.history[-1] if result.history else {}
    if last:
        print(
            f"epoch {last['epoch']}: train loss {last['loss']:.3f}, train accuracy {last['accuracy']:.1f}%"
        )
    rng = np.random.default_rng([args.seed, 7])
    rows = []
    for arch in net.space.sample(rng, args.eval_paths, net.mask):
        acc = evaluate(net, eval_data, arch)
        rows.append({"arch": str(arch), "accuracy": acc})
        print(f"{eval_split} accuracy {acc:6.2f}%  {arch}")
    # every file of the output before meta.json, which seals them (a resumed run over a
    # finished output rewrote eval.json after sealing: the model was refused from then on)
    write_json(f"{args.out}/eval.json", {"split": eval_split, "paths": rows})
    extra = {"dataset": args.dataset, "num_train": len(train_data), "seed": args.seed}
    path = save_model(net, args.out, config=config, extra=extra, continuation=result.continuation)
    print(f"wrote {path} and meta.json")
    return 0
