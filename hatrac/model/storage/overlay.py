"""Overlay storage: an ordered chain of backends read in turn, written to the first.

Typical use is a migration: ``[amazons3, filesystem]`` stores every new
version in S3 while versions written before the switch are still served from
the old directory. Reads (:meth:`open`, :meth:`exists`, :meth:`hash_stored`)
go to the first backend that holds the key; writes, upload jobs and new keys
(:meth:`key_for`) go to the first backend; deletes remove the key wherever it
is; every backend must pass :meth:`check`.
"""

from __future__ import annotations

from typing import Iterable, Optional

from .base import Body, Digests, Staged, Storage, StorageError
from .jobs import JobsOfWrapped


class OverlayStorage(JobsOfWrapped, Storage):
    """Several backends seen as one."""

    name = "overlay"

    def __init__(self, backends: list[Storage]) -> None:
        if not backends:
            raise StorageError("overlay_backends must name at least one backend")
        self.backends = list(backends)
        self.first = self.backends[0]

    def check(self) -> None:
        for backend in self.backends:
            backend.check()

    def space_left(self) -> Optional[int]:
        return self.first.space_left()

    def key_for(self, name: Optional[str], key: str) -> str:
        return self.first.key_for(name, key)

    # -- writing goes to the first backend --------------------------------------
    def stage(self, key: str, blocks: Iterable[bytes]) -> Staged:
        return self.first.stage(key, blocks)

    def commit(self, staged: Staged) -> None:
        self.first.commit(staged)

    def discard(self, staged: Staged) -> None:
        self.first.discard(staged)

    @property
    def job_backend(self) -> Storage:  # upload jobs go to the first backend
        return self.first

    # -- reading tries each backend in turn ---------------------------------------
    def holder(self, key: str) -> Storage:
        """The first backend that has bytes under ``key``."""
        for backend in self.backends:
            if _has(backend, key):
                return backend
        raise StorageError(
            "The stored bytes of this version are in none of the overlay's backends; an "
            "administrator should run 'hatrac verify'."
        )

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
        return self.holder(key).open(
            key,
            size,
            start,
            length,
            content_type=content_type,
            content_disposition=content_disposition,
        )

    def exists(self, key: str) -> bool:
        return any(_has(backend, key) for backend in self.backends)

    def hash_stored(self, key: str, size: int) -> Digests:
        return self.holder(key).hash_stored(key, size)

    def delete(self, key: str) -> None:
        for backend in self.backends:
            if _has(backend, key):
                backend.delete(key)

    def find_orphans(self, live_keys: set[str], older_than: float) -> dict[str, list[str]]:
        """Only the first (written) backend is swept; the others are read-only here."""
        return self.first.find_orphans(live_keys, older_than)

    def remove_orphan(self, category: str, key: str) -> None:
        self.first.remove_orphan(category, key)

    def sweep_orphans(self, live_keys: set[str], older_than: float) -> list[str]:
        return self.first.sweep_orphans(live_keys, older_than)


def _has(backend: Storage, key: str) -> bool:
    try:
        return backend.exists(key)
    except ValueError:  # a key this backend cannot even express is not its own
        return False
