"""``naslid transfer`` (train the found architecture on ImageNet) and ``naslid transfer-data``."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from naslid.cli._options import add_config_options, config_values, signature_defaults
from naslid.io import read_json
from naslid.spaces import SPACES
from naslid.transfer import TransferConfig, make_digits_imagefolder

# The TransferConfig fields that are options, and what they mean (ProxylessNAS's ImageNet
# recipe by default).
_CONFIG_OPTIONS = {
    "epochs": "training epochs",
    "batch_size": "global batch size, split over the processes",
    "lr": "learning rate at batch 256, scaled linearly with the batch size",
    "weight_decay": "weight decay, none on BatchNorm",
    "label_smoothing": "label smoothing of the loss",
    "dropout": "dropout before the classifier (mobilenet only)",
    "warmup_epochs": "epochs of linear warm-up before the cosine",
    "ema_decay": "EMA decay of the weights per step, 0 for none",
    "image_size": "image side in pixels",
    "width_mult": "width multiplier (default: the supernet's, else 1)",
    "workers": "data loader processes",
    "seed": "random seed",
}
# make_digits_imagefolder's arguments that are transfer-data's options
_DIGITS_OPTIONS = {
    "train_per_class": "training images per class",
    "val_per_class": "validation images per class",
    "size": "image side in pixels",
    "seed": "random seed",
}


def _arch_from(path: str) -> str:
    """The arch of ``naslid evolve``'s top.json (best first) or of a transfer arch.json."""
    data = read_json(path)
    if isinstance(data, list) and data and isinstance(data[0], dict) and "arch" in data[0]:
        return str(data[0]["arch"])
    if isinstance(data, dict) and "arch" in data:
        return str(data["arch"])
    raise ValueError(
        f"{path}: expected a list of {{'arch': ...}} (top.json) or an object with 'arch'"
    )


def _check_digits_target(out: Path) -> None:
    """``--out`` must be new, empty or an earlier digits tree: written into a data set, the
    tree added its ten classes to it."""
    digits = {str(c) for c in range(10)}
    for entry in out.iterdir() if out.is_dir() else ():
        if entry.name.startswith("."):
            continue  # the output's lock file
        if entry.name not in ("train", "val") or not entry.is_dir():
            raise ValueError(f"--out {out}: holds {entry.name!r}, not a tree made by transfer-data")
        extra = sorted({c.name for c in entry.iterdir()} - digits)
        if extra:
            raise ValueError(
                f"--out {out}: {entry.name}/ holds class {extra[0]!r}: a data set, not a tree "
                "made by transfer-data; choose another output"
            )


def run_transfer(args: argparse.Namespace) -> int:
    from naslid.transfer import transfer

    if (args.arch is None) == (args.arch_from is None):
        raise ValueError("arch: give exactly one of --arch and --arch-from")
    arch = args.arch if args.arch is not None else _arch_from(args.arch_from)
    config = TransferConfig(
        **config_values(args, _CONFIG_OPTIONS), amp=not args.no_amp, compile=args.compile
    )
    result = transfer(
        args.space,
        arch,
        args.data,
        args.out,
        config,
        supernet=args.supernet,
        checkpoint_dir=args.checkpoint_dir,
        device=args.device,
        stop_after=args.stop_after,
        export=not args.no_export,
        progress=not args.quiet,
    )
    if os.environ.get("RANK", "0") != "0":  # torchrun: one summary, from rank 0
        return 0
    if not result["finished"]:
        print(
            f"stopped after epoch {result['epoch']} of {config.epochs}; rerun the same command to resume"
        )
        return 0
    summary = {
        k: result[k] for k in ("space", "arch", "top1", "top5", "flops_M", "params_M", "image_size")
    }
    print(json.dumps(summary, indent=2))
    return 0


def run_transfer_data(args: argparse.Namespace) -> int:
    _check_digits_target(Path(args.out))
    root = make_digits_imagefolder(args.out, **config_values(args, _DIGITS_OPTIONS))
    print(f"wrote a 10-class ImageNet-layout tree of digits to {root} (train/, val/)")
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "transfer",
        help="train the found architecture on an ImageNet-layout data set and export it",
        description="Train the standalone network of an architecture (nb201 or mobilenet) on an "
        "ImageFolder tree (DATA/train, DATA/val; a minio:// prefix is copied to OUT/data-cache), "
        "optionally initialised from a supernet checkpoint, and write OUT/model.pt2 "
        "(torch.export program), OUT/arch.json (accuracy, FLOPs, params), OUT/weights.pt. "
        "Several GPUs: torchrun --nproc_per_node=N -m naslid transfer ...",
    )
    p.add_argument("--space", required=True, choices=SPACES)
    p.add_argument("--arch", help="the architecture string")
    p.add_argument(
        "--arch-from", metavar="JSON", help="take the best arch of naslid evolve's top.json"
    )
    p.add_argument(
        "--data",
        required=True,
        help="ImageFolder root with train/ and val/, or minio://BUCKET/PREFIX",
    )
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument(
        "--supernet",
        metavar="CKPT.pt",
        help="initialise from this supernet state dict (meta.json beside it)",
    )
    p.add_argument(
        "--checkpoint-dir",
        help="epoch checkpoints (directory or minio:// prefix; default OUT/checkpoints)",
    )
    add_config_options(p, TransferConfig(), _CONFIG_OPTIONS, {"ema_decay": ("--ema", "DECAY")})
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    p.add_argument("--no-amp", action="store_true", help="no bf16 autocast on GPU")
    p.add_argument("--compile", action="store_true", help="torch.compile the training model")
    p.add_argument(
        "--stop-after",
        type=int,
        default=None,
        metavar="N",
        help="leave after N epochs of this run (resumable)",
    )
    p.add_argument("--no-export", action="store_true", help="do not write model.pt2")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    p.set_defaults(func=run_transfer)

    d = subparsers.add_parser(
        "transfer-data",
        help="write a tiny ImageNet-layout tree of scikit-learn digits (smoke profile)",
        description="10 classes of upscaled 8x8 digits as RGB PNGs under OUT/train and OUT/val.",
    )
    d.add_argument("--out", required=True)
    add_config_options(d, signature_defaults(make_digits_imagefolder), _DIGITS_OPTIONS)
    d.set_defaults(func=run_transfer_data)
