"""Maintenance subcommands: ``check-config``, ``verify`` and ``gc``.

* ``check-config`` loads the configuration exactly as the service does and
  tries the database and the storage, changing nothing; each problem is one
  line naming the fix.
* ``verify`` re-reads and re-hashes the bytes of every live version (or of
  one subtree) and reports versions whose bytes are missing or differ from
  the recorded size and checksums: bitrot and tampering detection.
* ``gc`` removes expired upload jobs and stored bytes that no version
  refers to. It only reports unless given ``--delete``.

Exit codes (see :mod:`hatrac.cli`): 0 all well, 1 problems found or the
operation failed, 2 bad usage or configuration.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Iterator, NoReturn, Optional

from ..config import ConfigError, StartupError, load_config
from ..model.directory import directory_from_config
from ..model.directory.inline import InlineBytes
from ..model.directory.schema import pending_migrations
from ..model.resources import ObjectVersion
from ..model.storage import Storage, StorageError, open_storage
from ..urls import ROOT, resource_url
from . import EXIT_FAILED, EXIT_OK, EXIT_USAGE, command
from .admin import warn_if_new_default_store

if TYPE_CHECKING:
    from ..config import Config
    from ..model.directory import Directory, Transaction


def _progress(total: int, unit: str = "B", description: str = ""):
    """A tqdm progress bar on a terminal (standard error); silent otherwise."""
    from tqdm import tqdm

    return tqdm(
        total=total,
        unit=unit,
        unit_scale=unit == "B",
        unit_divisor=1024 if unit == "B" else 1000,
        desc=description,
        disable=not sys.stderr.isatty(),
        file=sys.stderr,
        leave=False,
    )


class _Rollback(Exception):
    """Carries a result out of a transaction that must leave no trace."""

    def __init__(self, value: Any) -> None:
        super().__init__("rollback")
        self.value = value


def _reason(error: BaseException) -> str:
    text = str(getattr(error, "message", None) or error).strip()
    cause = error.__cause__
    if cause is not None and str(cause).strip() and str(cause).strip() not in text:
        text = f"{text} ({str(cause).strip()})"
    return " ".join(text.split())


# -- check-config -----------------------------------------------------------------
@command(
    "check-config",
    "Check the configuration, the database and the storage as the service would; "
    "changes nothing. Exit 0 when the service can start, 1 when the database or storage "
    "is unusable, 2 when the configuration itself is invalid.",
)
def check_config(args: argparse.Namespace) -> int:
    from ..app import database_failure
    from ..config import config_path_from_environment

    source = args.config or config_path_from_environment()
    config = load_config(args.config)  # ConfigError: exit 2, one line, from main()
    if source is None:
        print(
            "hatrac: warning: no config file found (no --config, $HATRAC_CONFIG unset, no "
            f"~/hatrac_config.json); the built-in defaults would serve a store in "
            f"{config.data_directory}, which may not be the store your server reads",
            file=sys.stderr,
        )
    print(f"config: {source or 'built-in defaults (no config file found)'}: valid")
    problems = 0
    try:
        storage = open_storage(config)
        storage.check()
        where = config.storage_path if config.storage_backend == "filesystem" else ""
        print(f"storage: {config.storage_backend} {where}: writable".replace("  ", " "))
    except Exception as error:
        problems += 1
        print(f"hatrac: storage: {_reason(error)}", file=sys.stderr)
    directory = None
    try:
        directory = directory_from_config(config)
        directory.ping()

        def probe(tx: Transaction) -> NoReturn:
            raise _Rollback([migration.name for migration in pending_migrations(tx)])

        try:
            directory.run(probe, write=True, serializable=False)
            pending: list[str] = []
        except _Rollback as result:
            pending = result.value
        state = "schema up to date"
        if pending:
            state = (
                f"schema needs {', '.join(pending)}; the service applies it at startup, "
                "or run 'hatrac init-db'"
            )
        print(f"database: reachable; {state}")
    except Exception as error:
        problems += 1
        print(f"hatrac: {database_failure(config, error)}", file=sys.stderr)
    finally:
        if directory is not None:
            directory.close()
    return EXIT_FAILED if problems else EXIT_OK


# -- verify ---------------------------------------------------------------------
@dataclass
class Finding:
    """One version whose stored bytes do not match what the directory recorded."""

    url: str
    storage_key: str
    problem: str  # "missing" or "different"
    detail: str
    expected: dict = field(default_factory=dict)
    found: dict = field(default_factory=dict)


def _live_versions(
    directory: Directory, subtree: str, page: int = 1000
) -> tuple[int, int, Iterator[ObjectVersion]]:
    """(count, bytes, iterator) of every live version (forwarders of renamed versions
    excluded) at or under ``subtree``, fetched a page at a time (memory stays flat)."""

    def totals(tx: Transaction) -> tuple[int, int]:
        if subtree != ROOT:
            top = tx.get_name(subtree)
            if top is None or top.deleted:
                raise LookupError(subtree)
        return tx.subtree_version_totals(subtree)

    count, size = directory.run(totals)

    def pages() -> Iterator[ObjectVersion]:
        after = 0
        while True:
            batch = directory.run(
                lambda tx: tx.subtree_versions_page(subtree, after, page)  # noqa: B023
            )
            yield from batch
            if len(batch) < page:
                return
            after = batch[-1].id

    return count, size, pages()


def verify_version(
    storage: Storage, version: ObjectVersion, prefix: str, computed: Optional[dict] = None
) -> Optional[Finding]:
    """Re-hash one version's bytes; a Finding when they are missing or differ.

    ``computed``, when given, receives the digests found (base64).
    """
    url = resource_url(prefix, version.name, version.version)
    expected = {"size": version.size}
    if version.content_md5:
        expected["content-md5"] = version.content_md5
    if version.content_sha256:
        expected["content-sha256"] = version.content_sha256
    try:
        if not storage.exists(version.storage_key):
            return Finding(url, version.storage_key, "missing", "no bytes stored", expected)
        digests = storage.hash_stored(version.storage_key, version.size)
    except (StorageError, OSError) as error:
        return Finding(url, version.storage_key, "missing", _reason(error), expected)
    found = {"size": digests.size, "content-md5": digests.md5_b64}
    found["content-sha256"] = digests.sha256_b64
    if computed is not None:
        computed.update(found)
    different = [key for key, value in expected.items() if found.get(key) != value]
    if different:
        return Finding(
            url,
            version.storage_key,
            "different",
            "stored bytes differ in " + ", ".join(different),
            expected,
            {key: found[key] for key in expected},
        )
    return None


def _verify_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "path",
        nargs="?",
        default=None,
        help="verify only this namespace or object (a URL path such as /hatrac/ns)",
    )
    parser.add_argument(
        "--json", action="store_true", help="write one JSON report to standard output"
    )
    parser.add_argument(
        "--fill-digests",
        action="store_true",
        help="record the MD5 and SHA-256 of versions that have none (imported from "
        "upstream Hatrac, which stored digests only when clients sent them)",
    )


@command(
    "verify",
    "Re-hash the stored bytes of every live version and report those whose bytes are "
    "missing or differ from the recorded size and checksums (exit 1 when any).",
    _verify_arguments,
)
def verify(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    warn_if_new_default_store(args, config)
    subtree = ROOT
    if args.path:
        subtree = _name_of(config, args.path)
        if subtree is None:
            return EXIT_USAGE
    storage, directory = _open(config)
    started = time.monotonic()
    try:
        try:
            _, total, versions = _live_versions(directory, subtree)
        except LookupError:
            print(f"hatrac: verify: {args.path} does not exist", file=sys.stderr)
            return EXIT_FAILED
        findings: list[Finding] = []
        checked_bytes = 0
        filled = 0
        checked = 0
        with _progress(total, description="verify") as bar:
            for version in versions:
                checked += 1
                computed: dict = {}
                finding = verify_version(storage, version, config.service_prefix, computed)
                if (
                    finding is None
                    and args.fill_digests
                    and not (version.content_md5 and version.content_sha256)
                ):
                    _fill_digests(directory, version.id, computed)
                    filled += 1
                if finding is not None:
                    findings.append(finding)
                    if not args.json:
                        bar.write(f"{finding.problem.upper()} {finding.url}: {finding.detail}")
                checked_bytes += version.size
                bar.update(version.size)
    finally:
        directory.close()
    seconds = round(time.monotonic() - started, 3)
    if args.json:
        report = {
            "checked": checked,
            "bytes": checked_bytes,
            "seconds": seconds,
            "ok": checked - len(findings),
            "missing": sum(1 for f in findings if f.problem == "missing"),
            "different": sum(1 for f in findings if f.problem == "different"),
            "problems": [asdict(finding) for finding in findings],
        }
        if args.fill_digests:
            report["digests_filled"] = filled
        print(json.dumps(report, indent=2))
    else:
        print(
            f"verified {checked} versions ({checked_bytes} bytes) in {seconds}s: "
            f"{checked - len(findings)} ok, {len(findings)} with problems"
        )
    return EXIT_FAILED if findings else EXIT_OK


def _fill_digests(directory: Directory, version_id: int, computed: dict) -> None:
    """Record digests computed from verified bytes where none is recorded."""
    from ..model.directory.upstream import set_digests

    directory.run(
        lambda tx: set_digests(tx, version_id, computed["content-md5"], computed["content-sha256"]),
        write=True,
    )


def _name_of(config: Config, path: str) -> Optional[str]:
    """The directory name of a URL path given on the command line."""
    from ..urls import PathParser

    prefix = config.service_prefix
    raw = path if path.startswith("/") else "/" + path
    if prefix and raw.startswith(prefix + "/"):
        raw = raw[len(prefix) :]
    elif raw == prefix:
        raw = "/"
    parser = PathParser(
        config.allowed_url_char_class,
        config.max_segment_length,
        config.max_name_length,
        legacy_names=config.legacy_names,
    )
    try:
        parsed = parser.parse(raw)
    except Exception as error:
        print(f"hatrac: {path} is not a valid name: {_reason(error)}", file=sys.stderr)
        return None
    if parsed.version is not None or parsed.subresource is not None:
        print(f"hatrac: give a namespace or object path, not {path}", file=sys.stderr)
        return None
    return parsed.name


def _open(config: Config) -> tuple[Storage, Directory]:
    """Storage and directory as the service opens them, with one-line failures."""
    from ..app import database_failure

    try:
        storage = open_storage(config)
    except Exception as error:
        raise StartupError(f"storage: {_reason(error)}") from error
    try:
        directory = directory_from_config(config)
        directory.initialize(config.root_acls)
    except Exception as error:
        raise StartupError(database_failure(config, error)) from error
    storage.use_table(InlineBytes(directory))  # small versions are kept in the database
    return storage, directory


# -- gc -------------------------------------------------------------------------
def _gc_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--delete",
        action="store_true",
        help="really delete (without it, gc only reports what it would remove)",
    )
    parser.add_argument(
        "--grace",
        type=int,
        default=None,
        metavar="SECONDS",
        help="leave unreferenced bytes younger than this (default: orphan_grace_secs)",
    )
    parser.add_argument("--json", action="store_true", help="write a JSON report to stdout")


@command(
    "gc",
    "Remove expired upload jobs and stored bytes no version refers to. Reports only, "
    "unless --delete is given.",
    _gc_arguments,
)
def gc(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    warn_if_new_default_store(args, config)
    grace = config.orphan_grace_secs if args.grace is None else args.grace
    if grace < 0:
        raise ConfigError("--grace must not be negative")
    storage, directory = _open(config)
    report: dict[str, Any] = {"deleted": bool(args.delete), "grace_secs": grace}
    status = EXIT_OK
    try:
        report["upload_jobs"] = _expire_jobs(config, storage, directory, args.delete)
        live = directory.run(lambda tx: tx.all_storage_keys())
        older_than = time.time() - grace
        # the dry run reports exactly what --delete removes: the same search
        found = storage.find_orphans(live, older_than)
        if args.delete:
            for category, keys in found.items():
                for key in keys:
                    storage.remove_orphan(category, key)
        count = sum(len(keys) for keys in found.values())
        verb = "removed" if args.delete else "would_remove"
        report["orphans"] = {
            verb: count,
            "by_category": {category: len(keys) for category, keys in found.items()},
            "keys": sorted(key for keys in found.values() for key in keys),
        }
    except StorageError as error:
        print(f"hatrac: gc: storage: {_reason(error)}", file=sys.stderr)
        status = EXIT_FAILED
    finally:
        directory.close()
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        jobs = report.get("upload_jobs", {})
        orphans = report.get("orphans", {})
        verb = "removed" if args.delete else "would remove"
        print(f"upload jobs: {verb} {jobs.get('count', 0)} expired ({jobs.get('note', '')})")
        count = orphans.get("removed", orphans.get("would_remove"))
        detail = ", ".join(f"{n} {c}" for c, n in orphans.get("by_category", {}).items())
        print(f"orphaned bytes: {verb} {count if count is not None else 'unknown'} ({detail})")
        lost = jobs.get("lost_storage")
        if lost is not None:
            print(f"storage of lost upload jobs: {verb} {lost}")
        if not args.delete:
            print("nothing was deleted; run again with --delete to delete")
    return status


def _expire_jobs(config: Config, storage: Storage, directory: Directory, delete: bool) -> dict:
    """Expired (or cancelled) upload jobs: counted, or removed with their storage."""
    from ..model.service import Hatrac

    model = Hatrac(config, directory, storage)
    if getattr(model, "sweep_jobs", None) is None:
        return {"count": 0, "note": "this version keeps no upload jobs"}
    note = f"idle over {config.upload_job_expiry_secs}s or cancelled"
    if delete:
        removed = model.sweep_jobs(limit=10**9)
        lost = model.sweep_lost_job_storage()
        return {"count": len(removed), "lost_storage": len(lost), "note": note}
    from ..model.directory import uploads as job_rows

    idle_before = time.time() - config.upload_job_expiry_secs
    expired = directory.run(lambda tx: job_rows.expired_jobs(tx, idle_before, 10**9))
    lost = model.find_lost_job_storage()
    return {"count": len(expired), "lost_storage": len(lost), "note": note}


__all__ = ["check_config", "gc", "verify", "verify_version", "EXIT_USAGE"]
