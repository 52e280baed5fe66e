"""Hashing and flushing while a large body streams past (pure logic, real files)."""

from __future__ import annotations

import base64
import hashlib
import os

import pytest

from hatrac.model.storage.base import BLOCK_SIZE, OVERLAP_HASHING_AFTER, Digests
from hatrac.model.storage.filesystem import EarlyWriteback


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
