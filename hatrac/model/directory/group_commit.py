"""Group commit for SQLite: concurrent write transactions of one process share a COMMIT.

SQLite admits one writer at a time, and with ``synchronous=FULL`` each
COMMIT waits for its WAL write to reach the disk, so one process's small
PUTs queue for the write lock and then for a disk flush each: the disk's
flush rate bounds them. PostgreSQL shares one WAL flush among the commits
that arrive together; this does the same for SQLite, within a process.

A thread that wants a write transaction queues its work. If no thread of
the process is leading, it leads: it takes the queued works (its own and
those that arrived meanwhile), runs each in its own SAVEPOINT of one
``BEGIN IMMEDIATE`` transaction (a work that fails is rolled back to its
savepoint, the others keep theirs), COMMITs once, and only then hands each
thread its result or error; then it passes the lead to the oldest thread
still waiting. Every work runs in its own thread's context (``contextvars``:
the request's pending credential lookup), and no thread is told its work
is done before the COMMIT that made it durable succeeded; if the COMMIT (or
the BEGIN) fails, every work of the batch gets that error, and the
directory retries or reports it as it does for one transaction.

The leader first takes the processes' writer queue (``exclusive``: SQLite's
side ``flock``, ``sqlite.py``) and only then the works queued: the threads
that arrived while it waited for another process's COMMIT join its batch.
"""

from __future__ import annotations

import contextvars
import threading
from contextlib import nullcontext
from typing import TYPE_CHECKING, Any, Callable, Optional

from ..credentials import pending

if TYPE_CHECKING:
    from .sql import Transaction

MAX_BATCH = 32


class _Entry:
    """One queued write transaction and what became of it."""

    __slots__ = ("work", "context", "event", "result", "error", "lead")

    def __init__(self, work: Callable) -> None:
        self.work = work
        self.context = contextvars.copy_context()
        self.event = threading.Event()
        self.result: Any = None
        self.error: Optional[BaseException] = None
        self.lead = False  # woken to lead the next batch, not with a result


def _in_context(work: Callable, tx: Transaction) -> Any:
    lookup = pending()
    if lookup is not None:
        lookup.open_transaction = tx
    try:
        return work(tx)
    finally:
        if lookup is not None:
            lookup.open_transaction = None


class GroupCommit:
    """The queue of one process's write transactions on one SQLite database."""

    def __init__(self, transaction: Callable, exclusive: Optional[Callable] = None) -> None:
        # ``transaction()``: a context manager giving a write Transaction that
        # commits on exit (Directory._transaction); ``exclusive()``: one held
        # around each batch, across processes (SQLiteDatabase.writer_lock)
        self._transaction = transaction
        self._exclusive = exclusive or nullcontext
        self._lock = threading.Lock()
        self._queue: list[_Entry] = []
        self._leading = False
        self._local = threading.local()

    def run(self, work: Callable) -> Any:
        if getattr(self._local, "batch", False):
            raise RuntimeError("a write transaction cannot be started inside another")
        entry = _Entry(work)
        with self._lock:
            self._queue.append(entry)
            lead = not self._leading
            self._leading = True
        while not lead:
            entry.event.wait()
            if not entry.lead:
                break
            entry.lead, lead = False, True
            entry.event.clear()
        if lead:
            self._lead()
        if entry.error is not None:
            raise entry.error
        return entry.result

    def _take(self) -> list[_Entry]:
        with self._lock:
            batch, self._queue = self._queue[:MAX_BATCH], self._queue[MAX_BATCH:]
        return batch

    def _lead(self) -> None:
        batch: list[_Entry] = []
        ran = False
        try:
            with self._exclusive():
                batch = self._take()  # the works that queued while it waited
                ran = True
                self._run_batch(batch)  # every outcome is in the entries
        except BaseException as error:
            if ran:  # releasing the queue failed after the batch had its outcomes
                raise
            batch = self._take()  # taking the writer queue failed: nothing ran
            for entry in batch:
                entry.error = error
        finally:
            with self._lock:
                if self._queue:
                    successor = self._queue[0]
                    successor.lead = True
                    successor.event.set()
                else:
                    self._leading = False
            for entry in batch:
                entry.event.set()

    def _run_batch(self, batch: list[_Entry]) -> None:
        self._local.batch = True
        try:
            with self._transaction() as tx:
                for entry in batch:
                    tx.execute("SAVEPOINT hatrac_work")
                    try:
                        entry.result = entry.context.run(_in_context, entry.work, tx)
                    except BaseException as error:
                        entry.error = error
                        # a failure that ended the whole transaction fails the batch here
                        tx.execute("ROLLBACK TO hatrac_work")
                    tx.execute("RELEASE hatrac_work")
        except BaseException as error:
            for entry in batch:  # nothing of the batch was committed
                entry.result, entry.error = None, error
        finally:
            self._local.batch = False
