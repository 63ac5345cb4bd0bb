"""A trained (sub-)supernet on disk: ``supernet.pt`` (the state dict, naslid's checksummed
format), ``optimizer.pt`` (where a child continues from: the last learning rate and the SGD
momentum buffers, :func:`naslid.train.continuation_state`) and ``meta.json`` (space, network
config, mask, training config; sealed), as the pretrain and finetune steps leave it and every
later step reads it."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import nn

from naslid import __version__, supernets
from naslid.artifacts import load_meta, write_meta
from naslid.checkpoints import check_shapes
from naslid.distributed import resolve_device
from naslid.divergence import check_finite
from naslid.io import load_torch, save_torch
from naslid.spaces.base import Mask

if TYPE_CHECKING:
    from naslid.train import TrainConfig

MODEL_FILE = "supernet.pt"
OPTIMIZER_FILE = "optimizer.pt"
META_FILE = "meta.json"


def supernet_space(net: nn.Module):
    """The search space of a naslid supernet (its ``.space``)."""
    space = getattr(net, "space", None)
    if space is None:
        raise ValueError("net: has no .space (a naslid supernet is expected)")
    return space


def net_mask(net: nn.Module) -> Mask:
    """The mask of the candidates ``net`` holds (every one without a mask)."""
    return getattr(net, "mask", None) or supernet_space(net).full_mask()


def save_model(
    net: nn.Module,
    out_dir: str | Path,
    *,
    mask: Mask | None = None,
    config: TrainConfig | None = None,
    extra: dict | None = None,
    continuation: dict | None = None,
) -> Path:
    """Write ``out_dir/supernet.pt`` (state dict, checksummed), ``out_dir/optimizer.pt`` when
    a ``continuation`` (:func:`naslid.train.continuation_state`) is given, and
    ``out_dir/meta.json`` last."""
    out = Path(out_dir)
    space = supernet_space(net)
    mask = net_mask(net) if mask is None else mask
    check_finite(net.state_dict(), f"{out / MODEL_FILE}: not saved")
    save_torch(
        {k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}, out / MODEL_FILE
    )
    if continuation is not None:
        check_finite(continuation["momentum"], f"{out / OPTIMIZER_FILE}: not saved")
        save_torch(
            {"lr": float(continuation["lr"]), "momentum": dict(continuation["momentum"])},
            out / OPTIMIZER_FILE,
        )
    meta = {
        "kind": "supernet",
        "space": space.name,
        "supernet": net.config() if hasattr(net, "config") else None,
        "mask": space.mask_to_json(mask),
        "epochs": config.epochs if config else None,
        "train_config": config.to_json() if config else None,
        "naslid_version": __version__,
        **(extra or {}),
    }
    write_meta(out, meta)
    return out / MODEL_FILE


def load_model(
    model_dir: str | Path, expected: dict | None = None, device: str | torch.device = "cpu"
) -> tuple[nn.Module, dict]:
    """Rebuild the supernet saved by :func:`save_model`; ``expected`` meta fields are checked."""
    model_dir = Path(model_dir)
    meta = load_meta(model_dir, expected)
    if not meta.get("supernet"):
        raise ValueError(f"{model_dir / META_FILE}: no field 'supernet' (the network config)")
    net = supernets.build(meta["supernet"])
    state = load_torch(model_dir / MODEL_FILE)
    check_shapes(state, net.state_dict(), f"{model_dir / MODEL_FILE} (network of meta.json)")
    check_finite(state, f"{model_dir / MODEL_FILE}: refused")
    net.load_state_dict(state)
    return net.to(resolve_device(device)), meta


def load_continuation(model_dir: str | Path) -> dict:
    """The optimiser state a child of the model in ``model_dir`` continues from (its last
    learning rate and momentum buffers), as :func:`save_model` wrote it."""
    path = Path(model_dir) / OPTIMIZER_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: no optimiser state to continue from (written by naslid before children "
            "continued their parent's schedule?); re-run the parent, or fine-tune with "
            "child_schedule=restart"
        )
    state = load_torch(path)
    if (
        not isinstance(state, dict)
        or not isinstance(state.get("lr"), float)
        or not isinstance(state.get("momentum"), dict)
    ):
        raise ValueError(f"{path}: expected {{'lr': float, 'momentum': {{name: tensor}}}}")
    check_finite(state["momentum"], f"{path}: refused")
    return state
