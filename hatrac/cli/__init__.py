"""The admin command line: ``hatrac SUBCOMMAND ...``.

Each subcommand lives in a module of this package and registers itself with
:func:`command`. Exit codes scripts can rely on: 0 success, 1 the operation
failed or found problems, 2 bad usage or configuration.
"""

from __future__ import annotations

import argparse
import sys
from typing import Callable, Optional

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2

_COMMANDS: list[tuple[str, str, Callable, Callable]] = []


def command(
    name: str, help: str, arguments: Optional[Callable] = None
) -> Callable[[Callable], Callable]:
    """Register ``function(args) -> int`` as subcommand ``name``."""

    def register(function: Callable) -> Callable:
        _COMMANDS.append((name, help, arguments or (lambda parser: None), function))
        return function

    return register


def build_parser() -> argparse.ArgumentParser:
    from .. import __version__
    from . import (  # noqa: F401  (register the subcommands)
        accounts,
        admin,
        deploy,
        maintenance,
        migrate,
        serve,
        uploads,
        upstream,
    )

    parser = argparse.ArgumentParser(prog="hatrac", description="Administer a Hatrac object store.")
    parser.add_argument("--version", action="version", version=f"hatrac {__version__}")
    parser.add_argument(
        "--config",
        help="path of hatrac_config.json (default: $HATRAC_CONFIG, else ~/hatrac_config.json)",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    for name, help_text, arguments, function in _COMMANDS:
        sub = subparsers.add_parser(name, help=help_text, description=help_text)
        arguments(sub)
        sub.set_defaults(function=function)
    return parser


def main(argv: Optional[list[str]] = None) -> int:
    from ..config import ConfigError, StartupError
    from ..errors import HatracError

    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.function(args)
    except StartupError as error:  # valid config, but the database or storage is unusable
        print(f"hatrac: {error}", file=sys.stderr)
        return EXIT_FAILED
    except ConfigError as error:
        print(f"hatrac: configuration error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except HatracError as error:  # e.g. the database refuses us: one line, no traceback
        print(f"hatrac: {' '.join(error.message.split())}", file=sys.stderr)
        return EXIT_FAILED
