"""Small versions kept inline in the database, large ones in a backend.

:class:`InlineStorage` wraps the configured backend (filesystem, S3,
overlay). A body the model stages with ``inline=True`` and that is no
longer than ``inline_max_size`` is kept in memory (hashed as it arrives)
and written by the model into the directory's ``inline_bytes`` table in
the very transaction that binds its version: one commit (one WAL flush,
shared by concurrent commits) makes bytes and version durable together,
instead of a file fsync, a directory fsync and then the commit. Larger
bodies, and every other writer (upload jobs, migrations, imports), go to
the backend as before.

Inline bytes are stored under keys starting with :data:`INLINE_PREFIX`,
which no backend key can start with (backend keys never contain ``:``),
so every key says where its bytes are. Reads of an inline version get its
bytes from the row that resolved it (see ``ObjectVersion.inline``) or,
when a caller has only the key (``hatrac verify``, checksums), from the
table through the :class:`InlineTable` the directory provides; deletes
and the orphan sweep go there too. The storage never imports the
directory: the table is handed over by :meth:`InlineStorage.use_table`.
"""

from __future__ import annotations

from typing import Any, Iterable, Optional, Protocol

from .base import Body, Digests, Staged, Storage, StorageError
from .jobs import JobsOfWrapped

INLINE_PREFIX = "inline:"
DEFAULT_INLINE_MAX_SIZE = 64 * 1024


class InlineTable(Protocol):
    """What the storage needs of the directory's table of inline bytes."""

    def read(self, key: str) -> Optional[bytes]: ...

    def delete(self, key: str) -> None: ...

    def orphans(self, live_keys: set[str], older_than: float) -> list[str]: ...


def is_inline_key(key: str) -> bool:
    """Whether the bytes of ``key`` live in the database."""
    return key.startswith(INLINE_PREFIX)


class InlineStorage(JobsOfWrapped, Storage):
    """A backend for large bytes, plus small ones kept inline in the directory."""

    def __init__(self, large: Storage, inline_max_size: int = DEFAULT_INLINE_MAX_SIZE) -> None:
        self.large = large
        self.inline_max_size = max(0, inline_max_size)
        self.name = large.name
        self._table: Optional[InlineTable] = None

    def use_table(self, table: InlineTable) -> None:
        """Connect the directory's table of inline bytes (done when the model is built)."""
        self._table = table

    def _need_table(self) -> InlineTable:
        if self._table is None:
            raise StorageError("inline bytes are kept in the database, which is not connected")
        return self._table

    @staticmethod
    def is_inline(key: str) -> bool:
        return is_inline_key(key)

    # -- writing --------------------------------------------------------------
    def key_for(self, name: Optional[str], key: str) -> str:
        return self.large.key_for(name, key)

    def stage(self, key: str, blocks: Iterable[bytes], inline: bool = False) -> Staged:
        """Stage a body; with ``inline``, one of at most ``inline_max_size`` bytes is
        kept in memory (``Staged.inline``) for the model to write into the directory.

        A body that turns out larger is written to the backend, the bytes already
        read first: the caller must only ask for ``inline`` when the declared length
        fits, so this happens only for a client that sends more than it declared."""
        if not inline or self.inline_max_size <= 0:
            return self.large.stage(key, blocks)
        digests = Digests()
        parts: list[bytes] = []
        iterator = iter(blocks)
        for block in iterator:
            digests.update(block)
            parts.append(bytes(block))
            if digests.size > self.inline_max_size:
                return self.large.stage(key, _chained(parts, iterator))
        data = b"".join(parts)
        digests.close()
        return Staged(key=INLINE_PREFIX + key, size=len(data), digests=digests, inline=data)

    def commit(self, staged: Staged) -> None:
        if staged.inline is None:
            self.large.commit(staged)
        # inline bytes are committed with their version, by the directory

    def discard(self, staged: Staged) -> None:
        if staged.inline is None:
            self.large.discard(staged)

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
        if not is_inline_key(key):
            return self.large.open(
                key,
                size,
                start,
                length,
                content_type=content_type,
                content_disposition=content_disposition,
            )
        data = self._need_table().read(key)
        if data is None:
            raise StorageError(
                "The inline bytes of this version are missing from the database; an "
                "administrator should run 'hatrac verify'."
            )
        return inline_body(data, start, length)

    def open_version(
        self, version: Any, start: int = 0, length: Optional[int] = None, **kw: Any
    ) -> Body:
        if version.inline is not None and is_inline_key(version.storage_key):
            return inline_body(version.inline, start, length)
        return super().open_version(version, start, length, **kw)

    def exists(self, key: str) -> bool:
        if is_inline_key(key):
            return self._need_table().read(key) is not None
        return self.large.exists(key)

    def delete(self, key: str) -> None:
        if is_inline_key(key):
            self._need_table().delete(key)
        else:
            self.large.delete(key)

    # -- upload jobs: always the backend's (JobsOfWrapped) ----------------------
    @property
    def job_backend(self) -> Storage:
        return self.large

    # -- maintenance ----------------------------------------------------------
    def hash_stored(self, key: str, size: int) -> Digests:
        if is_inline_key(key):
            return super().hash_stored(key, size)  # read through open(), from the table
        return self.large.hash_stored(key, size)

    def find_orphans(self, live_keys: set[str], older_than: float) -> dict[str, list[str]]:
        found = self.large.find_orphans(live_keys, older_than)
        if self._table is not None:
            found = {**found, "inline": self._table.orphans(live_keys, older_than)}
        return found

    def remove_orphan(self, category: str, key: str) -> None:
        if category == "inline":
            if not is_inline_key(key):
                raise ValueError(f"invalid inline orphan {key!r}")
            self._need_table().delete(key)
        else:
            self.large.remove_orphan(category, key)

    def space_left(self) -> Optional[int]:
        return self.large.space_left()

    def check(self) -> None:
        self.large.check()

    def __getattr__(self, attribute: str) -> Any:
        # backend-specific helpers (e.g. the filesystem's path_of, job_keys)
        if attribute == "large":
            raise AttributeError(attribute)
        return getattr(self.large, attribute)


def inline_body(data: bytes, start: int = 0, length: Optional[int] = None) -> Body:
    """``length`` bytes of inline ``data`` from ``start`` (to the end by default)."""
    end = len(data) if length is None else min(len(data), start + length)
    part = data[start:end]
    return Body(size=len(part), chunks=[part] if part else [])


def _chained(parts: list[bytes], rest: Iterable[bytes]) -> Iterable[bytes]:
    yield from parts
    yield from rest
