"""The gunicorn worker class of ``hatrac.gunicorn_conf``: gthread that parks slow clients.

gunicorn's ``gthread`` worker hands a new connection to a request thread as
soon as it has sent anything, and that thread then blocks until the request
headers are complete. Forty clients that send half a request line and stall
thus hold forty threads, and every other client waits (issue 13, defect 10).
:class:`ParkingThreadWorker` keeps a connection in the worker's event loop
(no thread) until its request headers have arrived whole:

* a new or kept-alive connection is read without blocking by the loop; the
  bytes are kept with the connection, and only a complete head (ending in an
  empty line, or too long to be valid, which gunicorn's parser then refuses)
  is handed to a thread, with the bytes given back to gunicorn's parser;
* a connection whose head is not complete ``HATRAC_HEADER_TIMEOUT`` seconds
  (default 20) after its first byte could be read is closed;
* once a request runs, its socket reads and writes time out after
  ``HATRAC_BODY_TIMEOUT`` seconds (default 30) without progress, so a client
  that stalls in the middle of its body frees its thread (the PUT stores
  nothing and the client sees the connection close);
* a connection closed after its answer lingers (gunicorn drains what the
  client still sends, for up to 1 s) on its request thread, not in the
  event loop, where it would stall every other client;
* ``Expect: 100-continue`` is answered only when the application starts
  reading the body: a request refused before that (401, 403, 404, 413,
  507...) gets its final status instead, and the connection is closed after
  it, so a well-behaved client never sends a body that would be refused.

TLS connections (gunicorn's ``certfile``) keep gthread's behaviour.
"""

from __future__ import annotations

import errno
import os
import selectors
import socket
import time
from functools import partial
from typing import TYPE_CHECKING, Any, Iterator

from gunicorn import util
from gunicorn.workers.gthread import ThreadWorker

if TYPE_CHECKING:
    from gunicorn.http.message import Request
    from gunicorn.sock import BaseSocket
    from gunicorn.workers.gthread import TConn

HEADER_TIMEOUT = float(os.environ.get("HATRAC_HEADER_TIMEOUT", 20))
BODY_TIMEOUT = float(os.environ.get("HATRAC_BODY_TIMEOUT", 30))
# a head longer than this is handed over as it is: gunicorn's limits refuse it
HEAD_LIMIT = 64 * 1024
# how long a closing connection may drain what its client still sends
LINGER = 1.0
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


class ContinueOnRead:
    """A request body that answers ``Expect: 100-continue`` on its first read."""

    def __init__(self, body: Any, sock: socket.socket) -> None:
        self._body = body
        self._sock = sock
        self.continue_pending = True

    def _go_on(self) -> None:
        if self.continue_pending:
            self.continue_pending = False
            self._sock.sendall(CONTINUE)

    def body_bypassed(self) -> None:
        """The body is read straight from the socket (hatrac.rest.body): go on now."""
        self._go_on()

    def read(self, *args: Any) -> bytes:
        self._go_on()
        return self._body.read(*args)

    def readline(self, *args: Any) -> bytes:
        self._go_on()
        return self._body.readline(*args)

    def readlines(self, *args: Any) -> list:
        self._go_on()
        return self._body.readlines(*args)

    def __iter__(self) -> Iterator[bytes]:
        self._go_on()
        return iter(self._body)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._body, name)


class ParkingThreadWorker(ThreadWorker):
    """gthread, but no request thread waits for a client's request headers."""

    def _parks(self) -> bool:
        return not self.cfg.is_ssl

    # -- the event loop (main thread) -------------------------------------------
    def accept(self, listener: BaseSocket) -> None:
        if not self._parks():
            return super().accept(listener)
        try:
            client_sock, client_addr = listener.accept()
        except OSError as error:
            if error.errno not in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                raise
            return
        self.nr_conns += 1
        from gunicorn.workers.gthread import TConn

        conn = TConn(self.cfg, client_sock, client_addr, listener.getsockname())
        self._park(conn)

    def _park(self, conn: TConn) -> None:
        """Wait in the event loop (no thread) for the rest of the request head."""
        conn.sock.setblocking(False)
        if not getattr(conn, "hatrac_head", None):
            conn.hatrac_head = bytearray()
            conn.timeout = time.monotonic() + HEADER_TIMEOUT
        self.pending_conns.append(conn)
        self.poller.register(
            conn.sock, selectors.EVENT_READ, partial(self.on_pending_socket_readable, conn)
        )

    def on_client_socket_readable(self, conn: TConn, client: socket.socket) -> None:
        """A kept-alive connection sends its next request: park it until whole."""
        if not self._parks():
            return super().on_client_socket_readable(conn, client)
        self.poller.unregister(client)
        self.keepalived_conns.remove(conn)
        conn.hatrac_head = bytearray()
        conn.timeout = time.monotonic() + HEADER_TIMEOUT
        self.pending_conns.append(conn)
        self.poller.register(
            conn.sock, selectors.EVENT_READ, partial(self.on_pending_socket_readable, conn)
        )
        self.on_pending_socket_readable(conn, client)

    def on_pending_socket_readable(self, conn: TConn, client: socket.socket) -> None:
        if not self._parks() or getattr(conn, "hatrac_head", None) is None:
            return super().on_pending_socket_readable(conn, client)
        head = conn.hatrac_head
        closed = False
        try:
            while len(head) < HEAD_LIMIT:
                data = conn.sock.recv(HEAD_LIMIT - len(head))
                if not data:
                    closed = True
                    break
                head += data
        except (BlockingIOError, InterruptedError):
            pass
        except OSError:
            closed = True
        complete = b"\r\n\r\n" in head or len(head) >= HEAD_LIMIT
        if not closed and not complete:
            return  # stay parked; murder_pending closes it at its deadline
        self.poller.unregister(client)
        self.pending_conns.remove(conn)
        if closed and not head:
            self.nr_conns -= 1
            conn.close()
            return
        # a partial head on a closed connection goes to the parser, which
        # reports it as gunicorn always does
        conn.data_ready = True
        self.enqueue_req(conn)

    # -- request threads --------------------------------------------------------
    def handle(self, conn: TConn) -> Any:  # what gthread gives: a bool, or its own marker
        head = getattr(conn, "hatrac_head", None)
        if head is not None:
            conn.hatrac_head = None
            conn.sock.setblocking(True)
            conn.init()
            conn.parser.unreader.unread(bytes(head))
        result = super().handle(conn)
        if result is False and not conn.is_http2:
            # gthread would linger on the closing socket (draining what
            # the client still sends) in the event loop, stalling every client:
            # do it here, on this request's thread
            util.close_graceful(conn.sock, timeout=LINGER)
        return result

    def handle_request(self, req: Request, conn: TConn) -> bool:
        deferred = None
        if getattr(req, "_expected_100_continue", False):
            req._expected_100_continue = False  # gunicorn would answer it before the app
            deferred = req.body = ContinueOnRead(req.body, conn.sock)
        conn.sock.settimeout(BODY_TIMEOUT)
        try:
            keepalive = super().handle_request(req, conn)
        finally:
            try:
                conn.sock.settimeout(None)
            except OSError:
                pass
        if deferred is not None and deferred.continue_pending:
            # refused without reading: the client may or may not send the body
            # now; closing is the only way to know where the next request starts
            return False
        return keepalive
