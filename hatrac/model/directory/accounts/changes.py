"""Telling every server that accounts changed (PostgreSQL NOTIFY and LISTEN).

A session cache may trust what it holds only while its :class:`ChangeListener`
is connected; every change that can end a session or change a client's groups
calls :func:`notify_change` in its transaction.
"""

from __future__ import annotations

from typing import Any, Callable

CHANNEL = "hatrac_auth"


def notify_change(tx: Any) -> None:
    """Tell every server's session cache that sessions, tokens or groups changed.

    PostgreSQL delivers the notification when the transaction commits; SQLite
    has no such thing, and its servers do not cache.
    """
    if tx.dialect == "postgres":
        tx.execute("SELECT pg_notify(%s, '')", (CHANNEL,))


class ChangeListener:
    """A thread holding a PostgreSQL connection that LISTENs for account changes.

    ``on_change()`` is called for each notification and whenever the
    connection is lost or re-established (a lost connection may have missed
    notifications). ``connected`` says whether notifications are flowing now.
    """

    def __init__(self, dsn: str, on_change: Callable[[], None]) -> None:
        import threading

        self.dsn = dsn
        self.on_change = on_change
        self.connected = False
        self._conn = None
        self._stop = False
        self._thread = threading.Thread(target=self._run, name="hatrac-auth-listener", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        import select
        import time

        import psycopg2

        while not self._stop:
            conn = None
            try:
                conn = psycopg2.connect(self.dsn, connect_timeout=10)
                conn.autocommit = True
                conn.cursor().execute(f"LISTEN {CHANNEL}")  # a fixed identifier
                self.on_change()
                self._conn = conn
                self.connected = True
                while not self._stop:
                    if select.select([conn], [], [], 5.0)[0]:
                        conn.poll()
                        if conn.notifies:
                            conn.notifies.clear()
                            self.on_change()
                    else:
                        conn.cursor().execute("SELECT 1")  # notice a dead server
            except Exception:  # any failure: stop trusting the cache, retry later
                self.connected = False
                self.on_change()
                time.sleep(1.0)
            finally:
                self.connected = False
                self._conn = None
                if conn is not None:
                    try:
                        conn.close()
                    except Exception:
                        pass

    def check(self) -> None:
        """Take in notifications already waiting on the socket, without a round trip.

        Called by request threads before they trust the cache, so a logout whose
        notification has reached this process is honoured even if the listener
        thread has not been scheduled yet.
        """
        import select

        conn = self._conn
        if conn is None:
            return
        try:
            if select.select([conn], [], [], 0)[0]:
                conn.poll()
                if conn.notifies:
                    conn.notifies.clear()
                    self.on_change()
        except Exception:  # the listener thread notices and reconnects
            self.on_change()

    def stop(self) -> None:
        self._stop = True
        conn = self._conn
        if conn is not None:
            try:
                conn.close()  # wakes the thread's select
            except Exception:
                pass
