"""The pipeline's steps as plain functions: the one implementation behind every KFP component
and behind ``naslid step NAME``.

Each step takes its input artifact directories, an output directory and parameters, does
the work by calling the library, and writes its files atomically (:mod:`naslid.io`) with a
``meta.json`` (:mod:`naslid.artifacts`) beside them. A step reads its inputs' ``meta.json``
first and refuses one that does not match, naming the field. Each step is declared once, at
its function (:mod:`naslid.steps.registry`); :data:`STEPS` lists them in pipeline order.

Parameters left at their "profile default" (``-1``, ``""``) take the profile's setting
(:func:`naslid.config.resolve`). Long steps write epoch checkpoints to ``checkpoint_uri``
(a directory or a ``minio://`` / ``s3://`` prefix; ``""`` = inside the output directory,
removed when the step ends) and resume from them, so a pre-empted pod picks up where it
stopped. Re-running one step on an earlier run's artifacts lives in :mod:`naslid.rerun`.
"""

# Imported in pipeline order: the registry keeps the order of declaration.
from naslid.steps.prepare import prepare_data, validate_params
from naslid.steps.registry import STEPS, In, Out, Step, names
from naslid.steps.runtime import THREADS_ENV, checkpoint_location, input_key

from naslid.steps.supernet import (  # isort: skip
    finetune_subsupernet,
    gather_subsupernets,
    pretrain_supernet,
    profile_lid,
    split_round,
)
from naslid.steps.latency import measure_latency  # isort: skip
from naslid.steps.search import evolutionary_search, imagenet_transfer, lissnas_shrink, report  # isort: skip

__all__ = [
    "STEPS",
    "THREADS_ENV",
    "In",
    "Out",
    "Step",
    "checkpoint_location",
    "evolutionary_search",
    "finetune_subsupernet",
    "gather_subsupernets",
    "imagenet_transfer",
    "input_key",
    "lissnas_shrink",
    "measure_latency",
    "names",
    "prepare_data",
    "pretrain_supernet",
    "profile_lid",
    "report",
    "split_round",
    "validate_params",
]
