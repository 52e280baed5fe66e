"""The put pre-pass of hatrac-client: the whole SHA-256 and, on other threads
meanwhile, the chunks' digests (no server needed)."""

from __future__ import annotations

import base64
import hashlib
import os

import pytest

from hatrac.client.hashing import SEGMENT, file_sha256_and_chunk_digests

SIZE = 2 * SEGMENT + 12_345  # segments that end inside chunks, and a short last chunk


def b64(digest) -> str:
    return base64.b64encode(digest.digest()).decode()


@pytest.fixture(scope="module")
def data_file(tmp_path_factory):
    data = os.urandom(SIZE)
    path = tmp_path_factory.mktemp("hashing") / "data.bin"
    path.write_bytes(data)
    return str(path), data


@pytest.mark.parametrize("name", ["md5", "sha256"])
@pytest.mark.parametrize(
    "chunk,lanes",
    [(SEGMENT, 2), (SEGMENT * 2 // 3, 1), (SEGMENT * 2 // 3, 3), (1_000_003, 2), (SIZE, 2)]
    + [(SIZE * 2, 4)],
)
def test_one_pass_gives_the_whole_sha256_and_every_chunk_digest(data_file, chunk, lanes, name):
    path, data = data_file
    expected = [b64(hashlib.new(name, data[i : i + chunk])) for i in range(0, len(data), chunk)]
    whole, chunks = file_sha256_and_chunk_digests(path, chunk, name, lanes, finish=True)
    assert whole == b64(hashlib.sha256(data)) and chunks == expected
    # not waiting: whatever digests are there are right, the others None
    whole, chunks = file_sha256_and_chunk_digests(path, chunk, name, lanes)
    assert whole == b64(hashlib.sha256(data)) and len(chunks) == len(expected)
    assert all(found in (None, right) for found, right in zip(chunks, expected))


def test_no_chunk_digest_and_an_empty_file(tmp_path, data_file):
    path, data = data_file
    assert file_sha256_and_chunk_digests(path, SEGMENT, None) == (
        b64(hashlib.sha256(data)),
        None,
    )
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    assert file_sha256_and_chunk_digests(str(empty), SEGMENT, "md5", finish=True) == (
        b64(hashlib.sha256(b"")),
        [],
    )
