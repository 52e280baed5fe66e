"""Filesystem storage: one file per stored byte sequence, written durably.

Layout under ``storage_path``::

    objects/AB/CD/KEY     committed bytes (AB, CD: first characters of KEY)
    tmp/                  bodies being received; same filesystem, so rename is atomic
    jobs/                 sparse files of chunked upload jobs

A body is streamed into ``tmp/`` while MD5 and SHA-256 are computed in the
same pass, the file is fsynced, renamed into ``objects/``, and the directory
fsynced: only then may the model commit the directory row; a large body is
flushed while it arrives (:mod:`.writeback`). Readers get a real file
object, so the WSGI server can use sendfile.
"""

from __future__ import annotations

import errno
import fcntl
import os
import struct
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Iterator, Optional, Union

from . import hashahead
from .base import (
    Body,
    ChunkReceipt,
    Digests,
    InsufficientStorage,
    Staged,
    Storage,
    StorageError,
)
from .jobs import ChunkInterrupted, JobGone, hash_file
from .writeback import CHUNK_WRITEBACK_STEP, EarlyWriteback, start_writeback


def fsync_directory(path: Path) -> None:
    """Persist a directory entry (a rename or a new file) across a crash."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def storage_fault(action: str, error: OSError) -> StorageError:
    """The error for a failed filesystem call: 507 when the storage is full."""
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        return InsufficientStorage(
            f"The storage is full ({error.strerror}) and could not {action}; nothing was "
            "stored. Retry when an administrator has freed space."
        )
    return StorageError(f"cannot {action}: {error.strerror}")


# struct flock for F_OFD_SETLKW: l_type, l_whence, l_start, l_len, l_pid (must be 0)
_FLOCK = "hhqqi4x"


def open_file_body(path: Union[str, Path], start: int, length: int, where: str = "") -> Body:
    """``length`` bytes of a stored file from ``start``, for the WSGI server to send."""
    try:
        handle = open(path, "rb")  # noqa: SIM115 - closed by the response
    except FileNotFoundError:
        raise StorageError(
            f"The stored bytes of this version are missing{where}; an administrator should "
            "run 'hatrac verify'."
        ) from None
    except OSError as error:
        raise StorageError(f"cannot read from storage: {error.strerror}") from None
    if start:
        handle.seek(start)
    return Body(size=length, file=handle)


@contextmanager
def range_lock(fd: int, start: int, length: int) -> Iterator[None]:
    """An exclusive lock on bytes ``[start, start + length)`` of an open file
    (``length`` 0: to the end of the file, however long it grows).

    An open-file-description lock (Linux): unlike a POSIX record lock it is
    held by this descriptor, so threads of one process exclude each other as
    well as processes do, and it is released when the descriptor is closed
    (also when the process dies).
    """
    fcntl.fcntl(fd, fcntl.F_OFD_SETLKW, struct.pack(_FLOCK, fcntl.F_WRLCK, 0, start, length, 0))
    try:
        yield
    finally:
        fcntl.fcntl(fd, fcntl.F_OFD_SETLK, struct.pack(_FLOCK, fcntl.F_UNLCK, 0, start, length, 0))


class FilesystemStorage(Storage):
    """Bytes as files under one root directory."""

    name = "filesystem"

    def __init__(self, root: str, drop_behind: bool = True) -> None:
        self.root = Path(root)
        # durable pages of large bodies leave the page cache (EarlyWriteback, hash-ahead)
        self.drop_behind = drop_behind
        self.objects = self.root / "objects"
        self._objects_text = str(self.objects)
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

    def space_left(self) -> Optional[int]:
        try:
            stats = os.statvfs(self.root)
        except OSError:
            return None
        return stats.f_bavail * stats.f_frsize

    # -- writing --------------------------------------------------------------
    def stage(self, key: str, blocks: Iterable[bytes]) -> Staged:
        temp = self.tmp / f"{key}.{os.getpid()}.part"
        digests = Digests()
        try:
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
        except OSError as error:
            raise storage_fault("create a file in storage", error) from None
        writeback = EarlyWriteback(fd, drop_behind=self.drop_behind)
        try:
            with os.fdopen(fd, "wb", buffering=0) as out:
                try:
                    for block in blocks:
                        digests.update(block)
                        view = memoryview(block)
                        while view:
                            written = out.write(view)
                            view = view[written:]
                        writeback.wrote(len(block))
                finally:
                    writeback.finish()
                # the bytes must be on disk before the name can point at them
                os.fsync(out.fileno())
        except OSError as error:
            temp.unlink(missing_ok=True)
            raise storage_fault("write the body", error) from None
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
        finally:
            digests.close()
        return Staged(key=key, size=digests.size, digests=digests, handle=temp)

    def commit(self, staged: Staged) -> None:
        final = self.path_of(staged.key)
        try:
            self._place(Path(staged.handle), final)
        except OSError as error:
            Path(staged.handle).unlink(missing_ok=True)
            raise storage_fault("store the object", error) from None

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
    def open(
        self,
        key: str,
        size: int,
        start: int = 0,
        length: Optional[int] = None,
        *,
        content_type: Optional[str] = None,
        content_disposition: Optional[str] = None,
    ) -> Body:
        if "/" in key or key in ("", ".", ".."):
            raise ValueError(f"invalid storage key {key!r}")
        # path_of as text: the hot path of every GET, where pathlib's joins show
        path = f"{self._objects_text}/{key[:2]}/{key[2:4]}/{key}"
        return open_file_body(path, start, size - start if length is None else length)

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

    # -- chunked upload jobs --------------------------------------------------
    # One sparse file per job under jobs/, created at its full size; chunks are
    # pwritten at their offsets (no concatenation at the end). Finalization
    # hard-links the file into objects/, so a job whose version cannot be bound
    # (checksum mismatch, conflict, crash) keeps its bytes and can be retried.
    #
    # Writers and the finalizer exclude each other with flock on the job file:
    # a chunk write holds a shared lock and first checks that the file is still
    # the job's only link; finalization holds the exclusive lock while hashing
    # and linking. So no chunk can ever be written into bytes that are (being)
    # bound as a version.
    def job_path(self, job_key: str) -> Path:
        if "/" in job_key or job_key in ("", ".", ".."):
            raise ValueError(f"invalid job key {job_key!r}")
        return self.jobs / job_key

    def create_job(self, job_key: str, size: int, chunk_length: int) -> str:
        path = self.job_path(job_key)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
            try:
                os.ftruncate(fd, size)  # sparse: no block is allocated yet
                os.fsync(fd)
            finally:
                os.close(fd)
            # the job row will say the file exists: make its name durable first
            fsync_directory(self.jobs)
        except OSError as error:
            path.unlink(missing_ok=True)
            raise storage_fault("create the upload job's file", error) from None
        return str(chunk_length)  # for hash-ahead, which needs the chunk boundaries

    def write_chunk(
        self, job_key: str, state: str, index: int, offset: int, blocks: Iterable[bytes]
    ) -> ChunkReceipt:
        path = self.job_path(job_key)
        try:
            fd = os.open(path, os.O_WRONLY)  # never O_CREAT: a cancelled job stays gone
        except FileNotFoundError:
            raise JobGone("The upload job's storage is gone (cancelled or finalized).") from None
        except OSError as error:
            raise StorageError(f"cannot open the upload job's file: {error.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_SH)
            try:
                current = os.stat(path)
            except FileNotFoundError:
                raise JobGone("The upload job was cancelled or finalized.") from None
            mine = os.fstat(fd)
            if current.st_ino != mine.st_ino or mine.st_nlink != 1:
                raise JobGone("The upload job is being finalized; no chunk can be changed now.")
            size = mine.st_size
            # sends of one chunk take turns, so the log's order is the order in
            # which their bytes landed: the last record of a chunk tells whether
            # its bytes are one sender's, whole (D) or not (S, a cut-off send)
            # (the job's state is its chunk length; without it, lock to the end)
            with range_lock(fd, offset, int(state) if state.isdigit() else 0):
                # logged before any byte changes, so hash-ahead and finalize can tell
                hashahead.append_record(path, hashahead.STARTED, index)
                written = flushed = 0
                for block in blocks:
                    view = memoryview(block)
                    while view:
                        count = os.pwrite(fd, view, offset + written)
                        written += count
                        view = view[count:]
                    if start_writeback is not None and written - flushed >= CHUNK_WRITEBACK_STEP:
                        # the disk writes the chunk while the rest of it arrives, so
                        # the fdatasync below has only its tail (and metadata) left
                        start_writeback(fd, offset + flushed, written - flushed)
                        flushed = written
                # a chunk acknowledged to the client must survive a crash
                os.fdatasync(fd)
                hashahead.append_record(path, hashahead.DONE, index)
        except OSError as error:
            raise storage_fault("write the chunk", error) from None
        finally:
            os.close(fd)  # also releases the lock
        if state.isdigit() and size > 0:
            hashahead.start_hasher(path, size, int(state), drop=self.drop_behind)
        return ChunkReceipt(index=index, size=written, md5_b64="", sha256_b64="")

    def finalize_job(
        self, job_key: str, state: str, size: int, chunks: list[ChunkReceipt], key: str
    ) -> Digests:
        path = self.job_path(job_key)
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            raise JobGone("The upload job's storage is gone (cancelled or finalized).") from None
        except OSError as error:
            raise StorageError(f"cannot open the upload job's file: {error.strerror}") from None
        try:
            # wait for chunk writes in flight; none can start until we are done
            fcntl.flock(fd, fcntl.LOCK_EX)
            if not _still_linked(path, fd):
                # a concurrent finalization won and released the job meanwhile
                raise JobGone("The upload job was finalized (or cancelled) by another request.")
            if os.fstat(fd).st_size != size:
                raise StorageError("The upload job's file does not have the job's size.")
            interrupted = hashahead.interrupted_chunks(path)
            if interrupted:
                # a write of a recorded chunk was cut off (e.g. a duplicate send)
                shown = ", ".join(str(i) for i in interrupted[:20])
                raise ChunkInterrupted(
                    f"The last write of chunk(s) {shown} was interrupted, so their bytes are "
                    "uncertain; send them again, then finalize."
                )
            digests = None
            if state.isdigit() and size > 0:
                digests = hashahead.precomputed_digests(path, size, int(state))
            if digests is None:
                digests = hash_file(fd, size)
            os.fsync(fd)  # chunks were fdatasynced; this persists the rest
            # a second name for the same inode: nothing is copied, and the job
            # keeps its bytes should binding the version fail
            temp = self.tmp / f"{key}.{os.getpid()}.link"
            temp.unlink(missing_ok=True)
            try:
                os.link(path, temp)
            except FileNotFoundError:
                raise JobGone(
                    "The upload job was finalized (or cancelled) by another request."
                ) from None
            try:
                self._place(temp, self.path_of(key))
            except BaseException:
                temp.unlink(missing_ok=True)
                raise
        except OSError as error:
            raise storage_fault("assemble the upload", error) from None
        finally:
            os.close(fd)
        return digests

    def cancel_job(self, job_key: str, state: str) -> None:
        path = self.job_path(job_key)
        try:
            path.unlink(missing_ok=True)
            for side_file in hashahead.side_files(path):
                side_file.unlink(missing_ok=True)
        except OSError as error:
            raise StorageError(f"cannot remove the upload job's file: {error.strerror}") from None

    def job_keys(self, older_than: float) -> list[str]:
        """Job files last modified before ``older_than`` (for sweeping lost jobs)."""
        return sorted(
            {
                entry.name.split(".")[0]
                for entry in self.jobs.iterdir()
                if _mtime(entry) < older_than
            }
        )

    # -- maintenance ----------------------------------------------------------
    def find_orphans(self, live_keys: set[str], older_than: float) -> dict[str, list[str]]:
        """Files last modified before ``older_than`` (epoch seconds): every file in
        ``tmp/`` (bodies of PUTs that were cut off or killed) and unreferenced
        files in ``objects/`` (bytes whose version row never committed)."""
        temp = sorted(e.name for e in self.tmp.iterdir() if _mtime(e) < older_than)
        objects = sorted(
            entry.name
            for shard in self.objects.glob("*/*")
            for entry in shard.iterdir()
            if entry.name not in live_keys and _mtime(entry) < older_than
        )
        return {"temp_files": temp, "objects": objects}

    def remove_orphan(self, category: str, key: str) -> None:
        if "/" in key or key in ("", ".", ".."):
            raise ValueError(f"invalid orphan {key!r}")
        path = self.tmp / key if category == "temp_files" else self.path_of(key)
        path.unlink(missing_ok=True)

    def keys(self) -> Iterable[str]:
        for shard in self.objects.glob("*/*"):
            for entry in shard.iterdir():
                yield entry.name


def _still_linked(path: Path, fd: int) -> bool:
    """Whether ``path`` still names the file open as ``fd``."""
    try:
        return os.stat(path).st_ino == os.fstat(fd).st_ino
    except FileNotFoundError:
        return False


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError as error:
        if error.errno == errno.ENOENT:
            return time.time()
        raise
