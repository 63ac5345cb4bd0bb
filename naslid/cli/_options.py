"""Command-line options made from the fields of a config dataclass (or the keyword arguments
of a function): each option's type and default are the field's, so no help text restates a
default."""

from __future__ import annotations

import argparse
import inspect
from collections.abc import Callable, Mapping
from types import SimpleNamespace


def add_config_options(
    parser: argparse.ArgumentParser,
    defaults: object,
    helps: Mapping[str, str],
    flags: Mapping[str, tuple[str, str]] | None = None,
) -> None:
    """One option per field named in ``helps`` (field -> what it means), defaulting to the
    field's value in ``defaults``; ``flags``: field -> (flag, metavar) where the flag is not
    ``--field-name``. A field whose default is None is a float whose help says what unset means."""
    for name, text in helps.items():
        default = getattr(defaults, name)
        flag, metavar = (flags or {}).get(name, (f"--{name.replace('_', '-')}", None))
        parser.add_argument(
            flag,
            dest=name,
            metavar=metavar,
            type=float if default is None else type(default),
            default=default,
            help=text if default is None else f"{text} (default %(default)s)",
        )


def config_values(args: argparse.Namespace, helps: Mapping[str, str]) -> dict:
    """The values of the options :func:`add_config_options` added, by field name."""
    return {name: getattr(args, name) for name in helps}


def signature_defaults(fn: Callable) -> SimpleNamespace:
    """The keyword defaults of ``fn`` as attributes: the ``defaults`` of
    :func:`add_config_options` for a function's arguments."""
    params = inspect.signature(fn).parameters.values()
    return SimpleNamespace(**{p.name: p.default for p in params if p.default is not p.empty})


def add_space_option(parser: argparse.ArgumentParser) -> None:
    """``--space``: one of the registered search spaces (:data:`naslid.spaces.SPACES`)."""
    from naslid.spaces import DEFAULT_SPACE, SPACES

    parser.add_argument(
        "--space", default=DEFAULT_SPACE, choices=SPACES, help="search space (default %(default)s)"
    )


def add_profile_option(parser: argparse.ArgumentParser) -> None:
    """``--profile``: the run profile (:data:`naslid.config.PROFILES`)."""
    from naslid.config import DEFAULT_PROFILE, PROFILES

    parser.add_argument(
        "--profile",
        default=DEFAULT_PROFILE,
        help=f"run profile: {' | '.join(PROFILES)} (default %(default)s)",
    )


BUDGET_HELP = {
    "flops_max": "FLOPs limit, millions (the space's cost model: space.flops)",
    "params_max": "parameter limit, millions (space.params)",
    "latency_max": "latency limit, milliseconds, predicted from --latency-table",
}
"""The hardware limits' options (:data:`naslid.budget.LIMIT_FIELDS`), unset by default."""


def add_budget_options(parser: argparse.ArgumentParser) -> None:
    """``--flops-max``, ``--params-max``, ``--latency-max`` and ``--latency-table``: the
    hardware budget every searched arch meets (:mod:`naslid.budget`)."""
    from naslid.budget import LIMIT_FIELDS

    assert set(BUDGET_HELP) == set(LIMIT_FIELDS.values())
    for name, text in BUDGET_HELP.items():
        parser.add_argument(f"--{name.replace('_', '-')}", dest=name, type=float, help=text)
    parser.add_argument(
        "--latency-table",
        metavar="DIR",
        help="latency lookup table measured on the target device (naslid latency --out DIR): "
        "every arch's latency is predicted from it, and --latency-max needs it",
    )
    parser.add_argument(
        "--latency-device",
        metavar="NAME",
        help="the device the network will run on (e.g. 'NVIDIA H100 80GB HBM3'): a table "
        "measured on another is refused",
    )


def budget_of(args: argparse.Namespace, space: object):
    """The :class:`naslid.budget.Budget` of the options :func:`add_budget_options` added and
    the latency predictor of ``--latency-table`` (checked against ``space``; None without)."""
    from naslid.budget import Budget

    budget = Budget(**{name: getattr(args, name) for name in BUDGET_HELP})
    if getattr(args, "latency_table", None) is None:
        if budget.latency_max is not None:
            raise ValueError("--latency-max: needs --latency-table (naslid latency --out DIR)")
        return budget, None
    from naslid import latency

    table = latency.load_checked(args.latency_table, space, getattr(args, "latency_device", None))
    return budget, table.predict
