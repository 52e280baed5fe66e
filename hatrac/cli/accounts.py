"""Account subcommands: ``hatrac user ...``, ``hatrac group ...``, ``hatrac token ...``.

Each is one non-interactive command that scripts can run (a password comes
from standard input with ``--password-stdin``; without it, and on a
terminal, it is prompted twice). Making a user an owner of the root
namespace is ``hatrac root-acl owner NAME``. Exit codes: 0 done, 1 refused
(unknown user, name taken, ...), 2 bad usage.
"""

from __future__ import annotations

import argparse
import datetime
import getpass
import json
import sys
from typing import TYPE_CHECKING, Callable, Optional

from ..errors import HatracError
from . import EXIT_FAILED, EXIT_OK, EXIT_USAGE, command

if TYPE_CHECKING:
    from ..auth.accounts import Accounts
    from ..model.directory import Directory


def _accounts(args: argparse.Namespace) -> tuple[Accounts, Directory]:
    from ..auth.accounts import Accounts
    from .admin import open_configured_directory

    config, directory = open_configured_directory(args)
    return Accounts(directory, config), directory


def _read_password(args: argparse.Namespace, prompt: bool) -> str:
    if getattr(args, "password_stdin", False):
        line = sys.stdin.readline()
        return line[:-1] if line.endswith("\n") else line
    if not prompt:
        return ""
    if not sys.stdin.isatty():
        raise HatracError("no terminal to prompt for a password; use --password-stdin")
    first = getpass.getpass("New password: ")
    if first != getpass.getpass("Repeat it: "):
        raise HatracError("the passwords differ")
    return first


def _when(seconds: Optional[float]) -> str:
    if seconds is None:
        return "never"
    return datetime.datetime.fromtimestamp(seconds, tz=datetime.timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )


def _run(function: Callable[[Accounts, argparse.Namespace], int], args: argparse.Namespace) -> int:
    accounts, directory = _accounts(args)
    try:
        return function(accounts, args)
    except HatracError as error:
        print(f"hatrac: {error.message}", file=sys.stderr)
        return EXIT_FAILED
    finally:
        directory.close()


def _json_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--json", action="store_true", help="one JSON array instead of tab-separated lines"
    )


# -- users ---------------------------------------------------------------------
def _user_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True
    add = actions.add_parser("add", help="create a user (no password: cannot log in yet)")
    add.add_argument("name")
    add.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    add.add_argument("--display-name", help="the name shown to people")
    passwd = actions.add_parser("passwd", help="set a user's password (ends its sessions)")
    passwd.add_argument("name")
    passwd.add_argument("--password-stdin", action="store_true")
    for action, help_text in (
        ("disable", "refuse the user's logins, sessions and tokens"),
        ("enable", "allow a disabled user again"),
        ("remove", "delete the user, its memberships, sessions and tokens"),
        ("groups", "the groups the user belongs to (directly or through groups)"),
    ):
        actions.add_parser(action, help=help_text).add_argument("name")
    listing = actions.add_parser("list", help="list users (name, state, display name)")
    _json_flag(listing)


def _user(accounts: Accounts, args: argparse.Namespace) -> int:
    if args.action == "add":
        password = _read_password(args, prompt=False) if args.password_stdin else None
        accounts.add_user(args.name, password, args.display_name)
        print(f"user {args.name} added" + ("" if password else " (no password yet)"))
    elif args.action == "passwd":
        accounts.set_password(args.name, _read_password(args, prompt=True))
        print(f"password of {args.name} changed")
    elif args.action in ("disable", "enable"):
        accounts.set_disabled(args.name, args.action == "disable")
        print(f"user {args.name} {args.action}d")
    elif args.action == "remove":
        accounts.remove_user(args.name)
        print(f"user {args.name} removed")
    elif args.action == "groups":
        for group in accounts.groups_of(args.name):
            print(group)
    elif args.action == "list":
        users = accounts.users()
        if args.json:
            rows = [
                {
                    "name": user.name,
                    "state": "disabled" if user.disabled else "enabled",
                    "password": bool(user.password_hash),
                    "display_name": user.display_name,
                }
                for user in users
            ]
            print(json.dumps(rows, indent=2))
            return EXIT_OK
        for user in users:
            state = "disabled" if user.disabled else "enabled"
            password = "" if user.password_hash else " (no password)"
            print(f"{user.name}\t{state}{password}\t{user.display_name or ''}")
    return EXIT_OK


