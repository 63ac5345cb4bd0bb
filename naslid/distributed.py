"""Where training runs: the device (:func:`resolve_device`), and several GPUs of one pod:
``torchrun`` starts one process per GPU and says which one it is (``WORLD_SIZE`` / ``RANK`` /
``LOCAL_RANK``); the transfer trains with DDP over them."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import torch


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``auto``: CUDA when a GPU is visible, else the CPU; ``cuda`` without a GPU is an error."""
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device: cuda requested but no GPU is visible (use --device auto or cpu)")
    return dev


@dataclass
class DistEnv:
    """This process's place among the training processes, and its device."""

    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def init_distributed(device: str | None = None) -> DistEnv:
    """Read torchrun's ``WORLD_SIZE`` / ``RANK`` / ``LOCAL_RANK``; start the process group if > 1."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank, local = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    dev = resolve_device(device or "auto")
    if dev.type == "cuda" and dev.index is None:  # each process its own GPU
        dev = torch.device("cuda", local)
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    if world > 1 and not torch.distributed.is_initialized():
        torch.distributed.init_process_group("nccl" if dev.type == "cuda" else "gloo")
    return DistEnv(rank, local, world, dev)
