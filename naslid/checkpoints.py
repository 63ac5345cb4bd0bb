"""Epoch checkpoints of a training loop in a :mod:`naslid.store` (a directory, or MinIO for pods
that may be pre-empted), shared by the supernet loop (:func:`naslid.train.train`) and the
transfer loop (:func:`naslid.transfer.transfer`).

After every epoch a loop writes ``ckpt/epoch-NNNN.pt`` (naslid's checksummed torch format,
whatever state the loop needs to continue: model, optimiser, scheduler, history ...) and then
the pointer ``ckpt/latest.json``; the last ``keep`` epochs are kept. A resumed loop takes the
newest checkpoint that loads cleanly (:func:`latest_checkpoint`) and refuses one written with
other settings (:func:`check_resumable`). A truncated or corrupt checkpoint is refused by its
checksum before anything is loaded.
"""

from __future__ import annotations

import json
import re
import time
import warnings
from pathlib import Path

import torch

from naslid.io import CHECKPOINT_DIR, CorruptFileError, torch_from_bytes, torch_to_bytes
from naslid.store import Store, open_store

FORMAT = "naslid-train-checkpoint/1"
CKPT_DIR = CHECKPOINT_DIR
LATEST_KEY = f"{CKPT_DIR}/latest.json"
_CKPT_RE = re.compile(rf"^{CKPT_DIR}/epoch-(\d+)\.pt$")


def as_store(store: Store | str | Path) -> Store:
    """``store`` itself, or the store of a directory / ``minio://`` URI."""
    return open_store(store) if isinstance(store, str | Path) else store


def checkpoint_key(epoch: int) -> str:
    return f"{CKPT_DIR}/epoch-{epoch:04d}.pt"


def _epoch_of(key: str) -> int:
    return int(_CKPT_RE.match(key).group(1))


def checkpoint_keys(store: Store) -> list[str]:
    """Epoch checkpoint keys, newest first."""
    keys = [k for k in store.list(f"{CKPT_DIR}/") if _CKPT_RE.match(k)]
    return sorted(keys, key=_epoch_of, reverse=True)


def load_checkpoint(
    store: Store | str | Path, key: str, map_location: str | torch.device = "cpu"
) -> dict:
    """The checkpoint at ``key``; truncated/corrupt/foreign files raise CorruptFileError."""
    store = as_store(store)
    obj = torch_from_bytes(store.get_bytes(key), f"{store.uri}/{key}", map_location=map_location)
    if not isinstance(obj, dict) or obj.get("format") != FORMAT:
        raise CorruptFileError(f"{store.uri}/{key}: not a naslid training checkpoint")
    return obj


def latest_checkpoint(
    store: Store | str | Path, map_location: str | torch.device = "cpu"
) -> tuple[str, dict] | None:
    """The newest checkpoint that loads cleanly: the pointer's target first, then older ones.

    Damaged ones are skipped with a warning naming them; if checkpoints exist but none is
    valid, CorruptFileError (a run must not restart from scratch silently).
    """
    store = as_store(store)
    candidates = checkpoint_keys(store)
    if store.exists(LATEST_KEY):
        try:
            pointed = json.loads(store.get_bytes(LATEST_KEY))["key"]
            candidates = [pointed] + [k for k in candidates if k != pointed]
        except (ValueError, KeyError, TypeError):
            warnings.warn(
                f"{store.uri}/{LATEST_KEY}: unreadable pointer; scanning checkpoints", stacklevel=2
            )
    errors = []
    for key in candidates:
        try:
            return key, load_checkpoint(store, key, map_location)
        except (CorruptFileError, FileNotFoundError) as exc:
            errors.append(str(exc))
            warnings.warn(f"{exc}; trying an older checkpoint", stacklevel=2)
    if errors:
        raise CorruptFileError(f"{store.uri}: no valid checkpoint ({'; '.join(errors)})")
    return None


def write_checkpoint(store: Store, epoch: int, state: dict, keep: int) -> str:
    """Write ``state`` as epoch ``epoch``'s checkpoint, then the pointer; keep the last ``keep``."""
    key = checkpoint_key(epoch)
    store.put_bytes(key, torch_to_bytes({"format": FORMAT, "epoch": epoch, **state}))
    pointer = {"key": key, "epoch": epoch, "format": FORMAT, "time": time.time()}
    store.put_bytes(LATEST_KEY, (json.dumps(pointer, indent=2) + "\n").encode())
    for old in checkpoint_keys(store):
        n = _epoch_of(old)
        if n > epoch or n <= epoch - keep:  # older than the kept ones, or left by an abandoned run
            store.delete(old)
    return key