@command("user", "Manage built-in user accounts (add, passwd, disable, ...).", _user_arguments)
def user_command(args: argparse.Namespace) -> int:
    return _run(_user, args)


# -- groups --------------------------------------------------------------------
def _group_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True
    actions.add_parser("add", help="create a group (ACLs name it as g:GROUP)").add_argument("group")
    actions.add_parser("remove", help="delete a group and its memberships").add_argument("group")
    for action in ("add-member", "remove-member"):
        sub = actions.add_parser(
            action, help=f"{action.split('-')[0]} a user, or a group (g:NAME), as member"
        )
        sub.add_argument("group")
        sub.add_argument("member", help="a user name, or g:GROUP for a group")
    listing = actions.add_parser(
        "list", help="list groups with their direct members (group, users, groups)"
    )
    _json_flag(listing)


def _group(accounts: Accounts, args: argparse.Namespace) -> int:
    if args.action == "add":
        accounts.add_group(args.group)
        print(f"group {args.group} added")
    elif args.action == "remove":
        accounts.remove_group(args.group)
        print(f"group {args.group} removed")
    elif args.action in ("add-member", "remove-member"):
        add = args.action == "add-member"
        changed = accounts.change_membership(args.group, args.member, add)
        verb = "added to" if add else "removed from"
        print(f"{args.member} {verb} {args.group}" + ("" if changed else " (no change)"))
    elif args.action == "list":
        rows = [
            {"group": name, "role": "g:" + name, "users": users, "groups": groups}
            for name, users, groups in accounts.groups()
        ]
        if args.json:
            print(json.dumps(rows, indent=2))
            return EXIT_OK
        for row in rows:
            groups = ",".join("g:" + group for group in row["groups"])
            print(f"{row['group']}\t{','.join(row['users'])}\t{groups}")
    return EXIT_OK


@command("group", "Manage groups of built-in users (groups may contain groups).", _group_arguments)
def group_command(args: argparse.Namespace) -> int:
    return _run(_group, args)


# -- API tokens ----------------------------------------------------------------
def _token_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True
    issue = actions.add_parser("issue", help="make an API token for a user; printed once")
    issue.add_argument("user")
    issue.add_argument("--expires-in", type=int, metavar="SECS", help="lifetime in seconds")
    issue.add_argument("--description", help="what the token is for")
    actions.add_parser("revoke", help="revoke a token by its id").add_argument("id", type=int)
    listing = actions.add_parser("list", help="list tokens (never their values)")
    listing.add_argument("user", nargs="?")
    _json_flag(listing)


def _token(accounts: Accounts, args: argparse.Namespace) -> int:
    if args.action == "issue":
        from ..auth.accounts import MAX_TOKEN_LIFETIME

        if args.expires_in is not None and not 1 <= args.expires_in <= MAX_TOKEN_LIFETIME:
            print(
                f"hatrac: --expires-in must be from 1 to {MAX_TOKEN_LIFETIME} seconds "
                "(without it the token never expires)",
                file=sys.stderr,
            )
            return EXIT_USAGE
        token_id, value = accounts.issue_token(args.user, args.expires_in, args.description)
        print(value)
        print(f"token id {token_id}; use it as 'Authorization: Bearer TOKEN'", file=sys.stderr)
    elif args.action == "revoke":
        if not accounts.revoke_token(args.id):
            print(f"hatrac: no live token with id {args.id}", file=sys.stderr)
            return EXIT_FAILED
        print(f"token {args.id} revoked")
    elif args.action == "list":
        tokens = accounts.tokens(args.user)
        if args.json:
            rows = [
                {
                    "id": token.id,
                    "user": token.user_name,
                    "state": "revoked" if token.revoked else "live",
                    "created": _when(token.created),
                    "expires": None if token.expires is None else _when(token.expires),
                    "description": token.description,
                }
                for token in tokens
            ]
            print(json.dumps(rows, indent=2))
            return EXIT_OK
        for token in tokens:
            state = "revoked" if token.revoked else "live"
            print(
                f"{token.id}\t{token.user_name}\t{state}\tcreated {_when(token.created)}\t"
                f"expires {_when(token.expires)}\t{token.description or ''}"
            )
    return EXIT_OK


@command("token", "Issue, list and revoke API tokens (Authorization: Bearer).", _token_arguments)
def token_command(args: argparse.Namespace) -> int:
    return _run(_token, args)
