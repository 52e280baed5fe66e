"""SQLite group commit: concurrent write transactions of one process share a COMMIT,
each keeps its own outcome, and each runs in its own thread's context."""

from __future__ import annotations

import contextvars
import threading

from hatrac.errors import Conflict
from hatrac.model.directory import open_directory
from hatrac.model.resources import OBJECT
from hatrac.urls import ROOT

WHO = contextvars.ContextVar("who", default=None)
THREADS = 24


def test_concurrent_writers_keep_their_own_outcomes(tmp_path):
    directory = open_directory("sqlite:" + str(tmp_path / "db.sqlite3"))
    directory.initialize({"owner": ["admin"]})
    root = directory.run(lambda tx: tx.get_name(ROOT))
    start = threading.Barrier(THREADS)
    outcomes: dict[int, object] = {}

    def work(index: int):
        def write(tx):
            made = tx.create_name(f"/o{index}", root.id, OBJECT, {}, 0.0)
            if index % 3 == 0:  # written, then refused: must leave nothing behind
                raise Conflict(f"refused {index}")
            return (made.name, WHO.get())

        WHO.set(f"thread {index}")
        start.wait()
        try:
            outcomes[index] = directory.run(write, write=True)
        except Conflict as error:
            outcomes[index] = str(error)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for index in range(THREADS):
        if index % 3 == 0:
            assert outcomes[index] == f"refused {index}"
        else:  # its own result, computed in its own context
            assert outcomes[index] == (f"/o{index}", f"thread {index}")
    names = directory.run(lambda tx: tx.children(root.id))
    assert names == sorted(f"/o{i}" for i in range(THREADS) if i % 3)
    directory.close()
