"""The bytes-store interface every storage backend implements.

A backend knows nothing of names, ACLs or HTTP; it stores opaque byte
sequences under keys chosen by the model. Writes are two-phase so that no
partial object is ever visible: :meth:`Storage.stage` streams a body to a
private place while hashing it (MD5 and SHA-256 in the same pass), then the
model checks the digests and either :meth:`Storage.commit` s it under its key
(durably) or :meth:`Storage.discard` s it. The directory row is committed only
after the bytes are durable; bytes whose row never committed are orphans that
:meth:`Storage.sweep_orphans` removes.

Storage errors are :class:`StorageError` subclasses of the service's error
family with a 5xx status: a storage fault is the server's problem, never
the client's.
"""

from __future__ import annotations

import base64
import hashlib
from abc import ABC, abstractmethod
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import IO, Any, Callable, Iterable, Iterator, Optional

from ...errors import BadRequest, PayloadTooLarge, ServiceUnavailable

BLOCK_SIZE = 1024 * 1024
# past this many bytes, MD5 runs in a helper thread beside SHA-256 (hashlib
# releases the GIL), so a large body is hashed at the speed of the slower one
OVERLAP_HASHING_AFTER = 4 * BLOCK_SIZE


class StorageError(ServiceUnavailable):
    """The backend failed (disk full, I/O error, remote store down)."""


class InsufficientStorage(StorageError):
    """The storage is full (ENOSPC, EDQUOT): 507, retry once space is freed."""

    status = 507
    title = "Insufficient Storage"
    retry_after = 60


class TruncatedBody(BadRequest):
    """The request body ended before its declared length."""


@dataclass
class Digests:
    """MD5 and SHA-256 of some bytes, computed while they streamed past.

    Small bodies are hashed inline. Past :data:`OVERLAP_HASHING_AFTER` bytes,
    MD5 of each block runs in a helper thread while SHA-256 runs in the
    caller's (one block in flight, so memory stays bounded). Reading a digest
    waits for the helper; :meth:`close` releases it on error paths.
    """

    md5: Any = field(default_factory=hashlib.md5)
    sha256: Any = field(default_factory=hashlib.sha256)
    size: int = 0
    _helper: Optional[ThreadPoolExecutor] = field(default=None, repr=False, compare=False)
    _pending: Any = field(default=None, repr=False, compare=False)

    def update(self, block: bytes) -> None:
        self.size += len(block)
        if self._helper is None and (
            self.size <= OVERLAP_HASHING_AFTER or not isinstance(block, (bytes, bytearray))
        ):
            self.md5.update(block)
            self.sha256.update(block)
            return
        if self._helper is None:
            self._helper = ThreadPoolExecutor(1, thread_name_prefix="hatrac-md5")
        if self._pending is not None:
            self._pending.result()
        # bytes are immutable, and a body reader's bytearray blocks are fresh and never
        # changed once yielded: the helper can hash the block while it is written out
        self._pending = self._helper.submit(self.md5.update, block)
        self.sha256.update(block)

    def close(self) -> None:
        """Wait for the helper thread (if any) and let it go."""
        if self._pending is not None:
            pending, self._pending = self._pending, None
            pending.result()
        if self._helper is not None:
            helper, self._helper = self._helper, None
            helper.shutdown(wait=True)

    @property
    def md5_b64(self) -> str:
        self.close()
        return base64.b64encode(self.md5.digest()).decode("ascii")

    @property
    def sha256_b64(self) -> str:
        return base64.b64encode(self.sha256.digest()).decode("ascii")


def read_blocks(
    stream: IO[bytes], expected_length: Optional[int], limit: int, block_size: int = BLOCK_SIZE
) -> Iterator[bytes]:
    """Yield a request body in blocks, enforcing its declared length and a size limit.

    ``expected_length`` None means "read to the end" (chunked transfer coding).
    A body shorter than its declared length raises :class:`TruncatedBody`;
    one longer than ``limit`` raises :class:`PayloadTooLarge`.
    """
    remaining = expected_length
    total = 0
    while remaining is None or remaining > 0:
        want = block_size if remaining is None else min(block_size, remaining)
        try:
            block = stream.read(want)
        except (OSError, ValueError) as error:  # client went away mid-body
            raise TruncatedBody(f"The request body could not be read completely: {error}")
        if not block:
            break
        total += len(block)
        if total > limit:
            raise PayloadTooLarge(f"The request body is larger than the limit of {limit} bytes.")
        if remaining is not None:
            remaining -= len(block)
        yield block
    if remaining:
        raise TruncatedBody(
            f"The request body ended after {total} of its {expected_length} declared bytes; "
            "nothing was stored."
        )


@dataclass
class Staged:
    """Bytes written to a backend's private area, not yet visible under a key."""

    key: str
    size: int
    digests: Digests
    handle: Any = None
    # small bodies kept inline (see storage/inline.py): the bytes, which the
    # model writes into the directory with the version
    inline: Optional[bytes] = None


@dataclass
class ChunkReceipt:
    """What a backend reports about one stored chunk of an upload job."""

    index: int
    size: int
    md5_b64: str
    sha256_b64: str
    state: str = ""


