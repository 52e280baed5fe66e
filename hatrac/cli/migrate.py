"""``hatrac migrate-from URL``: copy a running Hatrac server into this one (online migration).

Reads the source through its REST API as one of its owners (credentials from
standard input or ``HATRAC_SOURCE_TOKEN``, never from the command line) and
writes into the database and storage of this service's config. See
:mod:`hatrac.migrate`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from ..config import load_config
from ..model.directory import directory_from_config
from ..model.service import Hatrac
from ..model.storage import open_storage
from ..urls import ROOT
from . import EXIT_FAILED, EXIT_OK, EXIT_USAGE, command
from .admin import warn_if_new_default_store


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("url", help="the source service, e.g. https://old.example.org/hatrac")
    parser.add_argument("--path", default=ROOT, help="copy only this subtree (default: all)")
    login = parser.add_mutually_exclusive_group()
    login.add_argument("--token-stdin", action="store_true", help="read a bearer token from stdin")
    login.add_argument(
        "--cookie-stdin", action="store_true", help="read a webauthn session cookie from stdin"
    )
    login.add_argument("--username", help="log in to the source's /authn/session as this user")
    parser.add_argument(
        "--password-stdin", action="store_true", help="with --username: the password on stdin"
    )
    parser.add_argument("--ca-bundle", help="CA bundle for an https source")
    parser.add_argument("--jobs", type=int, default=4, help="objects copied in parallel")
    parser.add_argument("--dry-run", action="store_true", help="report only; write nothing")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")


def _session(args: argparse.Namespace):
    import requests

    session = requests.Session()
    session.headers["User-Agent"] = "hatrac-migrate-from"
    if args.ca_bundle:
        session.verify = args.ca_bundle
    secret = sys.stdin.readline().strip() if (args.token_stdin or args.cookie_stdin) else ""
    if args.token_stdin or (not secret and os.environ.get("HATRAC_SOURCE_TOKEN")):
        session.headers["Authorization"] = "Bearer " + (secret or os.environ["HATRAC_SOURCE_TOKEN"])
    elif args.cookie_stdin:
        session.headers["Cookie"] = "webauthn=" + secret
    elif args.username:
        password = sys.stdin.readline().rstrip("\n") if args.password_stdin else None
        if password is None:
            import getpass

            password = getpass.getpass(f"password of {args.username} at the source: ")
        origin = args.url.split("/", 3)[:3]
        reply = session.post(
            "/".join(origin) + "/authn/session",
            data={"username": args.username, "password": password},
            timeout=30,
        )
        if reply.status_code not in (200, 201):
            raise SystemExit(f"hatrac: login at the source failed: {reply.status_code}")
    return session


@command(
    "migrate-from",
    "Copy a running Hatrac server (upstream's or ours) into this one through its REST API, "
    "keeping every version id; resumable. Exit 0 when everything visible was copied.",
    _arguments,
)
def migrate_from(args: argparse.Namespace) -> int:
    from ..migrate import Migration, RemoteServer, SourceError

    if args.password_stdin and not args.username:
        print("hatrac: --password-stdin needs --username", file=sys.stderr)
        return EXIT_USAGE
    config = load_config(args.config)
    try:
        source = RemoteServer(args.url, _session(args))
        start = source.name_of(source.prefix + (args.path if args.path != ROOT else "/"))[0]
    except SourceError as error:
        print(f"hatrac: {error}", file=sys.stderr)
        return EXIT_USAGE
    warn_if_new_default_store(args, config)
    directory = directory_from_config(config)
    directory.initialize(config.root_acls)
    service = Hatrac(config, directory, open_storage(config))
    from .maintenance import _progress

    bar = _progress(0, description="migrate-from")
    try:
        report = Migration(source, service, args.jobs, args.dry_run, bar.update).run(start)
    finally:
        bar.close()
        directory.close()
    result = report.as_dict()
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        verb = "would copy" if args.dry_run else "copied"
        print(
            f"{verb} {result['namespaces']} namespaces, {result['objects']} objects, "
            f"{result['versions']} versions ({result['bytes']} bytes); "
            f"{result['already_present']} versions already here"
        )
        for problem in result["problems"]:
            print(f"problem: {problem['name']}: {problem['problem']}")
        for limitation in result["limitations"]:
            print(f"limitation: {limitation}")
    return EXIT_FAILED if result["problems"] else EXIT_OK