def check_resumable(saved: dict, current: dict, key: str) -> None:
    """Refuse to resume a checkpoint whose settings ``saved`` differ from the run's ``current``
    (only the fields of ``current``: those that change what the run computes)."""
    for name, value in current.items():
        old = saved.get(name)
        if old != value:
            raise ValueError(
                f"{key}: checkpoint was written with {name}={old!r}, this run has {name}={value!r}"
            )


def check_shapes(saved: dict[str, torch.Tensor], own: dict[str, torch.Tensor], key: str) -> None:
    """Refuse a checkpoint's model state whose tensor names or shapes differ from the network's."""
    saved_shapes = {k: tuple(v.shape) for k, v in saved.items()}
    own_shapes = {k: tuple(v.shape) for k, v in own.items()}
    if saved_shapes != own_shapes:
        missing = sorted(set(own_shapes) - set(saved_shapes))[:3]
        extra = sorted(set(saved_shapes) - set(own_shapes))[:3]
        raise ValueError(
            f"{key}: checkpoint tensors do not match the network (missing {missing}, "
            f"unexpected {extra}, or other shapes)"
        )


def hardware(net: torch.nn.Module) -> dict:
    """What decides the floating-point results of an epoch besides the state: the CPU thread
    count (torch splits reductions by it) and the device type."""
    param = next(net.parameters(), None)
    device = param.device.type if param is not None else "cpu"
    return {"threads": torch.get_num_threads(), "device": device}


def resume_difference(saved: dict | None, now: dict) -> str | None:
    """What differs between the hardware a checkpoint was written on and this one, or None.

    A resume guarantees the same weights, optimiser and schedule state, data order and
    augmentation. It is bit-exact only on the same device type with the same thread count:
    between 1 and 2 CPU threads 141 of 183 NB201 supernet tensors differed after one more
    epoch (reductions are split by thread), so the run goes on, but not bit for bit."""
    if not saved:
        return None  # written before the hardware was recorded
    diffs = [f"{k} {saved.get(k)} -> {now[k]}" for k in now if saved.get(k) != now[k]]
    return ", ".join(diffs) or None


def training_state(net: torch.nn.Module, optimizer, scheduler) -> dict:
    """What every loop checkpoints: the model (a CPU copy), the optimiser, the schedule and
    the hardware it ran on (:func:`hardware`)."""
    return {
        "model": {k: v.detach().cpu() for k, v in net.state_dict().items()},
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "hardware": hardware(net),
    }


def restore_training_state(state: dict, net: torch.nn.Module, optimizer, scheduler) -> None:
    """Load a checkpoint's :func:`training_state` back (after :func:`check_shapes`); warn
    when this hardware differs from the checkpoint's (:func:`resume_difference`)."""
    net.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    diff = resume_difference(state.get("hardware"), hardware(net))
    if diff:
        warnings.warn(
            f"resumed on other hardware ({diff}): training continues from the same state, "
            "but not bit-exact with an uninterrupted run",
            stacklevel=2,
        )


def continuation_state(net: torch.nn.Module, optimizer: torch.optim.Optimizer) -> dict:
    """What a child continues from: the learning rate the optimiser ended at and every
    parameter's SGD momentum buffer, by parameter name (CPU copies)."""
    momentum = {}
    for name, param in net.named_parameters():
        buf = optimizer.state.get(param, {}).get("momentum_buffer")
        if buf is not None:
            momentum[name] = buf.detach().cpu().clone()
    return {"lr": float(optimizer.param_groups[0]["lr"]), "momentum": momentum}


def load_momentum(net: torch.nn.Module, optimizer: torch.optim.Optimizer, state: dict) -> int:
    """Seed ``optimizer``'s momentum buffers from a :func:`continuation_state` of a network
    that held these parameters (a parent: the child holds a subset, under the same names).
    Returns how many buffers were set; a shape that differs is an error naming it."""
    momentum = state.get("momentum") or {}
    done = 0
    for name, param in net.named_parameters():
        if name not in momentum:
            continue
        buf = momentum[name]
        if tuple(buf.shape) != tuple(param.shape):
            raise ValueError(
                f"momentum: parameter {name} has shape {tuple(param.shape)}, the parent's "
                f"buffer {tuple(buf.shape)}"
            )
        optimizer.state[param]["momentum_buffer"] = buf.to(param.device, param.dtype).clone()
        done += 1
    return done
