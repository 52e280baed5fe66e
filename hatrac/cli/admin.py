"""Core admin subcommands: schema set-up and the root namespace's ACLs."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from ..config import Config, config_path_from_environment, load_config
from ..model.directory import Directory, directory_from_config
from ..model.resources import ACCESS_MODES, NAMESPACE
from ..urls import ROOT
from . import EXIT_FAILED, EXIT_OK, EXIT_USAGE, command

if TYPE_CHECKING:
    from ..model.directory import Transaction


def warn_if_new_default_store(args: argparse.Namespace, config: Config) -> None:
    """Say on stderr when, with no config file at all, a new empty store is about to be made.

    Without ``--config``, ``$HATRAC_CONFIG`` or ``~/hatrac_config.json`` the
    built-in defaults put the store under ``./hatrac_data`` of the current
    directory, which is rarely the store a server reads.
    """
    if args.config or config_path_from_environment() is not None:
        return
    dsn = config.database_dsn
    if dsn.startswith("sqlite:") and not Path(dsn[len("sqlite:") :]).exists():
        print(
            f"hatrac: warning: no config file (no --config, $HATRAC_CONFIG unset, no "
            f"~/hatrac_config.json), so this creates a new, empty store in "
            f"{config.data_directory}; to use a server's store, pass --config or export "
            "HATRAC_CONFIG=/path/to/its/hatrac_config.json (scripts/serve.sh prints the line)",
            file=sys.stderr,
        )


def open_configured_directory(args: argparse.Namespace) -> tuple[Config, Directory]:
    """The configuration and an initialized directory, as the service would open them."""
    config = load_config(args.config)
    warn_if_new_default_store(args, config)
    directory = directory_from_config(config)
    directory.initialize(config.root_acls)
    return config, directory


@command("init-db", "Create or upgrade the database schema (idempotent).")
def init_db(args: argparse.Namespace) -> int:
    config, directory = open_configured_directory(args)
    print(f"database ready: {config.database_dsn.split(' password=')[0]}")
    directory.close()
    return EXIT_OK


def _root_acl_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "access",
        nargs="?",
        choices=ACCESS_MODES[NAMESPACE],
        help="access mode (none: list every ACL of the root)",
    )
    parser.add_argument("roles", nargs="*", help="roles to add (or remove with --remove)")
    parser.add_argument("--remove", action="store_true", help="remove the roles instead")
    parser.add_argument("--set", action="store_true", help="replace the ACL with the roles")
    parser.add_argument(
        "--json",
        action="store_true",
        help="print JSON (an object of every ACL when no access mode is given)",
    )


@command(
    "root-acl",
    "Show or change an ACL of the root namespace (e.g. 'hatrac root-acl owner admin').",
    _root_acl_arguments,
)
def root_acl(args: argparse.Namespace) -> int:
    if args.access is None:
        if args.roles or args.set or args.remove:
            print(
                "hatrac: name the access mode to change, e.g. 'root-acl owner ROLE'",
                file=sys.stderr,
            )
            return EXIT_USAGE
        return _list_root_acls(args)
    _, directory = open_configured_directory(args)

    def change(tx: Transaction) -> dict:
        root = tx.get_name(ROOT)
        acls = dict(root.acls)
        current = list(acls.get(args.access, []))
        if args.set:
            current = list(dict.fromkeys(args.roles))
        elif args.remove:
            current = [r for r in current if r not in args.roles]
        else:
            current = list(dict.fromkeys(current + args.roles))
        acls[args.access] = current
        if not any(acls.get(mode) for mode in ("owner", "subtree-owner")):
            raise ValueError("the root namespace must keep at least one owner")
        tx.set_name_acls(root.id, {k: v for k, v in acls.items() if v})
        return acls

    if not args.roles and not args.set:
        try:
            root = directory.run(lambda tx: tx.get_name(ROOT))
        finally:
            directory.close()
        print(json.dumps(root.acls.get(args.access, [])))
        return EXIT_OK
    try:
        acls = directory.run(change, write=True)
    except ValueError as error:
        if "owner" in str(error) and args.access.endswith("owner"):
            print(f"hatrac: refused: {error}", file=sys.stderr)
            return EXIT_FAILED
        raise
    finally:
        directory.close()
    print(json.dumps(acls.get(args.access, [])))
    return EXIT_OK


def _list_root_acls(args: argparse.Namespace) -> int:
    _, directory = open_configured_directory(args)
    try:
        root = directory.run(lambda tx: tx.get_name(ROOT))
    finally:
        directory.close()
    acls = {mode: list(root.acls.get(mode, [])) for mode in ACCESS_MODES[NAMESPACE]}
    if args.json:
        print(json.dumps(acls, indent=2))
        return EXIT_OK
    for mode, roles in acls.items():
        print(f"{mode}\t{','.join(roles)}")
    return EXIT_OK


__all__ = ["init_db", "root_acl", "EXIT_USAGE"]
