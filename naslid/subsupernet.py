"""Sub-supernets: a child of a split inherits its parent's weights and is trained inside its
mask (NAS-LID, He et al., AAAI 2023, sections 3.3-4), continuing its parent's optimiser
(NAS-LID's public code resumes the parent's trainer) or, as an option, starting afresh."""

from __future__ import annotations

import copy
import dataclasses

from torch import nn

from naslid.data import ImageData
from naslid.saved_model import net_mask, supernet_space
from naslid.spaces.base import Mask
from naslid.train import TrainConfig, TrainResult, check_inside, train


def inherit(parent: nn.Module, mask: Mask) -> nn.Module:
    """A sub-supernet for ``mask`` that starts from ``parent``'s weights (NAS-LID's scheme).

    NAS-LID fine-tunes each sub-supernet from its parent's state; its public code re-initialises
    them by default (``load_from_parent=False``). We follow the paper: the child is a copy of
    the parent's tensors, holding only the candidates its mask allows where the supernet can
    be restricted (``restrict``), else a full copy that is trained inside the mask.
    """
    space = supernet_space(parent)
    mask = space.check_mask(mask)
    check_inside(mask, net_mask(parent))
    if hasattr(parent, "restrict"):
        return parent.restrict(mask)
    child = copy.deepcopy(parent)
    return child


def finetune(
    parent: nn.Module,
    mask: Mask,
    data: ImageData,
    config: TrainConfig,
    *,
    epochs: int | None = None,
    parent_state: dict | None = None,
    **kwargs,
) -> tuple[nn.Module, TrainResult]:
    """Inherit ``parent``'s weights for ``mask`` and train inside it (default ``config.warmup_epochs``).

    ``config.child_schedule`` ``continue`` (the default, as NAS-LID's public code resumes the
    parent's trainer): the child starts from ``parent_state`` (the parent's
    :func:`continuation_state`: its momentum buffers, and its last learning rate, from which
    the child's cosine anneals to ``lr_min``) -- it does not jump back to the peak rate;
    ``restart``: a fresh SGD from ``config.lr``. Every other keyword goes to :func:`train`
    (store, resume, device, progress ...).
    """
    child = inherit(parent, mask)
    n = epochs if epochs is not None else config.warmup_epochs
    cfg = dataclasses.replace(config, epochs=n)
    initial = None
    if config.child_schedule == "continue":
        if parent_state is None:
            raise ValueError(
                "parent_state: a child that continues its parent's schedule needs the parent's "
                "optimiser state (child_schedule='restart' starts afresh)"
            )
        lr = float(parent_state["lr"])
        cfg = dataclasses.replace(cfg, lr=lr, lr_min=min(config.lr_min, lr))
        initial = parent_state
    return child, train(child, data, cfg, mask, initial=initial, **kwargs)
