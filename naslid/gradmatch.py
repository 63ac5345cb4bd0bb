"""GM-NAS's gradient-matching split criterion (Hu et al., ICLR 2022), the baseline of NAS-LID.

GM-NAS decides which operations of an edge may keep sharing weights by how well their
gradients agree: fix the edge to each candidate operation in turn, run forward and backward
on the same batch, and compare -- by cosine similarity -- the gradients those operations
induce on the parameters they all share (the other edges' operations, the reduction blocks,
the stem and the head). Operations that pull the shared weights the same way can share
them. The result is an ``m x m`` similarity matrix per edge, the same interface as NAS-LID's
LID similarity, ready for :func:`naslid.split.min_cut`.

Unlike LID profiling (forward only, no stored activations), this needs the backward pass
and so the activations of a whole forward: the memory and time that NAS-LID saves.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from naslid.lid import fix_edge, profiling_target
from naslid.spaces.base import Mask


@dataclass
class GradMatchConfig:
    """Settings of the gradient criterion."""

    num_batches: int = 1
    """Batches whose cosine-similarity matrices are averaged."""
    batch_size: int = 256
    """Samples per batch (GM-NAS computes the gradients on training batches)."""
    mode: str = "mask"
    """``mask``: other edges output the sum of their enabled operations (as for LID);
    ``single_path``: one uniformly sampled path inside the mask, shared by an edge's options."""
    eps: float = 1e-12
    """Floor of a gradient's norm: a zero gradient is similar to nothing (cosine 0)."""


@contextlib.contextmanager
def preserved_state(module: nn.Module, train: bool = True) -> Iterator[None]:
    """Run ``module`` in train mode (batch statistics, as in supernet training and GM-NAS)
    and give every buffer (BatchNorm running statistics) and training flag back afterwards."""
    flags = [(m, m.training) for m in module.modules()]
    buffers = [(b, b.detach().clone()) for b in module.buffers()]
    module.train(train)
    try:
        yield
    finally:
        for m, flag in flags:
            m.training = flag
        with torch.no_grad():
            for b, saved in buffers:
                b.copy_(saved)


def cosine_matrix(vectors: Tensor, eps: float = 1e-12) -> np.ndarray:
    """Pairwise cosine similarity of the rows of ``vectors [m, P]``; diagonal exactly 1."""
    v = vectors.double()
    unit = v / v.norm(dim=1, keepdim=True).clamp_min(eps)
    sim = (unit @ unit.T).clamp_(-1.0, 1.0).cpu().numpy()
    np.fill_diagonal(sim, 1.0)
    return sim


def flat_gradient(loss: Tensor, params: Sequence[nn.Parameter]) -> Tensor:
    """The gradient of ``loss`` w.r.t. ``params`` as one vector (unused parameters: 0)."""
    grads = torch.autograd.grad(loss, params, allow_unused=True)
    return torch.cat(
        [(g if g is not None else torch.zeros_like(p)).reshape(-1) for g, p in zip(grads, params)]
    )


def gradient_similarity(
    supernet: nn.Module,
    batches: Iterable[Sequence[Tensor]],
    mask: Mask | None = None,
    *,
    edges: Sequence[int] | None = None,
    config: GradMatchConfig | None = None,
    seed: int = 0,
    progress: Callable[[int], None] | None = None,
) -> dict[int, np.ndarray]:
    """GM-NAS similarity of the allowed operations of every unsplit edge.

    For each edge (default: the unsplit edges of ``mask``) and each operation it allows,
    the sub-supernet with the edge fixed to the operation is run forward and backward on
    the same ``(x, y)`` batch (cross-entropy); the gradient of
    ``supernet.shared_parameters(edge)`` is compared between operations by cosine
    similarity, and the matrices are averaged over ``config.num_batches`` batches. The
    network runs in train mode (batch statistics, as GM-NAS does) but every buffer is
    restored afterwards. Returns ``{edge: array [m, m]}``, rows in the order of
    ``mask[edge]``: symmetric, diagonal 1, entries in [-1, 1].
    """
    cfg = config or GradMatchConfig()
    mask, edges = profiling_target(supernet, mask, edges, cfg.mode)
    space = supernet.space
    rng = np.random.default_rng(seed)
    device = next(supernet.parameters()).device
    shared = {e: [p for p in supernet.shared_parameters(e) if p.requires_grad] for e in edges}
    sums = {e: np.zeros((len(mask[e]), len(mask[e]))) for e in edges}
    used = 0
    with preserved_state(supernet, train=True), torch.enable_grad():
        for batch in batches:
            if used == cfg.num_batches:
                break
            if isinstance(batch, Tensor) or len(batch) < 2:
                raise ValueError("batches: the gradient criterion needs labelled (x, y) batches")
            x, y = batch[0].to(device, non_blocking=True), batch[1].to(device, non_blocking=True)
            for e in edges:
                path = None if cfg.mode == "mask" else list(space.sample(rng, 1, mask)[0].ops)
                grads = []
                for op in mask[e]:
                    if path is None:
                        choice = fix_edge(mask, e, op)
                    else:
                        path[e] = op
                        choice = space.make(path)
                    loss = F.cross_entropy(supernet(x, choice), y)
                    grads.append(flat_gradient(loss, shared[e]))
                    del loss
                    if progress is not None:
                        progress(1)
                sums[e] += cosine_matrix(torch.stack(grads), cfg.eps)
                del grads
            used += 1
    if used == 0:
        raise ValueError("batches: no batch to compute gradients on")
    return {e: sums[e] / used for e in edges}
