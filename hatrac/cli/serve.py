"""``hatrac serve``: the documented gunicorn command, for installs without a checkout.

It checks the configuration first (so a bad one is one line and exit 2,
not a gunicorn traceback), then replaces itself with gunicorn running
``hatrac:create_app()`` under the packaged settings
(:mod:`hatrac.gunicorn_conf`). Arguments after ``--`` go to gunicorn
unchanged, e.g. ``-- --certfile cert.pem --keyfile key.pem`` for TLS.
"""

from __future__ import annotations

import argparse
import os
import sys

from ..config import config_path_from_environment, load_config
from . import command


def gunicorn_command(args: argparse.Namespace) -> list[str]:
    """The gunicorn command line ``hatrac serve`` runs."""
    argv = [sys.executable, "-m", "gunicorn", "--config", "python:hatrac.gunicorn_conf"]
    argv += ["--bind", args.bind]
    if args.workers is not None:
        argv += ["--workers", str(args.workers)]
    if args.threads is not None:
        argv += ["--threads", str(args.threads)]
    extra = list(args.gunicorn_args or [])
    if extra[:1] == ["--"]:
        extra = extra[1:]
    return [*argv, *extra, "hatrac:create_app()"]


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--bind", "-b", default="127.0.0.1:8080", help="HOST:PORT (default 127.0.0.1:8080)"
    )
    parser.add_argument(
        "--workers",
        "-w",
        type=int,
        help="worker processes (default $HATRAC_WORKERS or 2 x CPUs, at most 4)",
    )
    parser.add_argument(
        "--threads", type=int, help="threads per worker (default $HATRAC_THREADS or 8)"
    )
    parser.add_argument(
        "gunicorn_args",
        nargs=argparse.REMAINDER,
        help="after --: more gunicorn options (e.g. -- --certfile C --keyfile K)",
    )


@command("serve", "Serve the store with gunicorn (the packaged settings).", _arguments)
def serve(args: argparse.Namespace) -> int:
    config = load_config(args.config)  # ConfigError: one line, exit 2 (hatrac.cli.main)
    environment = dict(os.environ)
    path = args.config or config_path_from_environment()
    if path is not None:
        environment["HATRAC_CONFIG"] = os.path.abspath(path)
    else:
        print(
            "hatrac: warning: no config file found (no --config, $HATRAC_CONFIG unset, no "
            f"~/hatrac_config.json); serving the built-in defaults from {config.data_directory}",
            file=sys.stderr,
        )
    argv = gunicorn_command(args)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(argv[0], argv, environment)
    return 1  # not reached
