"""The step registry: each pipeline step declared once, at its function, with :func:`step`.

A declaration says what the step reads (artifact kinds, and how ``naslid step`` picks them
among a run's artifacts), what it writes, whether it reports metrics or returns a value to
the DAG, whether it runs a network (GPU pool) or reads raw data (the dataset volume), and its
pod deadline. Everything else is derived from it: the KFP components
(:mod:`naslid.kfp_components`), ``naslid step`` (:mod:`naslid.rerun`), the pipeline's
scheduling sets and deadlines (``pipelines/naslid.py``), the order of the report's timings.
The parameters are the function's keyword-only arguments, with their types and defaults.
"""

from __future__ import annotations

import functools
import inspect
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from naslid.artifacts import recording
from naslid.steps.runtime import apply_thread_limit

HOUR = 3600
GPU_POOL = "gpu"
RUNTIME_PARAMS = ("progress",)
"""Keyword arguments of a step function that are not pipeline parameters (how it runs)."""
CHECKPOINT_PARAM = "checkpoint_uri"
"""A long step's checkpoint location: a component derives it from the ``checkpoint_root``
pipeline parameter and the step's inputs (:func:`naslid.steps.runtime.checkpoint_location`)."""


@dataclass(frozen=True)
class In:
    """One artifact input of a step."""

    kind: str
    many: bool = False
    """A list of artifacts (a fan-in: ``dsl.Collected`` on a cluster)."""
    optional: bool = False
    round: int | str | None = None
    """Which among a run's artifacts of the kind ``naslid step`` takes: ``"max"`` the latest
    round, ``"split-1"`` the round before the latest split, a number that round; None any."""


@dataclass(frozen=True)
class Out:
    """One output of a step: an artifact directory, or (``file``) one file."""

    name: str
    """The output's name in the DAG (``task.outputs[name]``)."""
    kind: str | None = None
    """The artifact kind written; None for a file (``file``)."""
    file: str = ""
    """Under ``naslid step``: the file's name inside the output folder."""


@dataclass(frozen=True)
class Step:
    """One step's declaration (see the module docstring)."""

    name: str
    function: Callable[..., Any]
    inputs: dict[str, In] = field(default_factory=dict)
    outputs: dict[str, Out] = field(default_factory=dict)
    """Keyword of the function's output path -> the output."""
    metrics: bool = False
    """The returned dict is the step's Metrics artifact."""
    returns: tuple[type, str] | None = None
    """(type, key) of the value the step hands to the DAG: the result itself (key ``""``) or
    one entry of the returned dict."""
    gpu: bool = False
    """Runs a network: scheduled on a GPU node pool (``pool``)."""
    pool: str = GPU_POOL
    """The node pool a ``gpu`` step runs on: the pipeline parameters ``POOL_node_selector`` and
    ``POOL_tolerations`` place it (``gpu``: where networks train; ``latency``: where the
    searched network will run, which measure-latency times)."""
    reads_data: bool = False
    """Reads raw data sets: mounts the dataset volume, when there is one."""
    distributed: bool = False
    """Runs one process per GPU of its pod (torchrun)."""
    retry: bool | None = None
    """Retried with back-off on failure; None = :attr:`retried`'s rule (False for a check
    that would fail the same way again)."""
    timeout: int = HOUR
    """Active deadline of the step's pod, seconds (per pod: a retry starts afresh): several
    times the cifar10 profile's wall time on one GPU (supernet training 100-250 epochs on
    CIFAR, forward-only LID profiling, fine-tuning, ~1,000 proxy labels for LISSNAS, a 50 x 50
    search, ImageNet training); the CPU steps take seconds to minutes."""

    @property
    def parameters(self) -> dict[str, inspect.Parameter]:
        """The step's pipeline parameters: its keyword-only arguments but the runtime ones."""
        sig = inspect.signature(self.function)
        return {
            k: p
            for k, p in sig.parameters.items()
            if p.kind is inspect.Parameter.KEYWORD_ONLY
            and k not in RUNTIME_PARAMS
            and k not in self.inputs
            and k not in self.outputs
        }

    @property
    def params(self) -> tuple[str, ...]:
        return tuple(self.parameters)

    def param_type(self, name: str) -> type:
        """The type a pipeline passes for parameter ``name`` (``str | bool`` travels as str)."""
        hint = typing.get_type_hints(self.function)[name]
        options = typing.get_args(hint) or (hint,)
        return str if str in options else options[0]

    @property
    def checkpointed(self) -> bool:
        return CHECKPOINT_PARAM in self.parameters

    @property
    def retried(self) -> bool:
        """Retried with back-off: pods that can be pre-empted or lose a node (the long ones
        resume from their epoch checkpoints) and the steps that read the object store; the
        others are deterministic bookkeeping, a retry would fail the same way (and so would a
        check, declared ``retry=False``)."""
        return self.retry if self.retry is not None else self.gpu or self.reads_data

    def __call__(self, *args: Any, run_id: str = "", **kwargs: Any) -> Any:
        """Run the step: its inputs recorded as its outputs' lineage under ``run_id``, its
        time and memory measured (:func:`naslid.artifacts.recording`)."""
        apply_thread_limit()
        with recording(run_id):
            return self.function(*args, **kwargs)


STEPS: dict[str, Step] = {}
"""Every step by name, in pipeline order (the order of declaration; naslid.steps imports
its modules in that order)."""


def step(name: str, **declaration: Any) -> Callable[[Callable], Callable]:
    """Declare the decorated function as step ``name`` (keywords: :class:`Step`'s fields).
    The decorated function runs as :meth:`Step.__call__` (pass ``run_id=`` for the lineage)."""

    def register(fn: Callable) -> Callable:
        if name in STEPS:
            raise ValueError(f"step {name!r} declared twice")
        entry = Step(name, fn, **declaration)
        STEPS[name] = entry

        @functools.wraps(fn)
        def run(*args: Any, run_id: str = "", **kwargs: Any) -> Any:
            return entry(*args, run_id=run_id, **kwargs)

        return run

    return register


def names(**where: bool) -> tuple[str, ...]:
    """Step names in pipeline order, those whose declaration has the ``where`` flags
    (``names(gpu=True)``)."""
    return tuple(n for n, s in STEPS.items() if all(getattr(s, k) == v for k, v in where.items()))
