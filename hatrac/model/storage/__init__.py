"""Storage backends: where the bytes of object versions live.

The interface is :class:`~hatrac.model.storage.base.Storage`;
:func:`open_storage` builds the backend a configuration names, wrapped in
:class:`~hatrac.model.storage.inline.InlineStorage` (small versions inline in
the database).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Optional

from .base import Body, ChunkReceipt, Digests, Staged, Storage, StorageError, read_blocks
from .inline import InlineStorage

if TYPE_CHECKING:
    from ...config import Config


def open_storage(config: Config) -> Storage:
    """The storage backend selected by ``config.storage_backend`` (not yet checked:
    the caller runs :meth:`Storage.check` at startup)."""
    overlay = []
    for entry in config.overlay_backends or []:
        entry = dict(entry)
        path = entry.get("storage_path")
        if path and not os.path.isabs(path):  # relative to the data directory
            entry["storage_path"] = os.path.join(config.data_directory, path)
        overlay.append(entry)
    large = build_storage(
        config.storage_backend,
        storage_path=config.storage_path,
        s3_config=config.s3_config,
        overlay_backends=overlay,
        service_prefix=config.service_prefix,
        drop_behind=config.storage_drop_behind,
    )
    # always wrapped: versions stored inline stay readable with inline_max_size 0
    return InlineStorage(large, config.inline_max_size)


def build_storage(
    backend: str,
    storage_path: Optional[str] = None,
    s3_config: Optional[dict] = None,
    overlay_backends: Optional[list] = None,
    service_prefix: str = "/hatrac",
    drop_behind: bool = True,
) -> Storage:
    """A backend from its settings (also one entry of ``overlay_backends``)."""
    if backend == "filesystem":
        from .filesystem import FilesystemStorage

        if not storage_path:
            raise StorageError("the filesystem storage backend needs a storage_path")
        return FilesystemStorage(storage_path, drop_behind=drop_behind)
    if backend == "amazons3":
        from ...extras import require

        require("boto3", "storage_backend 'amazons3'")
        from .s3 import S3Storage

        if s3_config is None:
            raise StorageError("storage_backend 'amazons3' needs an s3_config")
        return S3Storage(s3_config, service_prefix)
    if backend == "overlay":
        from .overlay import OverlayStorage

        if not overlay_backends:
            raise StorageError("storage_backend 'overlay' needs a non-empty overlay_backends")
        chain = []
        for entry in overlay_backends:
            if entry.get("storage_backend") == "overlay":
                raise StorageError("overlay_backends cannot contain another overlay")
            if entry.get("storage_backend") == "upstream":
                from .upstream import UpstreamLayoutStorage

                chain.append(
                    UpstreamLayoutStorage(
                        entry.get("label", ""),
                        storage_path=entry.get("storage_path"),
                        buckets=entry.get("upstream_s3"),
                    )
                )
                continue
            chain.append(
                build_storage(
                    entry.get("storage_backend", "filesystem"),
                    storage_path=entry.get("storage_path"),
                    s3_config=entry.get("s3_config"),
                    service_prefix=service_prefix,
                    drop_behind=drop_behind,
                )
            )
        return OverlayStorage(chain)
    raise StorageError(f"storage backend {backend!r} is not available")


__all__ = [
    "Body",
    "ChunkReceipt",
    "Digests",
    "InlineStorage",
    "Staged",
    "Storage",
    "StorageError",
    "build_storage",
    "open_storage",
    "read_blocks",
]
