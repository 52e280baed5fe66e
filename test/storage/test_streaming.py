"""Hashing and flushing while a large body streams past (pure logic, real files)."""

from __future__ import annotations

import base64
import errno
import hashlib
import os
import threading
from pathlib import Path

import pytest

from hatrac.model.storage import write_behind
from hatrac.model.storage.base import (
    BLOCK_SIZE,
    OVERLAP_HASHING_AFTER,
    Digests,
    InsufficientStorage,
)
from hatrac.model.storage.filesystem import EarlyWriteback, FilesystemStorage
from hatrac.model.storage.write_behind import WriteBehind


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


def _blocks(count: int, size: int = BLOCK_SIZE) -> list:
    # fresh bytearrays, each different, as a body reader yields them
    return [bytearray(os.urandom(size)) for _ in range(count)]


def test_write_behind_writes_every_block_whole_and_in_order(tmp_path):
    blocks = _blocks(6) + [memoryview(bytearray(b"v" * 1000))] + _blocks(3) + [b"tail"]
    reported = []
    fd = os.open(tmp_path / "f", os.O_WRONLY | os.O_CREAT)
    try:
        writer = WriteBehind(fd, reported.append, start_after=2 * BLOCK_SIZE)
        for block in blocks:
            writer.write(block)
        assert writer._helper is not None  # past start_after, on the helper
        writer.finish()
        assert writer._helper is None
    finally:
        os.close(fd)
    assert (tmp_path / "f").read_bytes() == b"".join(bytes(b) for b in blocks)
    assert reported == [len(b) for b in blocks]


def test_write_behind_keeps_a_small_body_on_the_callers_thread(tmp_path):
    fd = os.open(tmp_path / "f", os.O_WRONLY | os.O_CREAT)
    try:
        writer = WriteBehind(fd)
        for block in _blocks(OVERLAP_HASHING_AFTER // BLOCK_SIZE):
            writer.write(block)
        assert writer._helper is None
        writer.finish()
    finally:
        os.close(fd)


def test_write_behind_raises_a_failed_write(tmp_path):
    (tmp_path / "f").write_bytes(b"")
    fd = os.open(tmp_path / "f", os.O_RDONLY)  # every write fails (EBADF)
    try:
        writer = WriteBehind(fd, start_after=0)
        with pytest.raises(OSError):
            for block in _blocks(3):
                writer.write(block)
            writer.finish()
        writer.close()
        assert writer._helper is None
    finally:
        os.close(fd)


def test_stage_of_a_large_body_is_whole_with_its_digests(tmp_path):
    storage = FilesystemStorage(str(tmp_path))
    blocks = _blocks(7) + [bytearray(b"end")]
    data = b"".join(bytes(b) for b in blocks)
    staged = storage.stage("KEY", iter(blocks))
    assert Path(staged.handle).read_bytes() == data
    assert staged.size == len(data)
    assert staged.digests.md5_b64 == b64(hashlib.md5(data))
    assert staged.digests.sha256_b64 == b64(hashlib.sha256(data))


def test_stage_failing_on_the_write_helper_stores_nothing(tmp_path, monkeypatch):
    storage = FilesystemStorage(str(tmp_path))
    real_write, calls = os.write, []

    def full_disk(fd, data):
        calls.append(threading.current_thread().name)
        if len(calls) > 6:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(write_behind.os, "write", full_disk)
    with pytest.raises(InsufficientStorage):
        storage.stage("KEY", iter(_blocks(10)))
    assert any(name.startswith("hatrac-write") for name in calls)  # it failed there
    assert list((tmp_path / "tmp").iterdir()) == []
