"""Directories and namespaces: recursive put and get, walks, and sync.

A local tree maps onto a namespace name for name: a directory is a
namespace, a file an object (names percent-encoded on the way up, decoded
on the way down; a remote name that cannot be a local file name, such as
one containing ``/`` or ``..``, is refused rather than written elsewhere).
Files move ``jobs`` at a time. ``sync`` copies only what differs by size or
checksum (SHA-256, else MD5), optionally deletes what the source lacks, and
with ``dry_run`` only says what it would do.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Iterator, Optional

from .download import PART_SUFFIX
from .hashing import file_digests
from .http import EXIT_CONFLICT, Connection, HatracError
from .locations import RemotePath, from_url, relative_name
from .output import Output
from .transfer import NAMESPACE_TYPE, PutOptions, describe, get_file, put_file

if TYPE_CHECKING:
    from .output import Bar


@dataclass
class Tally:
    """What a recursive command did; failures are kept, the rest goes on."""

    files: int = 0
    bytes: int = 0
    skipped: int = 0
    deleted: int = 0
    errors: list = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, files: int = 0, size: int = 0, skipped: int = 0, deleted: int = 0) -> None:
        with self._lock:
            self.files += files
            self.bytes += size
            self.skipped += skipped
            self.deleted += deleted

    def as_json(self) -> dict:
        return {
            "files": self.files,
            "bytes": self.bytes,
            "skipped": self.skipped,
            "deleted": self.deleted,
            "errors": len(self.errors),
        }


# -- namespaces -----------------------------------------------------------------------
def make_namespace(conn: Connection, target: RemotePath, parents: bool, exist_ok: bool) -> bool:
    """Create a namespace; True if made, False if it was there (with ``exist_ok``)."""
    response = conn.request(
        "PUT",
        target.path + ("?parents=true" if parents else ""),
        headers={"Content-Type": NAMESPACE_TYPE},
        data=b"",
        ok=(201, 409),
    )
    if response.status_code == 201:
        return True
    if exist_ok:
        found = describe(conn, target)
        if found and found["kind"] == "namespace":
            return False
    raise conn.error_from(response)


def ensure_namespace(conn: Connection, target: RemotePath) -> None:
    """Make sure a namespace exists (with parents). One may be allowed to create in a
    namespace (a drop box) without the right to look at it or to create it: then a
    409 "exists" is taken as there, and the PUTs into it say the rest."""
    response = conn.request(
        "PUT",
        target.path + "?parents=true",
        headers={"Content-Type": NAMESPACE_TYPE},
        data=b"",
        ok=(201, 401, 403, 409),
    )
    if response.status_code == 201:
        return
    refused = conn.error_from(response)
    try:
        found = describe(conn, target)
    except HatracError as error:
        if response.status_code == 409 and error.status in (401, 403):
            return
        raise refused from None
    if not found or found["kind"] != "namespace":
        raise refused


def walk_remote(conn: Connection, root: RemotePath, jobs: int = 4) -> Iterator[tuple[str, dict]]:
    """``(url path, describe())`` of every namespace and object beneath ``root``
    (namespaces before their contents), described ``jobs`` at a time."""
    pending = [root]
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        while pending:
            namespace = pending.pop(0)
            children = [from_url(conn.origin + path) for path in conn.listing(namespace)]
            for child, info in zip(children, pool.map(lambda c: describe(conn, c), children)):
                if info is None:  # deleted meanwhile
                    continue
                yield child.path, info
                if info["kind"] == "namespace":
                    pending.append(child)


def walk_local(root: str) -> Iterator[tuple[list[str], bool]]:
    """``(relative parts, is_dir)`` of every directory and file beneath ``root``,
    directories first, in name order; partial downloads are skipped."""
    for directory, subdirectories, files in os.walk(root):
        subdirectories.sort()
        base = os.path.relpath(directory, root)
        parts = [] if base == "." else base.split(os.sep)
        for name in subdirectories:
            yield parts + [name], True
        for name in sorted(files):
            if name.endswith(PART_SUFFIX) or name.endswith(PART_SUFFIX + ".json"):
                continue
            yield parts + [name], False


def _remote_at(root: RemotePath, parts: list[str]) -> RemotePath:
    target = root
    for part in parts:
        target = target.child(part)
    return target


def safe_local_parts(parts: list[str]) -> list[str]:
    for part in parts:
        if part in ("", ".", "..") or "/" in part or "\0" in part or os.sep in part:
            raise HatracError(f"the remote name {part!r} cannot be a local file name")
    return parts


def _run_all(jobs: int, tasks: list[Callable[[], None]], tally: Tally, output: Output) -> None:
    def guarded(task: Callable[[], None]) -> None:
        try:
            task()
        except HatracError as error:
            with tally._lock:
                tally.errors.append(error)
            output.error(str(error), error.as_json())
        except OSError as error:
            failure = HatracError(str(error))
            with tally._lock:
                tally.errors.append(failure)
            output.error(str(failure))

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        list(pool.map(guarded, tasks))


# -- recursive put and get --------------------------------------------------------------
def put_tree(
    conn: Connection, local: str, root: RemotePath, options: PutOptions, output: Output, jobs: int
) -> Tally:
    """Upload a directory into the namespace ``root`` (made, with parents)."""
    tally = Tally()
    ensure_namespace(conn, root)
    files = []
    for parts, is_dir in walk_local(local):
        if is_dir:
            ensure_namespace(conn, _remote_at(root, parts))
        else:
            files.append(parts)
    total = sum(os.path.getsize(os.path.join(local, *p)) for p in files)
    with output.bar(total, "total", position=None) as total_bar:
        tasks = [_put_task(conn, local, root, p, options, output, tally, total_bar) for p in files]
        _run_all(jobs, tasks, tally, output)
    return tally


def _put_task(
    conn: Connection,
    local: str,
    root: RemotePath,
    parts: list[str],
    options: PutOptions,
    output: Output,
    tally: Tally,
    total_bar: Bar,
) -> Callable[[], None]:
    def task() -> None:
        path = os.path.join(local, *parts)
        result = put_file(conn, path, _remote_at(root, parts), options, output, total_bar)
        tally.add(files=1, size=result["size"])
        output.result(result, f"{path} -> {result['version']}")

    return task


def get_tree(
    conn: Connection,
    root: RemotePath,
    local: str,
    output: Output,
    jobs: int,
    streams: int = 4,
    fsync: bool = False,
) -> Tally:
    """Download the namespace ``root`` into the directory ``local``."""
    tally = Tally()
    os.makedirs(local, exist_ok=True)
    objects = []
    for path, info in walk_remote(conn, root, jobs):
        parts = safe_local_parts(relative_name(root, path))
        if info["kind"] == "namespace":
            os.makedirs(os.path.join(local, *parts), exist_ok=True)
        elif info.get("version") is not None:
            objects.append((path, parts, info))
    total = sum(info["size"] for _, _, info in objects)
    with output.bar(total, "total") as total_bar:
        tasks = [
            _get_task(conn, path, local, parts, info, output, tally, total_bar, streams, fsync)
            for path, parts, info in objects
        ]
        _run_all(jobs, tasks, tally, output)
    return tally


def _get_task(
    conn: Connection,
    path: str,
    local: str,
    parts: list[str],
    info: dict,
    output: Output,
    tally: Tally,
    total_bar: Bar,
    streams: int,
    fsync: bool,
) -> Callable[[], None]:
    def task() -> None:
        dest = os.path.join(local, *parts)
        target = from_url(conn.origin + path)
        result = get_file(conn, target, dest, output, info, total_bar, streams, fsync=fsync)
        tally.add(files=1, size=result["size"])
        output.result(result, f"{target.display()} -> {dest}")

    return task


# -- sync -----------------------------------------------------------------------------
def _same(local_path: str, info: Optional[dict]) -> bool:
    """Whether a local file has the size and checksum of a remote object."""
    if info is None or info.get("kind") != "object" or info.get("version") is None:
        return False
    if os.path.getsize(local_path) != info["size"]:
        return False
    digests = file_digests(local_path, md5=not info.get("content-sha256"))
    if info.get("content-sha256"):
        return digests["sha256"] == info["content-sha256"]
    return info.get("content-md5") is not None and digests.get("md5") == info["content-md5"]


def sync_up(
    conn: Connection,
    local: str,
    root: RemotePath,
    options: PutOptions,
    output: Output,
    jobs: int,
    delete: bool = False,
    dry_run: bool = False,
) -> Tally:
    """Make the namespace ``root`` hold what the directory ``local`` holds."""
    tally = Tally()
    exists = describe(conn, root)
    remote: dict[tuple, dict] = {}
    if exists is not None:
        if exists["kind"] != "namespace":
            raise HatracError(f"{root.display()} is an object", exit_code=EXIT_CONFLICT)
        for path, info in walk_remote(conn, root, jobs):
            remote[tuple(relative_name(root, path))] = info
    elif not dry_run:
        make_namespace(conn, root, parents=True, exist_ok=True)
    local_entries = list(walk_local(local))
    tasks = []
    for parts, is_dir in local_entries:
        info = remote.get(tuple(parts))
        target = _remote_at(root, parts)
        if is_dir:
            if info is None:
                _act(output, "mkdir", target.display(), dry_run)
                if not dry_run:
                    make_namespace(conn, target, parents=True, exist_ok=True)
            continue
        tasks.append(_sync_up_task(conn, local, parts, info, target, options, output, tally))
    if dry_run:
        for task in tasks:
            task(dry_run=True)
    else:
        _run_all(jobs, tasks, tally, output)
    if delete:
        present = {tuple(parts) for parts, _ in local_entries}
        gone = [parts for parts in remote if parts not in present]
        # topmost first: deleting a namespace deletes what it holds
        for parts in sorted(gone, key=len):
            if any(parts[:n] in gone and parts[:n] != parts for n in range(1, len(parts))):
                continue
            target = _remote_at(root, list(parts))
            _act(output, "delete", target.display(), dry_run)
            if not dry_run:
                conn.request("DELETE", target.path, ok=(204, 200, 404))
            tally.add(deleted=1)
    return tally


def _act(output: Output, action: str, what: str, dry_run: bool) -> None:
    record = {"action": action, "target": what, "dry-run": dry_run}
    output.result(record, f"{'would ' if dry_run else ''}{action} {what}")


def _sync_up_task(
    conn: Connection,
    local: str,
    parts: list[str],
    info: Optional[dict],
    target: RemotePath,
    options: PutOptions,
    output: Output,
    tally: Tally,
) -> Callable[..., None]:
    def task(dry_run: bool = False) -> None:
        path = os.path.join(local, *parts)
        if _same(path, info):
            tally.add(skipped=1)
            return
        if dry_run:
            _act(output, "put", f"{path} -> {target.display()}", True)
            return
        result = put_file(conn, path, target, options, output)
        tally.add(files=1, size=result["size"])
        output.result(result, f"{path} -> {result['version']}")

    return task


def sync_down(
    conn: Connection,
    root: RemotePath,
    local: str,
    output: Output,
    jobs: int,
    delete: bool = False,
    dry_run: bool = False,
    fsync: bool = False,
) -> Tally:
    """Make the directory ``local`` hold what the namespace ``root`` holds."""
    tally = Tally()
    if not dry_run:
        os.makedirs(local, exist_ok=True)
    wanted = set()
    tasks = []
    for path, info in walk_remote(conn, root, jobs):
        parts = safe_local_parts(relative_name(root, path))
        wanted.add(tuple(parts))
        dest = os.path.join(local, *parts)
        if info["kind"] == "namespace":
            if not os.path.isdir(dest) and not dry_run:
                os.makedirs(dest, exist_ok=True)
            continue
        if info.get("version") is None:
            continue

        def task(path: str = path, dest: str = dest, info: dict = info) -> None:
            if os.path.isfile(dest) and _same(dest, info):
                tally.add(skipped=1)
                return
            if dry_run:
                _act(output, "get", f"{path} -> {dest}", True)
                return
            result = get_file(conn, from_url(conn.origin + path), dest, output, info, fsync=fsync)
            tally.add(files=1, size=result["size"])
            output.result(result, f"{path} -> {dest}")

        tasks.append(task)
    _run_all(1 if dry_run else jobs, tasks, tally, output)
    if delete and os.path.isdir(local):
        for parts, is_dir in sorted(walk_local(local), key=lambda e: -len(e[0])):
            if tuple(parts) in wanted:
                continue
            path = os.path.join(local, *parts)
            _act(output, "delete", path, dry_run)
            if not dry_run:
                os.rmdir(path) if is_dir else os.unlink(path)
            tally.add(deleted=1)
    return tally
