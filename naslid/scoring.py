"""Scoring architectures with inherited weights (NAS-LID, section 4, derived architectures).

An architecture's proxy score is the validation accuracy of its path in the sub-supernet
whose mask holds it. Before measuring, the BatchNorm statistics are recalibrated for that
path on a few training batches (on by default; the NAS-LID reference code had none, and with
weight sharing the running statistics belong to no single path, which blurs the ranking).

Many architectures are scored efficiently: they are grouped by owning sub-supernet, each
sub-supernet is loaded once, and the calibration and validation batches are built once, on
the device, and reused for every path.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from naslid.batchnorm import batch_norm_layers, kept_statistics
from naslid.data import BatchIterator, ImageData, stratified_sample
from naslid.distributed import resolve_device
from naslid.divergence import DivergedError, check_finite
from naslid.saved_model import load_model
from naslid.spaces.base import Arch, Mask, SlotSpace


@dataclass(frozen=True)
class ScoringConfig:
    recalibrate_bn: bool = True
    """Reset and re-estimate BN statistics per path (not in the reference code; see module doc)."""
    bn_batches: int = 8
    """Training batches used for the recalibration, drawn at random and class-stratified
    (SPOS re-estimates on ~20k images; 8x256 is enough on NB201 to reach stable statistics,
    see tests)."""
    bn_batch_size: int = 256
    val_batch_size: int = 1000
    val_limit: int | None = None
    """Validate on a seeded, class-stratified random ``val_limit`` of the validation images
    (:func:`naslid.data.stratified_sample`; ``None``: all)."""
    seed: int = 0
    """Which training batches calibrate: the same for every architecture, so scores compare."""


def _bn_layers(net: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    return [m for m in batch_norm_layers(net) if m.track_running_stats]


@torch.no_grad()
def recalibrate_bn(
    net: nn.Module, batches: Sequence[torch.Tensor], choice: Arch | Mask | None
) -> None:
    """Replace every BN layer's running statistics by their exact mean over ``batches``.

    With ``momentum=None`` PyTorch keeps a cumulative average, so after the loop the running
    mean/var are the average of the per-batch statistics of the path ``choice``.
    """
    layers = _bn_layers(net)
    saved = [m.momentum for m in layers]
    for m in layers:
        m.reset_running_stats()
        m.momentum = None
    was_training = net.training
    net.train()
    try:
        for x in batches:
            net(x, choice)
    finally:
        for m, momentum in zip(layers, saved):
            m.momentum = momentum
        net.train(was_training)


@torch.no_grad()
def path_accuracy(
    net: nn.Module, val: Sequence[tuple[torch.Tensor, torch.Tensor]], choice: Arch | Mask
) -> float:
    """Top-1 accuracy in percent of ``net(x, choice)`` over pre-built validation batches."""
    net.eval()
    correct, seen = 0, 0
    amp = val[0][0].device.type == "cuda"
    for i, (x, y) in enumerate(val):
        with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=amp):
            logits = net(x, choice)
        if not bool(torch.isfinite(logits).all()):  # argmax of NaN is an arbitrary class
            raise DivergedError(
                f"arch {choice}: non-finite outputs (NaN/inf) on validation batch {i + 1}; "
                "the weights or the inputs are broken, not scored"
            )
        correct += int((logits.argmax(1) == y).sum())
        seen += len(y)
    return 100.0 * correct / max(1, seen)


class ProxyEvaluator:
    """``evaluator(archs) -> scores``: inherited-weight accuracy in the owning sub-supernet.

    ``leaves`` are ``(mask, model_dir)`` pairs (the leaves of the partition tree; one pair with
    the full mask for plain one-shot NAS), ``model_dir`` as written by :func:`naslid.saved_model.save_model`.
    The masks must be disjoint; an arch no mask holds is an error naming it. ``space`` places an
    arch in its leaf (:meth:`SlotSpace.owner`); without it, the slot-space rule (an arch lies in
    a mask that allows each of its options).
    """

    def __init__(
        self,
        leaves: Sequence[tuple[Mask, str | Path]],
        train: ImageData,
        val: ImageData,
        config: ScoringConfig = ScoringConfig(),
        device: str | torch.device = "auto",
        loader: Callable[[Path], nn.Module] | None = None,
        space: SlotSpace | None = None,
    ):
        if not leaves:
            raise ValueError("leaves: no sub-supernet to score with")
        self.leaves = [(mask, Path(d)) for mask, d in leaves]
        self.space = SlotSpace("leaves", (), Arch) if space is None else space
        self._masks = {str(i): mask for i, (mask, _) in enumerate(self.leaves)}
        self.config, self.device = config, resolve_device(device)
        self._loader = loader or (lambda d: load_model(d, device=self.device)[0])
        self._nets: dict[int, nn.Module] = {}
        # Both subsets are seeded, class-stratified random draws (never "the first N": the
        # CIFAR splits built here are sorted by class), the same for every architecture.
        calib = train.subset(
            stratified_sample(
                train.labels.numpy(), config.bn_batches * config.bn_batch_size, config.seed
            )
        )
        self.calibration = [
            x for x, _ in BatchIterator(calib, config.bn_batch_size, device=self.device)
        ][: config.bn_batches]
        if config.val_limit is not None:
            val = val.subset(
                np.sort(stratified_sample(val.labels.numpy(), config.val_limit, config.seed))
            )
        self.validation = list(BatchIterator(val, config.val_batch_size, device=self.device))

    def owner(self, arch: Arch) -> int:
        """The index of the leaf that holds ``arch``."""
        key = self.space.owner(self._masks, arch)
        if key is None:
            raise ValueError(f"arch {arch}: no sub-supernet holds it")
        return int(key)

    def net(self, leaf: int) -> nn.Module:
        if leaf not in self._nets:
            net = self._loader(self.leaves[leaf][1]).to(self.device)
            check_finite(net.state_dict(), f"sub-supernet {self.leaves[leaf][1]}: refused")
            self._nets[leaf] = net
        return self._nets[leaf]

    def score(self, arch: Arch) -> float:
        net = self.net(self.owner(arch))
        if not self.config.recalibrate_bn:
            return path_accuracy(net, self.validation, arch)
        with kept_statistics(net):  # leave the sub-supernet as it was
            recalibrate_bn(net, self.calibration, arch)
            stats = {k: v for k, v in net.state_dict().items() if "running_" in k}
            check_finite(stats, f"arch {arch}: BN recalibration gave non-finite statistics")
            return path_accuracy(net, self.validation, arch)

    def __call__(self, archs: Sequence[Arch]) -> np.ndarray:
        owners = [self.owner(a) for a in archs]  # fail before any work on an arch no leaf holds
        scores = np.empty(len(archs), dtype=np.float64)
        for leaf in sorted(set(owners)):  # one sub-supernet at a time
            for i in (i for i, o in enumerate(owners) if o == leaf):
                scores[i] = self.score(archs[i])
        return scores
