"""``hatrac import-upstream``: take over an upstream Hatrac deployment in place.

Reads upstream's configuration, database and bytes (never writing to them),
fills our database, and writes our configuration serving upstream's bytes
where they are. See docs/migrating.md. Exit 0 when the import is complete
without problems, 1 when problems were found (listed; the rest was imported),
2 when upstream's configuration or schema cannot be used at all.
"""

from __future__ import annotations

import argparse
import json
import sys

from . import EXIT_FAILED, EXIT_OK, EXIT_USAGE, command


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("upstream_config", help="upstream's hatrac_config.json")
    parser.add_argument("--upstream-dsn", help="upstream's database (default: its database_dsn)")
    parser.add_argument(
        "--upstream-storage-path", help="upstream's storage_path (default: from its config)"
    )
    parser.add_argument(
        "--database-dsn",
        help="our database (PostgreSQL DSN or sqlite:PATH; default: sqlite in --data-directory)",
    )
    parser.add_argument(
        "--data-directory", default="hatrac_data", help="our data directory (default: %(default)s)"
    )
    parser.add_argument(
        "--storage-path", help="where our new bytes go (default: DATA_DIRECTORY/storage)"
    )
    parser.add_argument("--write-config", metavar="PATH", help="write our hatrac_config.json here")
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="do everything against a throw-away database and report; write nothing",
    )
    parser.add_argument(
        "--copy", action="store_true", help="copy bytes into our own layout, hashing them"
    )
    parser.add_argument(
        "--hash",
        action="store_true",
        help="compute the digests upstream did not store (reads those versions' bytes); "
        "without it, 'hatrac verify --fill-digests' can do it later",
    )
    parser.add_argument(
        "--drop-jobs", action="store_true", help="accept that open upload jobs are not carried over"
    )
    parser.add_argument(
        "--webauthn2-session-url",
        metavar="URL",
        help="in the written config, take logins from the site's webauthn2 "
        "(e.g. https://localhost/authn/session; see docs/authentication.md)",
    )
    parser.add_argument("--json", action="store_true", help="write the report as JSON")


class _Progress:
    def __init__(self, totals: dict) -> None:
        from .maintenance import _progress

        self.bars = {
            "names": _progress(totals.get("names", 0), unit="names", description="names"),
            "versions": _progress(
                totals.get("versions", 0), unit="versions", description="versions"
            ),
        }
        self.bytes = 0

    def __call__(self, what: str, rows: int, size: int) -> None:
        bar = self.bars[what]
        if rows:
            bar.update(rows)
        if size:
            self.bytes += size
            bar.set_postfix(bytes=self.bytes, refresh=False)

    def close(self) -> None:
        for bar in self.bars.values():
            bar.close()


@command(
    "import-upstream",
    "Import an upstream Hatrac deployment in place: its names, versions (with their ids), "
    "ACLs, tombstones and renames into our database, its bytes served where they are.",
    _arguments,
)
def import_upstream(args: argparse.Namespace) -> int:
    from ..model.directory.upstream import UpstreamDatabase
    from ..upstream import Options, SiteError, UnknownSchema, import_site, load_site

    try:
        site = load_site(args.upstream_config, args.upstream_dsn, args.upstream_storage_path)
    except SiteError as error:
        print(f"hatrac: import-upstream: {error}", file=sys.stderr)
        return EXIT_USAGE
    dsn = args.database_dsn
    if dsn is None and not args.dry_run:
        import os

        dsn = "sqlite:" + os.path.join(os.path.abspath(args.data_directory), "hatrac.sqlite3")
        os.makedirs(args.data_directory, exist_ok=True)
    options = Options(copy=args.copy, hash=args.hash, drop_jobs=args.drop_jobs)
    try:
        probe = UpstreamDatabase(site.dsn)
        try:
            probe.generation()
            totals = probe.counts()
        finally:
            probe.close()
    except UnknownSchema as error:
        print(f"hatrac: import-upstream: not an upstream Hatrac database: {error}", file=sys.stderr)
        return EXIT_USAGE
    except Exception as error:  # noqa: BLE001 - one line, not a traceback
        print(f"hatrac: import-upstream: cannot read upstream's database: {error}", file=sys.stderr)
        return EXIT_USAGE
    extra = {}
    if args.webauthn2_session_url:
        extra = {
            "authn_providers": ["webauthn2"],
            "webauthn2_session_url": args.webauthn2_session_url,
        }
    progress = _Progress(totals)
    try:
        report, _ = import_site(
            site,
            None if args.dry_run else dsn,
            args.data_directory,
            args.storage_path,
            options,
            None if args.dry_run else args.write_config,
            progress=progress,
            extra_config=extra,
        )
    except Exception as error:  # noqa: BLE001 - one line, not a traceback
        print(
            f"hatrac: import-upstream: stopped: {type(error).__name__}: {error}; what was "
            "imported so far is kept, and running the same command again resumes",
            file=sys.stderr,
        )
        return EXIT_FAILED
    finally:
        progress.close()
    if args.json:
        result = report.as_dict()
        result["dry_run"] = bool(args.dry_run)
        print(json.dumps(result, indent=2))
    else:
        if args.dry_run:
            print("dry run: nothing was written; an import would do this:")
        print(report.text())
        if args.write_config and not args.dry_run:
            print(f"our configuration: {args.write_config}")
    return EXIT_FAILED if report.problem_total else EXIT_OK
