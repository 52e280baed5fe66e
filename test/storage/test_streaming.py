"""Hashing and flushing while a large body streams past (pure logic, real files)."""

from __future__ import annotations

import base64
import hashlib
import os

import pytest

from hatrac.model.storage.base import BLOCK_SIZE, OVERLAP_HASHING_AFTER, Digests
from hatrac.model.storage.writeback import EarlyWriteback


def b64(digest) -> str:
    return base64.b64encode(digest.digest()).decode()


@pytest.mark.parametrize("size", [0, 1, OVERLAP_HASHING_AFTER, OVERLAP_HASHING_AFTER * 3 + 17])
def test_digests_match_hashlib_inline_and_overlapped(size):
    data = os.urandom(size)
    digests = Digests()
    blocks = [data[i : i + BLOCK_SIZE] for i in range(0, size, BLOCK_SIZE)]
    for block in blocks:
        digests.update(block)
    assert (digests._helper is not None) == (size > OVERLAP_HASHING_AFTER)
    assert digests.size == size
    assert digests.md5_b64 == b64(hashlib.md5(data))
    assert digests.sha256_b64 == b64(hashlib.sha256(data))
    assert digests._helper is None  # reading a digest released the helper


def test_digests_close_releases_helper_without_reading():
    digests = Digests()
    for _ in range(OVERLAP_HASHING_AFTER // BLOCK_SIZE + 2):
        digests.update(b"x" * BLOCK_SIZE)
    digests.close()
    assert digests._helper is None
    digests.close()  # idempotent


def test_early_writeback_flushes_in_steps(tmp_path):
    fd = os.open(tmp_path / "f", os.O_WRONLY | os.O_CREAT)
    try:
        writeback = EarlyWriteback(fd, step=1024)
        for _ in range(10):
            os.write(fd, b"y" * 1000)
            writeback.wrote(1000)
        assert writeback._helper is not None
        writeback.finish()
        assert writeback._helper is None
    finally:
        os.close(fd)
    assert (tmp_path / "f").stat().st_size == 10_000


def test_early_writeback_reports_a_failed_flush(tmp_path):
    read, write = os.pipe()  # fdatasync on a pipe fails with EINVAL
    try:
        writeback = EarlyWriteback(write, step=1)
        writeback.wrote(1)
        with pytest.raises(OSError):
            writeback.finish()
    finally:
        os.close(read)
        os.close(write)


@pytest.fixture
def disk_dir():
    """A directory on a disk-backed filesystem (tmpfs pages cannot be dropped)."""
    import shutil
    import tempfile

    path = tempfile.mkdtemp(prefix="hatrac-test-", dir="/var/tmp")
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.mark.parametrize("drop_behind", [True, False])
def test_early_writeback_drops_only_what_a_flush_made_durable(disk_dir, drop_behind):
    from bench.pagecache import cached_bytes

    step = 1024 * 1024
    path = os.path.join(disk_dir, "body")
    data = os.urandom(step)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT)
    try:
        writeback = EarlyWriteback(fd, step=step, drop_behind=drop_behind)
        for _ in range(6):
            os.write(fd, data)
            writeback.wrote(step)
            writeback.finish()  # wait for each flush, so that every step is one
        # the last block written after the last flush began is still cached
        os.write(fd, data[:4096])
        writeback.wrote(4096)
        writeback.finish()
    finally:
        os.close(fd)
    cached = cached_bytes(path)
    assert cached is not None, "mincore is Linux's; the storage runs on Linux"
    if drop_behind:
        assert cached <= step + 4096, cached  # at most what no finished flush covered
    else:
        assert cached == 6 * step + 4096
    with open(path, "rb") as read_back:  # nothing dropped was lost
        assert read_back.read() == data * 6 + data[:4096]


@pytest.mark.parametrize("drop_behind", [True, False])
def test_a_large_put_body_leaves_the_page_cache_as_configured(disk_dir, drop_behind):
    from bench.pagecache import cached_bytes
    from hatrac.config import load_config
    from hatrac.model.storage import open_storage
    from hatrac.model.storage.writeback import WRITEBACK_STEP

    config = load_config(
        {
            "data_directory": disk_dir,
            "storage_path": os.path.join(disk_dir, "storage"),
            "storage_drop_behind": drop_behind,
        }
    )
    storage = open_storage(config).large  # the filesystem backend behind the inline one
    block = os.urandom(BLOCK_SIZE)
    count = 3 * WRITEBACK_STEP // BLOCK_SIZE
    staged = storage.stage("k" * 26, (block for _ in range(count)))
    try:
        size = count * BLOCK_SIZE
        cached = cached_bytes(str(staged.handle))
        if drop_behind:  # what the last flush before the end made durable is gone
            assert cached <= size - WRITEBACK_STEP, cached
        else:  # kept: more than drop-behind leaves (the kernel may evict a little anyway
            # when other files crowd the cache, as a long test run's do)
            assert cached > size - WRITEBACK_STEP, cached
        digest = hashlib.sha256()
        for _ in range(count):
            digest.update(block)
        assert staged.digests.sha256_b64 == b64(digest)
    finally:
        storage.discard(staged)
