"""Reading a large request body with one copy per byte instead of four or five.

gunicorn's body reader hands each block through two ``BytesIO`` buffers
(its unreader's and its ``Body``'s), copying every byte several times; on a
1 GiB PUT those copies cost as much CPU as SHA-256. :class:`SocketBody`
reads a body of known length (``Content-Length``, not chunked) straight from
gunicorn's socket into a fresh buffer per block (``recv_into``: the kernel's
copy only), after taking what gunicorn had already received. It keeps
gunicorn's own accounting right (what is left of the body, the byte count of
the access log, a failed read marking the connection unusable) and hands
back any bytes beyond the body (a pipelined next request) to gunicorn.

Any other server, a chunked body, or a body gunicorn has started to buffer
is read through ``wsgi.input`` as before (:func:`body_stream`).
"""

from __future__ import annotations

from typing import Any, Optional

try:  # the WSGI server the service ships with; others are read the standard way
    from gunicorn.http.body import Body as _GunicornBody
    from gunicorn.http.body import LengthReader as _GunicornLengthReader
except ImportError:  # pragma: no cover - gunicorn is a dependency
    _GunicornBody = _GunicornLengthReader = None

DIRECT_AFTER = 256 * 1024  # smaller bodies gain nothing worth the special path


class SocketBody:
    """``read(size)`` of a gunicorn request body, straight from the socket."""

    def __init__(self, body: Any, counter: Any = None, reuse: bool = False) -> None:
        self._body = body
        # reuse: one buffer for every block, each block (a memoryview) valid only
        # until the next read; for consumers that are done with a block by then
        self._reuse = reuse
        self._buffer: Optional[bytearray] = None
        self._reader = body.reader
        self._unreader = body.reader.unreader
        self._sock = self._unreader.sock
        self._counter = counter  # the access log's byte counter (wsgi.input wrapper)
        held = self._unreader.take_buffered()
        left = self._reader.length
        if len(held) > left:  # bytes of the next request: gunicorn keeps them
            self._unreader.unread(held[left:])
            held = held[:left]
        self._held = memoryview(held)

    def read(self, size: int = -1) -> Any:
        """Up to ``size`` bytes (fewer only at the end of the body)."""
        left = self._reader.length
        size = left if size is None or size < 0 else min(size, left)
        if size <= 0:
            return b""
        if self._reuse:
            # no allocation (and zero-filling of fresh memory) per block
            if self._buffer is None or len(self._buffer) < size:
                self._buffer = bytearray(size)
            buffer = self._buffer
            view = memoryview(buffer)[:size]
        else:
            # a fresh buffer per block, never changed once returned (so a hashing
            # thread may still read it while the next block is received)
            buffer = bytearray(size)
            view = memoryview(buffer)
        filled = min(len(self._held), size)
        if filled:
            view[:filled] = self._held[:filled]
            self._held = self._held[filled:]
        try:
            while filled < size:
                got = self._sock.recv_into(view[filled:], size - filled)
                if not got:
                    break  # the client closed early: the caller sees a short body
                filled += got
        except BaseException:
            self._body.failed = True  # where the next request starts is unknown now
            raise
        finally:
            self._reader.length -= filled
            if self._counter is not None:
                self._counter.count += filled
        if filled < size:
            self._body.failed = True
            if self._reuse:
                return view[:filled]
            view.release()  # a bytearray with a view on it cannot shrink (BufferError)
            del buffer[filled:]
        return view if self._reuse else buffer


def body_stream(environ: dict, length: Optional[int], fallback: Any, reuse: bool = False) -> Any:
    """The fastest reader of this request's body; ``fallback`` when no faster one applies.

    ``reuse``: the blocks read may share one buffer (memoryviews, each valid until
    the next read), for a consumer that never keeps a block past that."""
    if _GunicornBody is None or length is None or length < DIRECT_AFTER:
        return fallback
    stream = environ.get("wsgi.input")
    counter = None
    # through the wrappers: hatrac.observability's counting one, hatrac.rest.bodies'
    # guard, hatrac.gunicorn_worker's Expect: 100-continue
    wrappers = []
    while not isinstance(stream, _GunicornBody):
        fields = getattr(stream, "__dict__", {})
        inner = fields.get("_stream") or fields.get("_body")
        if inner is None:
            return fallback
        if counter is None and "count" in fields:
            counter = stream
        wrappers.append(stream)
        stream = inner
    reader = stream.reader
    if (
        not isinstance(reader, _GunicornLengthReader)
        or reader.length != length
        or stream.buf.tell()
        or not hasattr(reader.unreader, "sock")
        or not hasattr(reader.unreader, "take_buffered")
    ):
        return fallback

    def direct() -> SocketBody:
        for wrapper in wrappers:  # e.g. answer 100-continue, stop guarding reads
            bypassed = getattr(type(wrapper), "body_bypassed", None)
            if bypassed is not None:
                bypassed(wrapper)
        return SocketBody(stream, counter, reuse)

    return DirectOnRead(direct)


class DirectOnRead:
    """A :class:`SocketBody` made on the first read: a request refused before
    its body is read leaves the body to the wrappers (which may drain it, or
    must not answer ``Expect: 100-continue``)."""

    def __init__(self, make: Any) -> None:
        self._make = make
        self._reader: Optional[SocketBody] = None

    def read(self, size: int = -1) -> bytes:
        if self._reader is None:
            self._reader = self._make()
        return self._reader.read(size)
