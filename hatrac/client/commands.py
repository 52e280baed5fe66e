"""The object-store commands: each takes parsed arguments, returns an exit code.

They are thin: the work is in :mod:`.transfer` and :mod:`.trees`. A command
that reads a remote gets a :class:`~.http.Connection` for that server from
:func:`hatrac.client.cli.connect`.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Optional, Union
from urllib.parse import quote

from . import settings
from .http import EXIT_CONFLICT, EXIT_USAGE, Connection, HatracError, urlpath
from .locations import RemotePath, from_url, relative_name, rename_source_name
from .output import Output
from .transfer import PutOptions, describe, get_file, put_file
from .trees import Tally, get_tree, make_namespace, put_tree, sync_down, sync_up, walk_remote

Connect = Callable[[RemotePath], Connection]


def usage(text: str) -> HatracError:
    return HatracError(text, exit_code=EXIT_USAGE)


def tally_code(tally: Tally, output: Output, what: str) -> int:
    output.result({"summary": what, **tally.as_json()}, None)
    output.info(
        f"{what}: {tally.files} file(s), {tally.bytes} bytes"
        + (f", {tally.skipped} unchanged" if tally.skipped else "")
        + (f", {tally.deleted} deleted" if tally.deleted else "")
        + (f", {len(tally.errors)} FAILED" if tally.errors else "")
    )
    codes = {error.exit_code for error in tally.errors}
    return 0 if not codes else (codes.pop() if len(codes) == 1 else 1)


def _entry_text(info: dict, name: str, long: bool) -> str:
    if not long:
        return name + ("/" if info["kind"] == "namespace" else "")
    if info["kind"] == "namespace":
        return f"{'namespace':9} {'-':>12} {'-':24} {'-':29} {name}/"
    return (
        f"{'object':9} {info.get('size') if info.get('size') is not None else '-':>12} "
        f"{(info.get('content-type') or '-')[:24]:24} {info.get('last-modified') or '-':29} "
        f"{name}  {info.get('version') or '(no current version)'}"
    )


def cmd_ls(conn: Connection, target: RemotePath, args: argparse.Namespace, output: Output) -> int:
    info = describe(conn, target)
    if info is None:
        raise HatracError(f"{target.display()} does not exist", 404)
    long = args.long or args.versions
    if info["kind"] == "object":
        entries = [(target.path, info)]
    elif args.recursive:
        entries = list(walk_remote(conn, target, args.jobs))
    else:
        paths = conn.listing(target)
        children = [from_url(conn.origin + p) for p in paths]
        if long:
            with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
                described = list(pool.map(lambda c: describe(conn, c), children))
        else:
            described = [{"kind": "unknown"} for _ in children]
        entries = [(c.path, d) for c, d in zip(children, described) if d is not None]
    for path, found in entries:
        if info["kind"] == "object":
            name = target.basename
        else:
            name = "/".join(relative_name(target, path))
        record = {"name": name, "url": path, **{k: v for k, v in found.items() if k != "url"}}
        if found["kind"] == "unknown":
            record.pop("kind")
            output.result(record, name)
        else:
            output.result(record, _entry_text(found, name, long))
        if args.versions and found["kind"] == "object":
            for version in _versions(conn, from_url(conn.origin + path)):
                output.result({"name": name, "version-url": version}, f"    {version}")
    return 0


def _versions(conn: Connection, target: RemotePath) -> list[str]:
    found = conn.get_json(target.path + ";versions")
    return [urlpath(str(v)) for v in found] if isinstance(found, list) else []


def cmd_versions(
    conn: Connection, target: RemotePath, args: argparse.Namespace, output: Output
) -> int:
    for version in _versions(conn, target):
        output.result({"version-url": version}, version)
    return 0


def cmd_stat(conn: Connection, target: RemotePath, args: argparse.Namespace, output: Output) -> int:
    info = describe(conn, target)
    if info is None:
        raise HatracError(f"{target.display()} does not exist", 404)
    record = {"name": target.display(), **info}
    text = "\n".join(f"{key}: {value}" for key, value in record.items() if value is not None)
    output.result(record, text)
    return 0


def put_options(args: argparse.Namespace) -> PutOptions:
    return PutOptions(
        parents=getattr(args, "parents", False) or getattr(args, "recursive", False),
        content_type=getattr(args, "content_type", None),
        threshold=args.threshold,
        chunk_size=args.chunk_size,
        streams=args.streams,
        resume=not args.no_resume,
        chunk_digest=None if args.chunk_digest == "none" else args.chunk_digest,
    )


def cmd_put(
    conn: Connection, source: str, target: RemotePath, args: argparse.Namespace, output: Output
) -> int:
    options = put_options(args)
    if args.recursive:
        if not os.path.isdir(source):
            raise usage(f"{source} is not a directory")
        return tally_code(put_tree(conn, source, target, options, output, args.jobs), output, "put")
    if os.path.isdir(source):
        raise usage(f"{source} is a directory; use put -r")
    spool = None
    if source == "-":
        # stdin has no size and cannot be re-read for a retry: spool it to disk first
        spool = tempfile.NamedTemporaryFile(prefix="hatrac-stdin-", delete=False)
        with spool:
            shutil.copyfileobj(sys.stdin.buffer, spool, 1024 * 1024)
        local = spool.name
    else:
        local = source
    try:
        if target.trailing_slash or (source != "-" and _is_namespace(conn, target)):
            if source == "-":
                raise usage("give the object's name to put stdin")
            target = target.child(os.path.basename(source))
        result = put_file(conn, local, target, options, output)
    finally:
        if spool is not None:
            os.unlink(spool.name)
    result["source"] = source
    output.result(result, result["version"])
    return 0


def _is_namespace(conn: Connection, target: RemotePath) -> bool:
    """Whether ``target`` is a namespace; unknown (no right to look) counts as no."""
    try:
        return (describe(conn, target) or {}).get("kind") == "namespace"
    except HatracError as error:
        if error.status in (401, 403):
            return False
        raise


def cmd_get(
    conn: Connection,
    target: RemotePath,
    dest: Optional[str],
    args: argparse.Namespace,
    output: Output,
) -> int:
    if args.recursive:
        dest = dest or target.basename or "hatrac"
        return tally_code(
            get_tree(conn, target, dest, output, args.jobs, args.streams, args.fsync),
            output,
            "get",
        )
    if dest is None:
        dest = target.basename
    elif dest != "-" and os.path.isdir(dest):
        dest = os.path.join(dest, target.basename)
    result = get_file(
        conn,
        target,
        dest,
        output,
        streams=args.streams,
        part_size=args.part_size,
        fsync=args.fsync,
    )
    output.result(result, None if dest == "-" else f"{target.display()} -> {dest}")
    return 0


def cmd_mkdir(
    conn: Connection, target: RemotePath, args: argparse.Namespace, output: Output
) -> int:
    made = make_namespace(conn, target, parents=args.parents, exist_ok=args.parents)
    output.result({"action": "mkdir", "target": target.path, "created": made}, None)
    return 0


def _confirm(question: str, args: argparse.Namespace) -> None:
    if args.yes:
        return
    if not sys.stdin.isatty():
        raise usage(f"{question}: not confirmed (no terminal); add --yes")
    answer = input(f"{question}? [y/N] ").strip().lower()
    if answer not in ("y", "yes"):
        raise HatracError("not confirmed; nothing deleted", exit_code=1)


def cmd_rm(conn: Connection, target: RemotePath, args: argparse.Namespace, output: Output) -> int:
    info = describe(conn, target)
    if info is None:
        raise HatracError(f"{target.display()} does not exist", 404)
    if info["kind"] == "namespace" and not args.recursive:
        raise HatracError(
            f"{target.display()} is a namespace; use rm -r to delete it and everything in it",
            exit_code=EXIT_CONFLICT,
        )
    what = {
        "namespace": "the namespace {} and everything in it",
        "object": "the object {} and all its versions",
    }[info["kind"]]
    if target.version:
        what = "the version {}"
    _confirm("delete " + what.format(target.display()), args)
    conn.request("DELETE", target.resource, ok=(200, 204))
    output.result({"action": "rm", "target": target.resource}, None)
    return 0


def cmd_mv(
    conn: Connection,
    source: RemotePath,
    target: RemotePath,
    args: argparse.Namespace,
    output: Output,
) -> int:
    if source.origin != target.origin:
        raise usage("mv renames within one server; use get and put across servers")
    body = {
        "command": "rename_from",
        "source_name": rename_source_name(source.path),
        "copy_acls": args.copy_acls,
    }
    if source.version:
        body["source_versions"] = [source.version]
    query = "?parents=true" if args.parents else ""
    response = conn.request("POST", target.path + query, json_body=body, ok=(200, 201, 204))
    versions = [urlpath(line.strip()) for line in response.text.splitlines() if line.strip()]
    output.result(
        {"action": "mv", "source": source.resource, "versions": versions},
        "\n".join(versions) or None,
    )
    return 0


def cmd_acl(conn: Connection, target: RemotePath, args: argparse.Namespace, output: Output) -> int:
    base = target.sub(";acl")
    if args.action == "show":
        if args.access:
            found = conn.get_json(base + "/" + quote(args.access, safe=""))
            output.result({"access": args.access, "roles": found}, "\n".join(found))
        else:
            found = conn.get_json(base)
            for access, roles in found.items():
                output.result({"access": access, "roles": roles}, f"{access}: {', '.join(roles)}")
        return 0
    if not args.access:
        raise usage(f"acl {args.action} needs an access mode (owner, read, create, ...)")
    access = base + "/" + quote(args.access, safe="")
    if args.action == "set":
        conn.request("PUT", access, json_body=list(args.roles), ok=(200, 204))
    elif args.action == "add":
        if not args.roles:
            raise usage("acl add needs one or more roles")
        for role in args.roles:
            conn.request("PUT", access + "/" + quote(role, safe=""), data=b"", ok=(200, 201, 204))
    elif args.roles:
        for role in args.roles:
            conn.request("DELETE", access + "/" + quote(role, safe=""), ok=(200, 204))
    else:
        conn.request("DELETE", access, ok=(200, 204))
    output.result(
        {
            "action": "acl " + args.action,
            "target": target.resource,
            "access": args.access,
            "roles": args.roles,
        },
        None,
    )
    return 0


META_FIELDS = ("content-type", "content-disposition", "content-md5", "content-sha256")


def cmd_meta(conn: Connection, target: RemotePath, args: argparse.Namespace, output: Output) -> int:
    base = target.sub(";metadata")
    if args.action == "show":
        found = conn.get_json(base)
        output.result(found, "\n".join(f"{k}: {v}" for k, v in found.items()))
        return 0
    if args.field not in META_FIELDS:
        raise usage(f"the metadata fields are {', '.join(META_FIELDS)}")
    if args.action == "set":
        if args.value is None:
            raise usage("meta set needs a value")
        conn.request(
            "PUT",
            f"{base}/{args.field}",
            data=args.value.encode("utf-8"),
            headers={"Content-Type": "text/plain"},
            ok=(200, 204),
        )
    else:
        conn.request("DELETE", f"{base}/{args.field}", ok=(200, 204))
    output.result({"action": "meta " + args.action, "field": args.field, "value": args.value}, None)
    return 0


def cmd_jobs(conn: Connection, target: RemotePath, args: argparse.Namespace, output: Output) -> int:
    if args.action == "cancel":
        if ";upload/" in target.path:
            urls = [target.path]
        elif args.job:
            urls = [f"{target.path};upload/{job}" for job in args.job]
        else:
            urls = _job_urls(conn, target)
        for url in urls:
            conn.request("DELETE", url, ok=(200, 204))
            settings.forget_job(conn.origin, target.path.split(";", 1)[0], url)
            output.result({"action": "cancel", "job": url}, f"cancelled {url}")
        return 0
    for url in _job_urls(conn, target):
        try:
            status = conn.get_json(url)
        except HatracError as error:
            if error.status == 404:  # a remembered job that ended elsewhere
                settings.forget_job(conn.origin, target.path, url)
                continue
            raise
        received = status.get("chunks-received")
        count = status.get("chunk-count")
        progress = f"{len(received)}/{count} chunks" if isinstance(received, list) else "?"
        output.result(
            {"job": url, **status}, f"{url}  {status.get('content-length')} bytes  {progress}"
        )
    return 0


def _job_urls(conn: Connection, target: RemotePath) -> list[str]:
    """The server's list of one's jobs on ``target``, and those this client remembers
    making there (the only way to know an anonymous client's jobs)."""
    remembered = settings.remembered_jobs(conn.origin, target.path)
    try:
        found = conn.get_json(target.path + ";upload")
    except HatracError as error:
        if error.status in (401, 403) and remembered:
            return remembered  # e.g. anonymous: not allowed to list, but knows its jobs
        raise
    listed = [urlpath(str(u)) for u in found] if isinstance(found, list) else []
    return list(dict.fromkeys(listed + remembered))


def cmd_sync(
    conn: Connection,
    source: Union[str, RemotePath],
    target: Union[str, RemotePath],
    args: argparse.Namespace,
    output: Output,
) -> int:
    if isinstance(source, RemotePath):
        tally = sync_down(
            conn, source, target, output, args.jobs, args.delete, args.dry_run, args.fsync
        )
    else:
        if not os.path.isdir(source):
            raise usage(f"{source} is not a directory")
        options = put_options(args)
        tally = sync_up(conn, source, target, options, output, args.jobs, args.delete, args.dry_run)
    return tally_code(tally, output, "sync")
