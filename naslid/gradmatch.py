"""GM-NAS's gradient-matching split criterion (Hu et al., ICLR 2022), the baseline of NAS-LID.

GM-NAS decides which operations of an edge may keep sharing weights by how well their
gradients agree. Per edge that was never split, and for each of ``repeats`` fresh training
batches (GM-NAS: 100): sample one path of the sub-supernet uniformly (its RSPS supernet
trains one path at a time), fix the edge to each candidate operation in turn, run forward
and backward, and take the gradient of the *cell* weights -- every searchable layer's
parameters except the split edge's own operations, plus the reduction blocks; not the stem,
head or classifier -- as one vector. Operations are compared by the cosine of those vectors
(GM-NAS's default ``dis_metric='cos'``, distance ``1 - cos``), averaged over the repeats. The
edge's operations are then cut 2|3, minimising the within-group distance (the balanced cut
of :func:`naslid.cut.min_cut` on the cosine similarity), and the node splits on the edge
whose cut leaves the largest cross-group distance (:func:`naslid.criteria.gradient_edge_score`).
All of this follows the public GM-NAS code (``WS-GM/nasbench201/train_search.py``:
``split_supernet``, ``get_split_gradients``, ``mincut_split_201``, ``match_loss``), which
our copy of the NAS-LID paper describes only in outline.

The result is an ``m x m`` similarity matrix per edge, the same interface as NAS-LID's LID
similarity. Unlike LID profiling (forward only, no stored activations) this needs the
backward pass and so the activations of a whole forward: the memory and time that NAS-LID
saves (``bench/split_cost.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from naslid.batchnorm import batch_statistics
from naslid.lid import MODES, fix_edge, profiling_target
from naslid.spaces.base import Mask


@dataclass
class GradMatchConfig:
    """Settings of the gradient criterion (GM-NAS's public code, nasbench201/train_search.py)."""

    num_batches: int = 100
    """Repeats whose cosine matrices are averaged, one fresh batch and one sampled path each
    (GM-NAS: ``repeat = 100``, 10 with ``--fast``)."""
    batch_size: int = 64
    """Samples per batch (GM-NAS ``--batch_size 64``, its training batch)."""
    mode: str = "single_path"
    """``single_path``: one uniformly sampled path inside the mask per repeat, shared by the
    edge's options (GM-NAS); ``mask``: other edges output the sum of their enabled operations
    (as NAS-LID's Eq. 4), an ablation."""
    eps: float = 1e-12
    """Floor of a gradient's norm: a zero gradient is similar to nothing (cosine 0)."""

    def __post_init__(self) -> None:
        for name in ("num_batches", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(
                    f"gradmatch config: {name} must be >= 1, got {getattr(self, name)}"
                )
        if self.mode not in MODES:
            raise ValueError(
                f"gradmatch config: mode expected one of {', '.join(MODES)}, got {self.mode!r}"
            )


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
    root: Mask | None = None,
    config: GradMatchConfig | None = None,
    seed: int = 0,
    progress: Callable[[int], None] | None = None,
) -> dict[int, np.ndarray]:
    """GM-NAS similarity of the allowed operations of every never-partitioned edge.

    For each edge (default: the edges of ``mask`` never partitioned since ``root``) and each
    of the first ``config.num_batches`` ``(x, y)`` batches: one path sampled inside ``mask``
    (``single_path``; ``mask`` mode uses the summed sub-supernet instead), the edge fixed to
    each of its operations in turn, forward and backward (cross-entropy), and the gradient of
    ``supernet.cell_parameters(edge)`` -- the searchable layers without the edge's own
    operations, plus the reduction blocks -- compared between operations by cosine
    similarity; the matrices are averaged over the batches. BatchNorm uses batch
    statistics (GM-NAS runs ``model.train()``), and every buffer is restored afterwards.
    Returns ``{edge: array [m, m]}``, rows in the order of ``mask[edge]``: symmetric,
    diagonal 1, entries in [-1, 1].
    """
    cfg = config or GradMatchConfig()
    mask, edges = profiling_target(supernet, mask, edges, cfg.mode, root)
    space = supernet.space
    rng = np.random.default_rng(seed)
    device = next(supernet.parameters()).device
    params = {e: [p for p in supernet.cell_parameters(e) if p.requires_grad] for e in edges}
    sums = {e: np.zeros((len(mask[e]), len(mask[e]))) for e in edges}
    used = 0
    with batch_statistics(supernet, train=True), torch.enable_grad():
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
                    if not bool(torch.isfinite(loss)):
                        raise ValueError(
                            f"loss: non-finite on edge {e}, op {op} (diverged weights?); "
                            "refusing to compare gradients"
                        )
                    grads.append(flat_gradient(loss, params[e]))
                    del loss
                    if progress is not None:
                        progress(1)
                sums[e] += cosine_matrix(torch.stack(grads), cfg.eps)
                del grads
            used += 1
    if used < cfg.num_batches:
        raise ValueError(
            f"batches: {used} given, num_batches={cfg.num_batches} asked (draw them with sample_batches)"
        )
    return {e: sums[e] / used for e in edges}
