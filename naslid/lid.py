"""Local Intrinsic Dimension (LID): the MLE estimator and NAS-LID's layer-wise profiling.

NAS-LID (He et al., AAAI 2023) characterises a candidate operation of an edge by how the
LID of every layer's output evolves through the network (section 3): fix the edge to the
operation, run a batch forward, estimate the LID of each cell's and reduction block's
flattened output, and average. Operations whose LID vectors are close behave alike and may
share weights; the balanced cut of :mod:`naslid.cut` groups them.

Estimator (paper Eq. 2, Levina & Bickel 2004 / Amsaleg et al. 2015), for a sample x with
Euclidean distances r_1 <= ... <= r_k to its k nearest other samples of the batch::

    LID(x) = -( (1/k) * sum_i log(r_i / r_k) )^-1  =  k / sum_i log(r_k / r_i)

Implementation choices of :func:`mle_lid` (all documented in its docstring): the sample
itself is excluded by index; duplicates (zero distance) are skipped; distances come from a
chunked Gram expansion so that memory stays bounded for large batches.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from naslid.batchnorm import batch_statistics
from naslid.spaces.base import Mask

MODES = ("mask", "single_path")


@dataclass
class LIDConfig:
    """Profiling settings (paper defaults where the paper states them)."""

    k: int = 20
    """Neighbours of the MLE estimator (paper section 4.1: k = 20)."""
    batch_size: int = 512
    """Samples per profiling batch (not stated in our copy of the paper); must exceed k."""
    num_batches: int = 2
    """Random all-class batches whose per-layer LIDs are averaged (the public reference code
    averages over many). Measured on the smoke supernet under the paper's edge rule
    (``bench/split_stability.py``, 10 independent draws per count, two supernet seeds): the
    root decision agreed in 55 % of the draws with 1 or 2 batches and 45-60 % with 4, 8 or
    16; the chosen edge led the runner-up by a median 1-3 %, less as batches grow (the
    root's edges hold the same operations, and their Eq. 6 scores converge), so more
    batches do not settle the choice. 2 is kept: no larger count agrees more often, and each
    batch costs a forward pass of the summed sub-supernet. (Under the former
    ``separability`` rule, 2 was the smallest count reaching 90 %.)"""
    mode: str = "mask"
    """``mask``: the other edges output the sum of their enabled operations (paper Eq. 4, the
    sub-supernet's own LID); ``single_path``: they follow one uniformly sampled path per batch
    (the public reference code)."""
    chunk_size: int | None = None
    """Query rows per distance block; ``None``: as many as keep a block under 2**24 entries."""

    def __post_init__(self) -> None:
        if self.k < 1:
            raise ValueError(f"lid config: k must be >= 1, got {self.k}")
        if self.batch_size <= self.k:
            raise ValueError(
                f"lid config: batch_size {self.batch_size} must exceed k={self.k} "
                "(the MLE needs k neighbours besides the sample itself)"
            )
        if self.num_batches < 1:
            raise ValueError(f"lid config: num_batches must be >= 1, got {self.num_batches}")
        if self.mode not in MODES:
            raise ValueError(
                f"lid config: mode expected one of {', '.join(MODES)}, got {self.mode!r}"
            )
        if self.chunk_size is not None and self.chunk_size < 1:
            raise ValueError(f"lid config: chunk_size must be >= 1, got {self.chunk_size}")


# --------------------------------------------------------------------------- estimator
_BLOCK_ENTRIES = 1 << 24  # 64 MiB of float32 per distance block when chunk_size is None


@contextlib.contextmanager
def _full_precision_matmul(device: torch.device) -> Iterator[None]:
    """TF32 would make the Gram expansion ~1e-3 inaccurate: keep it off for this block."""
    if device.type != "cuda":
        yield
        return
    old = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32 = old


def knn_distances(
    features: Tensor, k: int = 20, chunk_size: int | None = None, zero_tol: float | None = None
) -> tuple[Tensor, Tensor]:
    """Distances and indices of each row's ``k`` nearest *other* rows at positive distance.

    Returns ``(dist[n, k], index[n, k])`` sorted by distance. The row itself is excluded by
    its index (never by assuming it sorts first). Rows at zero distance -- duplicates, up to
    rounding: ``r^2 <= zero_tol * (|a|^2 + |b|^2)`` after centering the batch -- are skipped as
    well. Where fewer than ``k`` such rows exist, the missing entries are ``inf`` / ``-1``.

    Squared distances come from ``|a|^2 + |b|^2 - 2 a.b`` (clamped >= 0) on the batch-centred
    features (centering removes most of the cancellation), computed block by block over
    ``chunk_size`` query rows, each block reduced by ``topk`` before the next: memory is
    ``O(chunk_size * n)`` besides one copy of the features. float64 input stays float64;
    anything else is computed in float32. ``zero_tol`` defaults to ``32 * eps(dtype)`` (the
    expansion's measured error on exact duplicates is about 4 eps, for d up to 16,384).
    """
    if features.dim() != 2:
        raise ValueError(
            f"features: expected a 2-d tensor [n, d], got shape {tuple(features.shape)}"
        )
    n = features.shape[0]
    if k < 1:
        raise ValueError(f"k: must be >= 1, got {k}")
    if n < k + 1:
        raise ValueError(f"features: k={k} needs at least {k + 1} samples, got {n}")
    dtype = torch.float64 if features.dtype == torch.float64 else torch.float32
    tol = 32 * torch.finfo(dtype).eps if zero_tol is None else float(zero_tol)
    x = features.to(dtype)
    x = x - x.mean(dim=0, keepdim=True)  # a new tensor: the caller's features are untouched
    sq = (x * x).sum(dim=1)
    rows = chunk_size or max(1, _BLOCK_ENTRIES // n)
    if rows < 1:
        raise ValueError(f"chunk_size: must be >= 1, got {chunk_size}")
    dists, idxs = [], []
    cols = torch.arange(n, device=x.device)
    inf = torch.tensor(float("inf"), dtype=dtype, device=x.device)
    with _full_precision_matmul(x.device):
        for start in range(0, n, rows):
            stop = min(n, start + rows)
            q, q_sq = x[start:stop], sq[start:stop, None]
            d2 = torch.addmm(q_sq + sq[None, :], q, x.T, alpha=-2.0).clamp_min_(0.0)
            dup = d2 <= tol * (q_sq + sq[None, :])
            dup |= cols[None, :] == torch.arange(start, stop, device=x.device)[:, None]  # self
            d2 = torch.where(dup, inf, d2)
            val, idx = torch.topk(d2, k, dim=1, largest=False, sorted=True)
            idx = torch.where(torch.isinf(val), torch.full_like(idx, -1), idx)
            dists.append(val.sqrt_())
            idxs.append(idx)
            del d2, dup
    return torch.cat(dists), torch.cat(idxs)


def lid_from_distances(dist: Tensor, ambient_dim: int) -> Tensor:
    """MLE LID (paper Eq. 2) per row of sorted neighbour distances (``inf`` = missing).

    With k' finite distances r_1 <= ... <= r_k', LID = k' / sum_i log(r_k' / r_i). Degenerate
    rows get finite values: fewer than two neighbours at positive distance (the batch is
    copies of the sample) -> 0, the dimension of a point; all neighbours equidistant (the
    sum is 0 and the estimate unbounded) -> ``ambient_dim``, the most a set in R^d can have.
    Log-ratios within rounding of 0 (<= 64 eps of the dtype) count as 0, so that neighbours
    equidistant up to rounding do not turn into an estimate of 1e7.
    """
    finite = torch.isfinite(dist)
    count = finite.sum(dim=1)
    safe = torch.where(finite, dist, torch.ones_like(dist))
    r_max = torch.where(finite, safe, torch.zeros_like(safe)).amax(dim=1, keepdim=True)
    logs = torch.where(finite, torch.log(r_max.clamp_min(torch.finfo(dist.dtype).tiny) / safe), 0.0)
    logs = torch.where(logs > 64 * torch.finfo(dist.dtype).eps, logs, 0.0)  # equal up to rounding
    total = logs.sum(dim=1)
    lid = count.to(dist.dtype) / torch.where(total > 0, total, torch.ones_like(total))
    lid = torch.where(total > 0, lid, torch.full_like(lid, float(ambient_dim)))
    return torch.where(count >= 2, lid, torch.zeros_like(lid))


def mle_lid(features: Tensor, k: int = 20, chunk_size: int | None = None) -> Tensor:
    """Per-sample maximum-likelihood LID of the rows of ``features [n, d]`` (paper Eq. 2).

    Euclidean distances to the ``k`` nearest other samples. The sample itself is excluded
    by index. Zero distances: samples identical to the query (up to float rounding, see
    :func:`knn_distances`) carry no scale information and are skipped -- the k nearest
    samples at positive distance are used, or all of them when fewer exist; a sample with
    fewer than two gets LID 0 and one whose neighbours are all equidistant gets ``d`` (see
    :func:`lid_from_distances`), so the result is always finite. Memory stays bounded by
    computing the distances ``chunk_size`` query rows at a time. Returns float32 for float32
    or half input, float64 for float64 input.
    """
    dist, _ = knn_distances(features, k, chunk_size)
    return lid_from_distances(dist, features.shape[1])


def batch_lid(feature: Tensor, k: int = 20, chunk_size: int | None = None) -> Tensor:
    """The LID of one layer's output: every sample flattened, the estimate averaged (0-d).

    Refuses non-finite features: the LID of NaNs would come out 0 and every similarity
    huge, and the split would run on garbage (a diverged supernet must stop here)."""
    if not bool(torch.isfinite(feature).all()):
        raise ValueError(
            "features: a layer's output holds non-finite values (diverged weights?); "
            "refusing to estimate its LID"
        )
    return mle_lid(feature.reshape(feature.shape[0], -1), k, chunk_size).mean()


# --------------------------------------------------------------------------- profiling
def batch_inputs(batch: Tensor | Sequence[Tensor]) -> Tensor:
    """The input tensor of a batch given either as ``x`` or as ``(x, y, ...)``."""
    return batch if isinstance(batch, Tensor) else batch[0]


def unsplit_edges(mask: Mask, root: Mask) -> list[int]:
    """The slots of ``mask`` that were never partitioned: split candidates (section 3.3).

    NAS-LID: "Next time, we will only split the unpartitioned layers (i.e., [the binary
    vector] is an all-one vector)", and both reference codes skip an edge whose mask is not
    all ones. So a slot is a candidate only while its allowed set still equals the root's
    (``root``: the mask the partition started from, usually the space's full mask) and has at
    least two options; a slot restricted by an earlier split is final, whatever it holds.
    """
    if len(root) != len(mask):
        raise ValueError(f"root: {len(root)} slots, the mask has {len(mask)}")
    return [e for e, allowed in enumerate(mask) if len(allowed) > 1 and allowed == root[e]]


def profiling_target(
    supernet: nn.Module,
    mask: Mask | None,
    edges: Sequence[int] | None,
    mode: str,
    root: Mask | None = None,
) -> tuple[Mask, list[int]]:
    """The (checked) mask to profile and its edges to measure: by default every edge of
    ``mask`` never partitioned since ``root`` (default: the space's full mask).

    Shared by every split criterion, so they refuse the same bad input with the same message.
    """
    if mode not in MODES:
        raise ValueError(f"mode: expected one of {', '.join(MODES)}, got {mode!r}")
    space = supernet.space
    mask = space.check_mask(
        mask if mask is not None else getattr(supernet, "mask", space.full_mask())
    )
    root = space.full_mask() if root is None else space.check_mask(root)
    candidates = unsplit_edges(mask, root)
    edges = candidates if edges is None else [int(e) for e in edges]
    for e in edges:
        if e not in candidates:
            raise ValueError(
                f"edges: slot {e} is not a split candidate of the mask "
                "(single option, or already partitioned by an earlier split)"
            )
    return mask, edges


def fix_edge(mask: Mask, edge: int, op: int) -> Mask:
    """``mask`` with ``edge`` restricted to the single option ``op``."""
    return tuple((op,) if e == edge else allowed for e, allowed in enumerate(mask))


def profile(
    supernet: nn.Module,
    batches: Iterable[Tensor | Sequence[Tensor]],
    mask: Mask | None = None,
    *,
    edges: Sequence[int] | None = None,
    root: Mask | None = None,
    config: LIDConfig | None = None,
    seed: int = 0,
    progress: Callable[[int], None] | None = None,
) -> dict[int, np.ndarray]:
    """Layer-wise LID vectors of every allowed operation of every split candidate (section 3.2).

    For each edge of ``edges`` (default: the edges of ``mask`` -- default the supernet's own
    mask -- never partitioned since ``root``, default the space's full mask:
    :func:`unsplit_edges`) and each operation it
    allows: the sub-supernet with the edge fixed to the operation (``mask`` mode: the other
    edges output the sum of their enabled operations, Eq. 4; ``single_path``: one uniformly
    sampled path inside ``mask``, shared by the operations of the edge within a batch), run
    forward under ``torch.no_grad``. BatchNorm normalises with each batch's own statistics
    (:func:`naslid.batchnorm.batch_statistics`): the running statistics are a mixture over
    every path training sampled and misrepresent any one sub-supernet; the reference code
    profiles in train mode too, but here every running buffer is restored bit-identical
    afterwards. Each layer's output is flattened and its LID averaged over the batch as soon
    as it exists, then dropped; the per-layer means are averaged over the first
    ``config.num_batches`` batches (fewer batches is an error: the average would silently
    be noisier than configured).

    ``batches`` yields ``x`` or ``(x, y)``; the caller draws them at random from all classes
    (e.g. :func:`sample_batches`). Returns ``{edge: array [len(mask[edge]), L]}``, rows in
    the order of ``mask[edge]``, L = number of cells + reduction blocks. ``progress`` is
    called with 1 after every forward.
    """
    cfg = config or LIDConfig()
    mask, edges = profiling_target(supernet, mask, edges, cfg.mode, root)
    space = supernet.space
    rng = np.random.default_rng(seed)
    device = next(supernet.parameters()).device
    sums: dict[int, Tensor] = {}
    used = 0
    with torch.no_grad(), batch_statistics(supernet):
        for batch in batches:
            if used == cfg.num_batches:
                break
            x = batch_inputs(batch).to(device, non_blocking=True)
            if x.shape[0] < cfg.k + 1:
                raise ValueError(
                    f"batch: {x.shape[0]} samples, LID with k={cfg.k} needs at least {cfg.k + 1}"
                )
            for e in edges:
                base = mask if cfg.mode == "mask" else space.sample(rng, 1, mask)[0].ops
                rows = _profile_edge(supernet, x, base, e, mask[e], cfg, progress)
                sums[e] = rows if e not in sums else sums[e] + rows
            used += 1
    if used < cfg.num_batches:
        raise ValueError(
            f"batches: {used} given, num_batches={cfg.num_batches} asked (draw them with sample_batches)"
        )
    return {e: (sums[e] / used).cpu().double().numpy() for e in edges}


def _choice(supernet: nn.Module, base, edge: int, op: int):
    """The forward choice with ``edge`` fixed to ``op`` (a Mask, or an Arch for one path)."""
    if isinstance(base[0], tuple):
        return fix_edge(base, edge, op)
    ops = list(base)
    ops[edge] = op
    return supernet.space.make(ops)


def _profile_edge(
    net: nn.Module, x: Tensor, base, edge: int, options: Sequence[int], cfg: LIDConfig, progress
) -> Tensor:
    """LID vectors ``[len(options), L]`` of one edge's options on one batch.

    Each layer's output (``iter_features``) is reduced to its LID and dropped before the next."""
    rows = []
    for op in options:
        lids = []
        for feat in net.iter_features(x, _choice(net, base, edge, op)):
            lids.append(batch_lid(feat, cfg.k, cfg.chunk_size))
            del feat
        rows.append(torch.stack(lids))
        if progress is not None:
            progress(1)
    return torch.stack(rows)


def profiling_indices(
    labels: np.ndarray | Tensor | None, n: int, batch_size: int, num_batches: int, seed: int = 0
) -> list[np.ndarray]:
    """Indices of ``num_batches`` profiling batches drawn at random, without replacement.

    With ``labels``, every batch is stratified over all classes: each class contributes
    ``batch_size // classes`` samples (fewer if it runs out) and the rest is drawn uniformly
    from the remaining samples, so no class is missing by chance; without labels the draw is
    uniform over the ``n`` samples. Batches are disjoint while the data lasts; when fewer
    than ``batch_size`` unused samples remain, a fresh random pass over the data begins (as
    a shuffled loader's next epoch would: GM-NAS draws 100 batches, more than a small data
    set holds).
    """
    if batch_size < 1 or num_batches < 1:
        raise ValueError(
            f"batch_size: need >= 1 batches of >= 1 samples, got {num_batches} x {batch_size}"
        )
    if batch_size > n:
        raise ValueError(f"batch_size: {batch_size} samples per batch asked, the data has {n}")
    rng = np.random.default_rng(seed)
    if labels is not None:
        labels = np.asarray(labels.cpu() if isinstance(labels, Tensor) else labels)
        if labels.shape != (n,):
            raise ValueError(f"labels: expected shape ({n},), got {labels.shape}")
    taken: set[int] = set()
    order: list[int] = []
    pools: dict[int, list[int]] = {}
    out = []
    for _ in range(num_batches):
        if not order or n - len(taken) < batch_size:  # a new pass over the data
            taken.clear()
            order = [int(i) for i in rng.permutation(n)]
            pools = {}
            if labels is not None:
                for i in order:  # each class's samples, in random order
                    pools.setdefault(int(labels[i]), []).append(i)
        idx: list[int] = []
        for pool in pools.values():
            share = [i for i in pool if i not in taken][: batch_size // len(pools)]
            idx.extend(share)
            taken.update(share)
        for i in order:
            if len(idx) == batch_size:
                break
            if i not in taken:
                idx.append(i)
                taken.add(i)
        out.append(np.asarray(idx, dtype=np.int64))
    return out


def sample_batches(
    dataset, batch_size: int, num_batches: int, seed: int = 0, device: str | torch.device = "cpu"
) -> list[tuple[Tensor, Tensor]]:
    """``num_batches`` ``(x, y)`` profiling batches drawn at random from all classes.

    ``dataset``: a :class:`naslid.data.ImageData` (images normalised with its mean and std,
    no augmentation), or any indexable data set whose items are ``(x, y)``; its labels
    (``labels`` or ``targets``), when present, stratify the draw (:func:`profiling_indices`).
    """
    from naslid.data import ImageData, normalize

    labels = getattr(dataset, "labels", None)
    if labels is None:
        labels = getattr(dataset, "targets", None)
    batches = profiling_indices(labels, len(dataset), batch_size, num_batches, seed)
    out = []
    if isinstance(dataset, ImageData):
        mean = torch.tensor(dataset.mean, device=device).view(1, 3, 1, 1)
        std = torch.tensor(dataset.std, device=device).view(1, 3, 1, 1)
        for idx in batches:
            index = torch.as_tensor(idx, device=dataset.images.device)
            x = normalize(dataset.images[index].to(device), mean, std)
            out.append((x, dataset.labels[index].to(device)))
        return out
    for idx in batches:
        items = [dataset[int(i)] for i in idx]
        xs = torch.stack([torch.as_tensor(it[0]) for it in items]).to(device)
        ys = torch.as_tensor([int(it[1]) for it in items]).to(device)
        out.append((xs, ys))
    return out