@dataclass
class Body:
    """How to answer a read: an open file-like object, an iterable, or a redirect."""

    size: int
    file: Optional[IO[bytes]] = None
    chunks: Optional[Iterable[bytes]] = None
    redirect: Optional[str] = None
    close: Optional[Callable[[], None]] = None


class Storage(ABC):
    """A store of immutable byte sequences addressed by key."""

    name = "abstract"
    # largest body kept inline in the directory (0: none; see storage/inline.py)
    inline_max_size = 0

    @staticmethod
    def is_inline(key: str) -> bool:
        """Whether the bytes of ``key`` are kept in the directory (never, by default)."""
        return False

    # whether write_chunk's receipt carries the chunk's MD5 and SHA-256 (the model
    # then checks a client's chunk digests against them instead of hashing again)
    hashes_chunks = False

    def key_for(self, name: Optional[str], key: str) -> str:
        """The storage key for new bytes of object ``name``, from a fresh unique ``key``.

        The model asks before storing anything (plain PUT, job finalization).
        Backends that place bytes by name (S3's per-prefix buckets) encode the
        place in the key, so reads and deletes need only the key; by default
        the key is used as it is.
        """
        return key

    @abstractmethod
    def stage(self, key: str, blocks: Iterable[bytes]) -> Staged:
        """Write blocks destined for ``key``, hashing them in the same pass.

        The bytes are not yet committed; a backend may already write them to
        ``key`` if nothing can read it before the directory row exists.
        """

    @abstractmethod
    def commit(self, staged: Staged) -> None:
        """Make staged bytes durable under their key."""

    @abstractmethod
    def discard(self, staged: Staged) -> None:
        """Forget staged bytes."""

    @abstractmethod
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
        """Read ``length`` bytes of ``key`` from ``start`` (the whole object by default).

        ``content_type`` and ``content_disposition`` are what the client must
        be told; a backend that answers with a redirect makes the other end
        send them.
        """

    def open_version(
        self, version: Any, start: int = 0, length: Optional[int] = None, **kwargs: Any
    ) -> Body:
        """:meth:`open` for a version the directory returned (which may carry its bytes)."""
        return self.open(version.storage_key, version.size, start, length, **kwargs)

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove the bytes of ``key``; missing keys are not an error."""

    @abstractmethod
    def exists(self, key: str) -> bool:
        """Whether bytes are stored under ``key``."""

    # -- chunked upload jobs ---------------------------------------------------
    # A job assembles one object from fixed-size chunks sent in any order,
    # possibly in parallel and more than once. The model keeps the job and its
    # received chunks in the directory; the backend keeps the bytes.

    def create_job(self, job_key: str, size: int, chunk_length: int) -> str:
        """Prepare storage for a job; returns opaque backend state kept with the job
        (e.g. an S3 multipart upload id), or "" when the backend needs none."""
        raise NotImplementedError

    def write_chunk(
        self, job_key: str, state: str, index: int, offset: int, blocks: Iterable[bytes]
    ) -> ChunkReceipt:
        """Store chunk ``index`` (starting at byte ``offset`` of the object), hashing it.

        Idempotent: writing the same chunk again replaces it. The receipt's
        ``state`` is opaque backend data the model stores with the chunk.
        """
        raise NotImplementedError

    def finalize_job(
        self, job_key: str, state: str, size: int, chunks: list[ChunkReceipt], key: str
    ) -> Digests:
        """Assemble the chunks (ordered by index) durably under ``key``.

        Returns the digests of the whole object. Nothing is visible under
        ``key`` to readers until the model binds the version.
        """
        raise NotImplementedError

    def cancel_job(self, job_key: str, state: str) -> None:
        """Forget a job and its partial bytes; unknown jobs are not an error."""
        raise NotImplementedError

    def hash_stored(self, key: str, size: int) -> Digests:
        """Re-read stored bytes and hash them (verification, adding checksums)."""
        digests = Digests()
        body = self.open(key, size)
        try:
            if body.file is not None:
                while True:
                    block = body.file.read(BLOCK_SIZE)
                    if not block:
                        break
                    digests.update(block)
            else:
                for block in body.chunks or ():
                    digests.update(block)
        finally:
            if body.close:
                body.close()
            elif body.file is not None:
                body.file.close()
        return digests

    def find_orphans(self, live_keys: set[str], older_than: float) -> dict[str, list[str]]:
        """Stored and staged bytes no live version refers to, last changed before
        ``older_than``, by category (e.g. ``temp_files``, ``objects``): exactly
        what :meth:`sweep_orphans` would remove now."""
        return {}

    def remove_orphan(self, category: str, key: str) -> None:  # noqa: B027 - no orphans
        """Remove one orphan that :meth:`find_orphans` reported."""

    def sweep_orphans(self, live_keys: set[str], older_than: float) -> list[str]:
        """Remove stored and staged bytes no live version refers to; returns the keys."""
        removed = []
        for category, keys in self.find_orphans(live_keys, older_than).items():
            for key in keys:
                self.remove_orphan(category, key)
                removed.append(key)
        return removed

    def space_left(self) -> Optional[int]:
        """Bytes that can still be written (None: unknown or unbounded, e.g. S3)."""
        return None

    def check(self) -> None:  # noqa: B027 - optional for backends
        """Raise StorageError when the backend is not usable (readiness, startup)."""
