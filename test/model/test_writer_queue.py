"""SQLite's writer queue across processes: an ``flock`` of ``<database>-writer``
held around each write transaction, taken before the batch is chosen."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import threading
import time

import pytest

from hatrac.model.directory import open_directory
from hatrac.model.directory.sqlite import SQLiteDatabase
from hatrac.model.resources import OBJECT
from hatrac.urls import ROOT

HOLDER = """
import sys
from hatrac.model.directory.sqlite import SQLiteDatabase
with SQLiteDatabase(sys.argv[1]).writer_lock():
    print("held", flush=True)
    sys.stdin.readline()
"""


@pytest.fixture
def directory(tmp_path):
    directory = open_directory("sqlite:" + str(tmp_path / "db.sqlite3"))
    directory.initialize({"owner": ["admin"]})
    yield directory
    directory.close()


@pytest.fixture
def holder(tmp_path):
    """Another process holding the writer queue until told to let go."""
    process = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(tmp_path / "db.sqlite3")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout.readline() == "held\n"

    def release():
        process.stdin.write("\n")
        process.stdin.flush()
        assert process.wait(timeout=30) == 0

    yield release
    if process.poll() is None:
        process.kill()
        process.wait()


def _create(directory, names):
    root = directory.run(lambda tx: tx.get_name(ROOT))

    def write(name):
        directory.run(lambda tx: tx.create_name(name, root.id, OBJECT, {}, 0.0), write=True)

    return [threading.Thread(target=write, args=(name,)) for name in names]


def test_a_writer_waits_for_another_process_holding_the_queue(directory, holder):
    (thread,) = _create(directory, ["/waited"])
    thread.start()
    thread.join(0.3)
    # SQLite's own lock is free (the other process holds only the queue): the
    # write waits for the queue alone
    assert thread.is_alive()
    holder()
    thread.join(30)
    assert not thread.is_alive()
    assert directory.run(lambda tx: tx.get_name("/waited")) is not None


def test_writers_queued_while_the_leader_waited_share_its_commit(directory, holder):
    transactions = []
    group = directory._group
    begin = group._transaction

    def counted():
        transactions.append(1)
        return begin()

    group._transaction = counted
    names = [f"/o{i}" for i in range(6)]
    threads = _create(directory, names)
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 30
    while len(group._queue) < len(names):  # all queued behind the waiting leader
        assert time.monotonic() < deadline
        time.sleep(0.01)
    holder()
    for thread in threads:
        thread.join(30)
    assert transactions == [1]  # one transaction, one COMMIT for the six
    for name in names:
        assert directory.run(lambda tx, name=name: tx.get_name(name)) is not None


def test_a_forked_child_does_not_share_its_parents_queue_lock(tmp_path):
    database = SQLiteDatabase(str(tmp_path / "db.sqlite3"))
    with database.writer_lock():  # the thread's lock file is open before the fork
        pass
    with database.writer_lock():
        child = os.fork()
        if child == 0:  # pragma: no cover - the child's exit status is the assertion
            with database.writer_lock():
                os._exit(0)
        time.sleep(0.3)
        # a shared open file would have let the child through at once
        assert os.waitpid(child, os.WNOHANG) == (0, 0)
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    database.close()


def test_writes_go_on_without_the_queue_file(tmp_path, caplog):
    # the side file cannot be made (a dangling link into a missing directory):
    # SQLite's own lock and busy timeout still order the writers
    (tmp_path / "db.sqlite3-writer").symlink_to(tmp_path / "missing" / "writer")
    directory = open_directory("sqlite:" + str(tmp_path / "db.sqlite3"))
    directory.initialize({"owner": ["admin"]})
    threads = _create(directory, ["/a", "/b"])
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert directory.run(lambda tx: tx.get_name("/b")) is not None
    assert "no writer queue file" in caplog.text
    directory.close()


def test_a_queue_file_made_by_another_user_still_serves(tmp_path):
    path = tmp_path / "db.sqlite3-writer"
    path.touch(mode=0o444)  # as an admin command run as root would leave it, unwritable
    database = SQLiteDatabase(str(tmp_path / "db.sqlite3"))
    with database.writer_lock():
        fd = database._local.lock_fd
        # opened read-only (enough for flock), so the service's user needs no write access
        assert fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_ACCMODE == os.O_RDONLY
    database.close()
