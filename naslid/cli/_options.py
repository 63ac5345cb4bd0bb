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
