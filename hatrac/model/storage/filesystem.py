"""Filesystem storage: one file per stored byte sequence, written durably.

Layout under ``storage_path``::

    objects/AB/CD/KEY     committed bytes (AB, CD: first characters of KEY)
    tmp/                  bodies being received; same filesystem, so rename is atomic
    jobs/                 sparse files of chunked upload jobs

A body is streamed into ``tmp/`` while MD5 and SHA-256 are computed in the
same pass, the file is fsynced, renamed into ``objects/``, and the directory
fsynced: only then may the model commit the directory row. Readers get a
real file object, so the WSGI server can use sendfile.
"""

from __future__ import annotations

import errno
import os
import time
from pathlib import Path
from typing import Iterable, Optional

from .base import Body, Digests, Staged, Storage, StorageError


def fsync_directory(path: Path) -> None:
    """Persist a directory entry (a rename or a new file) across a crash."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class FilesystemStorage(Storage):
    """Bytes as files under one root directory."""

    name = "filesystem"

    def __init__(self, root: str):
        self.root = Path(root)
        self.objects = self.root / "objects"
        self.tmp = self.root / "tmp"
        self.jobs = self.root / "jobs"
        try:
            for directory in (self.objects, self.tmp, self.jobs):
                directory.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise StorageError(
                f"storage_path {self.root} cannot be created ({error.strerror}); create it and "
                "make it writable by the service account"
            ) from None

    def path_of(self, key: str) -> Path:
        if "/" in key or key in ("", ".", ".."):
            raise ValueError(f"invalid storage key {key!r}")
        return self.objects / key[:2] / key[2:4] / key

    def check(self) -> None:
        probe = self.tmp / f".probe-{os.getpid()}"
        try:
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as error:
            raise StorageError(
                f"storage_path {self.root} is not writable ({error.strerror}); fix its owner "
                "or permissions"
            ) from None

    # -- writing --------------------------------------------------------------
    def stage(self, key: str, blocks: Iterable[bytes]) -> Staged:
        temp = self.tmp / f"{key}.{os.getpid()}.part"
        digests = Digests()
        try:
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
        except OSError as error:
            raise StorageError(f"cannot create a file in storage: {error.strerror}") from None
        try:
            with os.fdopen(fd, "wb", buffering=0) as out:
                for block in blocks:
                    digests.update(block)
                    view = memoryview(block)
                    while view:
                        written = out.write(view)
                        view = view[written:]
                # the bytes must be on disk before the name can point at them
                os.fsync(out.fileno())
        except OSError as error:
            temp.unlink(missing_ok=True)
            raise StorageError(f"cannot write to storage: {error.strerror}") from None
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
        return Staged(key=key, size=digests.size, digests=digests, handle=temp)

    def commit(self, staged: Staged) -> None:
        final = self.path_of(staged.key)
        try:
            self._place(Path(staged.handle), final)
        except OSError as error:
            Path(staged.handle).unlink(missing_ok=True)
            raise StorageError(f"cannot store the object: {error.strerror}") from None

    def _place(self, source: Path, final: Path) -> None:
        """Rename a durable file into its final place and persist the rename."""
        shard = final.parent
        if not shard.is_dir():
            shard.mkdir(parents=True, exist_ok=True)
            fsync_directory(shard.parent)
            fsync_directory(shard.parent.parent)
        os.rename(source, final)
        # the rename itself must survive a crash before the row is committed
        fsync_directory(shard)

    def discard(self, staged: Staged) -> None:
        Path(staged.handle).unlink(missing_ok=True)

    # -- reading --------------------------------------------------------------
    def open(self, key: str, size: int, start: int = 0, length: Optional[int] = None) -> Body:
        try:
            handle = open(self.path_of(key), "rb")  # noqa: SIM115 - closed by the response
        except FileNotFoundError:
            raise StorageError(
                "The stored bytes of this version are missing; an administrator should run "
                "'hatrac verify'."
            ) from None
        except OSError as error:
            raise StorageError(f"cannot read from storage: {error.strerror}") from None
        if start:
            handle.seek(start)
        return Body(size=size if length is None else length, file=handle)

    def exists(self, key: str) -> bool:
        return self.path_of(key).exists()

    def delete(self, key: str) -> None:
        path = self.path_of(key)
        try:
            path.unlink()
        except FileNotFoundError:
            return
        except OSError as error:
            raise StorageError(f"cannot delete from storage: {error.strerror}") from None

    # -- maintenance ----------------------------------------------------------
    def sweep_orphans(self, live_keys: set[str], older_than: float) -> list[str]:
        """Delete unreferenced files last modified before ``older_than`` (epoch seconds)."""
        removed = []
        for directory in (self.tmp,):
            for entry in directory.iterdir():
                if _mtime(entry) < older_than:
                    entry.unlink(missing_ok=True)
                    removed.append(entry.name)
        for shard in self.objects.glob("*/*"):
            for entry in shard.iterdir():
                if entry.name not in live_keys and _mtime(entry) < older_than:
                    entry.unlink(missing_ok=True)
                    removed.append(entry.name)
        return removed

    def keys(self) -> Iterable[str]:
        for shard in self.objects.glob("*/*"):
            for entry in shard.iterdir():
                yield entry.name


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError as error:
        if error.errno == errno.ENOENT:
            return time.time()
        raise
