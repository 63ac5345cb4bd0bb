"""BatchNorm during measurement: batch statistics, with every running buffer left untouched.

A one-shot supernet's BatchNorm running statistics are an average over all the paths that
training sampled; any single path or sub-supernet sees different activation statistics, so
normalising with the running ones measures the wrong network (NAS-LID issue 11: single
paths scored 38 % / 24 % on digits through them against 71 % / 68 % with batch statistics).
Both split criteria therefore measure with the statistics of the batch itself -- as the two
reference codes do, NAS-LID's LID profiling and GM-NAS's gradients (``model.train()``) -- but,
unlike them, give the running buffers back bit-identical, so that measuring a supernet never
changes it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn


def batch_norm_layers(module: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    """Every BatchNorm layer of ``module``."""
    return [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


@contextlib.contextmanager
def batch_statistics(module: nn.Module, train: bool = False) -> Iterator[None]:
    """Run ``module`` with BatchNorm normalising by the current batch's statistics.

    Every other submodule is in eval mode (``train=False``; e.g. no dropout), or in train mode
    with ``train=True`` (GM-NAS takes its gradients in the training regime). On exit every
    buffer (running mean/var, ``num_batches_tracked``) is restored bit for bit and every
    submodule's own training flag is put back.
    """
    flags = [(m, m.training) for m in module.modules()]
    buffers = [(b, b.detach().clone()) for b in module.buffers()]
    module.train(train)
    for bn in batch_norm_layers(module):
        bn.train(True)
    try:
        yield
    finally:
        for m, flag in flags:
            m.training = flag
        with torch.no_grad():
            for b, saved in buffers:
                b.copy_(saved)
