"""BatchNorm during measurement: batch statistics, with every running buffer left untouched.

A one-shot supernet's BatchNorm running statistics are an average over all the paths that
training sampled; any single path or sub-supernet sees different activation statistics, so
normalising with the running ones measures the wrong network (NAS-LID issue 11: single
paths scored 38 % / 24 % on digits through them against 71 % / 68 % with batch statistics).
Both split criteria therefore measure with the statistics of the batch itself -- as the two
reference codes do, NAS-LID's LID profiling and GM-NAS's gradients (``model.train()``) -- but,
unlike them, never update the running buffers, so that measuring a supernet never changes it.
Evaluation (:func:`naslid.train.evaluate` with ``bn="batch"``) uses the same context.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from torch import nn


def batch_norm_layers(module: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    """Every BatchNorm layer of ``module``."""
    return [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


@contextlib.contextmanager
def batch_statistics(module: nn.Module, train: bool = False) -> Iterator[None]:
    """Run ``module`` with BatchNorm normalising by the current batch's statistics and never
    touching its running statistics (``track_running_stats`` off, NAS-Bench-201's one-shot
    convention).

    Every other submodule is in eval mode (``train=False``; e.g. no dropout), or in train mode
    with ``train=True`` (GM-NAS takes its gradients in the training regime). On exit every
    submodule's training flag and every BatchNorm's ``track_running_stats`` are put back.
    """
    flags = [(m, m.training) for m in module.modules()]
    norms = batch_norm_layers(module)
    tracking = [m.track_running_stats for m in norms]
    module.train(train)
    try:
        for m in norms:
            m.train(True)
            m.track_running_stats = False
        yield
    finally:
        for m, flag in flags:
            m.training = flag
        for m, track in zip(norms, tracking):
            m.track_running_stats = track


@contextlib.contextmanager
def kept_statistics(module: nn.Module) -> Iterator[None]:
    """Whatever happens to the BatchNorm running statistics inside the block (a
    recalibration for one path, :func:`naslid.scoring.recalibrate_bn`), they are as before
    on exit."""
    saved = [
        {k: b.clone() for k, b in m.named_buffers(recurse=False)} for m in batch_norm_layers(module)
    ]
    try:
        yield
    finally:
        for m, buffers in zip(batch_norm_layers(module), saved):
            for k, b in buffers.items():
                getattr(m, k).copy_(b)
