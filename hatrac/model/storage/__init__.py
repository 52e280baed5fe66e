"""Storage backends: where the bytes of object versions live.

The interface is :class:`~hatrac.model.storage.base.Storage`;
:func:`open_storage` builds the backend a configuration names.
"""

from __future__ import annotations

from .base import Body, ChunkReceipt, Digests, Staged, Storage, StorageError, read_blocks


def open_storage(config) -> Storage:
    """The storage backend selected by ``config.storage_backend``."""
    if config.storage_backend == "filesystem":
        from .filesystem import FilesystemStorage

        return FilesystemStorage(config.storage_path)
    raise StorageError(f"storage backend {config.storage_backend!r} is not available")


__all__ = [
    "Body",
    "ChunkReceipt",
    "Digests",
    "Staged",
    "Storage",
    "StorageError",
    "open_storage",
    "read_blocks",
]
