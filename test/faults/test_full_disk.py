"""Defect 5 of issue 13: storage out of space answers 507 with a reason and
Retry-After, leaves nothing partial, says so in readiness, and works again
once space is freed.

The storage is a small tmpfs mounted by the test (root only; skipped
elsewhere): 2 MiB of blocks and a few dozen inodes, so that a PUT, a chunk
(blocks) and a finalization (a new directory: an inode) each run out.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest
from clients import FlaskProtocolClient

import hatrac

ROOT_ACLS = {"owner": ["admin"], "create": ["*"], "read": ["*"], "subtree-owner": ["*"]}


@pytest.fixture
def small_disk(tmp_path):
    mount = tmp_path / "small"
    mount.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    made = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m,nr_inodes=48", "tmpfs", str(mount)],
        capture_output=True,
    )
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {made.stderr.decode().strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


@pytest.fixture
def full_app(tmp_path, small_disk):
    app = hatrac.create_app(
        {
            "data_directory": str(tmp_path / "data"),
            "storage_path": str(small_disk / "storage"),
            "root_acls": ROOT_ACLS,
        }
    )
    app.testing = True
    yield app
    app.extensions["hatrac"].close()


def _leftovers(storage_root: Path) -> list[str]:
    return sorted(p.name for p in (storage_root / "tmp").iterdir())


def test_full_disk_answers_507_and_recovers(full_app, small_disk):
    client = FlaskProtocolClient(full_app)
    storage_root = small_disk / "storage"
    assert client.put("/hatrac/small", data=b"fits").status == 201

    # a PUT larger than the disk
    reply = client.put("/hatrac/big", data=b"x" * (3 * 1024 * 1024))
    assert reply.status == 507, reply.text
    assert "full" in reply.text and int(reply.headers["Retry-After"]) > 0
    assert client.get("/hatrac/big").status == 404
    assert _leftovers(storage_root) == []

    # a chunk that does not fit
    job = client.post(
        "/hatrac/chunked;upload", json={"chunk-length": 1536 * 1024, "content-length": 3 << 20}
    )
    assert job.status == 201, job.text
    job_url = job.headers["Location"]
    assert client.put(job_url + "/0", data=b"a" * (1536 * 1024)).status == 204
    reply = client.put(job_url + "/1", data=b"b" * (1536 * 1024))
    assert reply.status == 507, reply.text
    assert "Retry-After" in reply.headers

    # readiness says the storage is full (reads still work)
    ready = client.get("/hatrac-health/ready")
    assert ready.json()["storage"].startswith("full"), ready.text
    assert client.get("/hatrac/small").body == b"fits"

    # space freed: the chunk and a PUT go through, the job finalizes
    assert client.delete(job_url).status == 204
    # the job's blocks are free once its hash-ahead thread lets the file go
    deadline = time.monotonic() + 10
    while client.get("/hatrac-health/ready").json()["storage"] != "ok":
        assert time.monotonic() < deadline, "space was not freed"
        time.sleep(0.02)
    assert client.put("/hatrac/big", data=b"x" * (1024 * 1024)).status == 201


def test_finalize_without_inodes_answers_507(full_app, small_disk):
    client = FlaskProtocolClient(full_app)
    job = client.post("/hatrac/fin;upload", json={"chunk-length": 4, "content-length": 8})
    job_url = job.headers["Location"]
    for index in range(2):
        assert client.put(f"{job_url}/{index}", data=b"abcd").status == 204
    # use up every inode, so finalization cannot make the version's directory
    filler = small_disk / "filler"
    filler.mkdir()
    count = 0
    try:
        while True:
            (filler / str(count)).touch()
            count += 1
    except OSError:
        pass
    reply = client.post(job_url)
    assert reply.status == 507, reply.text
    assert client.get("/hatrac/fin").status in (404, 409)  # no version (the job may bind the name)
    for entry in filler.iterdir():
        entry.unlink()
    reply = client.post(job_url)
    assert reply.status == 201, reply.text
    assert client.get("/hatrac/fin").body == b"abcdabcd"
