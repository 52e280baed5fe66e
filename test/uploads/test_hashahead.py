"""Hash-ahead of filesystem jobs: used only when it describes the bytes in the file."""

from __future__ import annotations

import base64
import hashlib
import os
import time

from hatrac.model.storage import StorageError, hashahead
from hatrac.model.storage.filesystem import FilesystemStorage


def md5_b64(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode()


def wait_for_digest(storage, key: str) -> None:
    deadline = time.monotonic() + 30
    while not hashahead.digest_path(storage.job_path(key)).exists():
        assert time.monotonic() < deadline, "the hasher never finished"
        time.sleep(0.01)


def write_all(storage, key, state, data, chunk):
    for index in range(0, len(data), chunk):
        storage.write_chunk(key, state, index // chunk, index, [data[index : index + chunk]])


def test_precomputed_digests_are_used(tmp_path):
    storage = FilesystemStorage(str(tmp_path))
    data = os.urandom(1000)
    state = storage.create_job("JOB", len(data), 100)
    write_all(storage, "JOB", state, data, 100)
    wait_for_digest(storage, "JOB")
    path = storage.job_path("JOB")
    found = hashahead.precomputed_digests(path, len(data), 100)
    assert found is not None and found.md5_b64 == md5_b64(data)
    digests = storage.finalize_job("JOB", state, len(data), [], "KEY")
    assert digests.md5_b64 == md5_b64(data)
    assert storage.path_of("KEY").read_bytes() == data
    storage.cancel_job("JOB", state)
    assert list(storage.jobs.iterdir()) == []


def test_rewritten_chunk_invalidates_the_precomputed_digest(tmp_path):
    storage = FilesystemStorage(str(tmp_path))
    data = os.urandom(1000)
    state = storage.create_job("JOB", len(data), 100)
    write_all(storage, "JOB", state, data, 100)
    wait_for_digest(storage, "JOB")
    changed = b"x" * 100 + data[100:]
    storage.write_chunk("JOB", state, 0, 0, [changed[:100]])
    path = storage.job_path("JOB")
    assert hashahead.precomputed_digests(path, len(data), 100) is None
    digests = storage.finalize_job("JOB", state, len(data), [], "KEY")
    assert digests.md5_b64 == md5_b64(changed)


def test_digest_from_another_boot_is_ignored(tmp_path, monkeypatch):
    storage = FilesystemStorage(str(tmp_path))
    data = os.urandom(300)
    state = storage.create_job("JOB", len(data), 100)
    write_all(storage, "JOB", state, data, 100)
    wait_for_digest(storage, "JOB")
    monkeypatch.setattr(hashahead, "boot_id", lambda: "another-boot")
    assert hashahead.precomputed_digests(storage.job_path("JOB"), len(data), 100) is None
    assert storage.finalize_job("JOB", state, len(data), [], "KEY").md5_b64 == md5_b64(data)


def test_writes_refused_once_linked(tmp_path):
    import pytest

    from hatrac.model.storage.jobs import JobGone

    storage = FilesystemStorage(str(tmp_path))
    state = storage.create_job("JOB", 4, 4)
    storage.write_chunk("JOB", state, 0, 0, [b"abcd"])
    storage.finalize_job("JOB", state, 4, [], "KEY")
    with pytest.raises(JobGone):
        storage.write_chunk("JOB", state, 0, 0, [b"XXXX"])
    assert storage.path_of("KEY").read_bytes() == b"abcd"
    storage.cancel_job("JOB", state)
    with pytest.raises(JobGone):
        storage.write_chunk("JOB", state, 0, 0, [b"XXXX"])


def test_interrupted_write_of_a_recorded_chunk_blocks_finalization(tmp_path):
    import pytest

    from hatrac.model.storage.jobs import ChunkInterrupted

    storage = FilesystemStorage(str(tmp_path))
    state = storage.create_job("JOB", 8, 4)
    storage.write_chunk("JOB", state, 0, 0, [b"abcd"])
    storage.write_chunk("JOB", state, 1, 4, [b"efgh"])

    def cut_off():
        yield b"XX"
        raise OSError("client went away")

    # a duplicate send of chunk 1 that dies midway (after the other was recorded)
    with pytest.raises(StorageError):
        storage.write_chunk("JOB", state, 1, 4, cut_off())
    with pytest.raises(ChunkInterrupted):
        storage.finalize_job("JOB", state, 8, [], "KEY")
    storage.write_chunk("JOB", state, 1, 4, [b"efgh"])
    digests = storage.finalize_job("JOB", state, 8, [], "KEY")
    assert digests.md5_b64 == md5_b64(b"abcdefgh")


def test_chunk_writeback_starts_while_the_chunk_arrives(tmp_path, monkeypatch):
    """A chunk asks the kernel to write out each 2 MiB as it arrives (so the
    fdatasync before its 204 has little left to wait for); the bytes are intact."""
    from hatrac.model.storage import filesystem

    assert filesystem.start_writeback is not None  # Linux: sync_file_range is there
    started = []
    real = filesystem.start_writeback

    def recording(fd, offset, length):
        started.append((offset, length))
        real(fd, offset, length)

    monkeypatch.setattr(filesystem, "start_writeback", recording)
    storage = FilesystemStorage(str(tmp_path))
    mib = 1024 * 1024
    chunk = 5 * mib
    data = os.urandom(2 * chunk)
    state = storage.create_job("JOB", len(data), chunk)
    blocks = [data[chunk + i : chunk + i + mib] for i in range(0, chunk, mib)]
    storage.write_chunk("JOB", state, 1, chunk, blocks)
    assert started == [(chunk, 2 * mib), (chunk + 2 * mib, 2 * mib)]
    storage.write_chunk("JOB", state, 0, 0, [data[:chunk]])  # one 5 MiB block: one call
    assert started[2:] == [(0, chunk)]
    digests = storage.finalize_job("JOB", state, len(data), [], "KEY")
    assert digests.md5_b64 == md5_b64(data)
    assert storage.path_of("KEY").read_bytes() == data
    storage.cancel_job("JOB", state)


def resident_pages(path) -> int:
    """How many pages of a file are in the page cache (Linux ``mincore``)."""
    import ctypes
    import mmap

    size = os.path.getsize(path)
    page = mmap.PAGESIZE
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mmap.restype = ctypes.c_void_p
    libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int]
    libc.mmap.argtypes += [ctypes.c_int, ctypes.c_long]
    libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_char_p]
    fd = os.open(path, os.O_RDONLY)
    try:
        address = libc.mmap(None, size, mmap.PROT_READ, mmap.MAP_SHARED, fd, 0)
        assert address not in (None, ctypes.c_void_p(-1).value)
        try:
            vector = ctypes.create_string_buffer((size + page - 1) // page)
            assert libc.mincore(ctypes.c_void_p(address), size, vector) == 0
            return sum(byte & 1 for byte in vector.raw)
        finally:
            libc.munmap(ctypes.c_void_p(address), size)
    finally:
        os.close(fd)


def test_hashed_chunks_leave_the_page_cache(tmp_path):
    """Once a durable chunk is hashed, its pages are dropped (so later chunks are
    written into freed memory); the digests and the bytes are unchanged."""
    storage = FilesystemStorage(str(tmp_path))
    mib = 1024 * 1024
    data = os.urandom(4 * mib)
    state = storage.create_job("JOB", len(data), mib)
    # chunk 1 first: the hasher hashes from chunk 0 on, so this one waits, cached
    storage.write_chunk("JOB", state, 1, mib, [data[mib : 2 * mib]])
    path = storage.job_path("JOB")
    assert resident_pages(path) > 0
    write_all(storage, "JOB", state, data, mib)
    wait_for_digest(storage, "JOB")
    assert resident_pages(path) == 0
    digests = storage.finalize_job("JOB", state, len(data), [], "KEY")
    assert digests.md5_b64 == md5_b64(data)
    assert storage.path_of("KEY").read_bytes() == data
    storage.cancel_job("JOB", state)
