"""The request-body wrappers of issue 13 (guard, 100-continue) keep the direct
socket read of large bodies (hatrac.rest.body) working, and answer
``Expect: 100-continue`` before it starts."""

from __future__ import annotations

import socket
import threading

from gunicorn.http.body import Body, LengthReader
from gunicorn.http.unreader import SocketUnreader

from hatrac.gunicorn_worker import CONTINUE, ContinueOnRead
from hatrac.observability import _CountingInput
from hatrac.rest.bodies import GuardedInput
from hatrac.rest.body import DirectOnRead, SocketBody, body_stream


def test_direct_read_through_every_wrapper():
    server, client = socket.socketpair()
    try:
        size = 1024 * 1024
        body = Body(LengthReader(SocketUnreader(server), size))
        expecting = ContinueOnRead(body, server)
        guarded = GuardedInput(expecting, size, chunked=False)
        counted = _CountingInput(guarded)
        reader = body_stream({"wsgi.input": counted}, size, fallback=counted)
        assert isinstance(reader, DirectOnRead)
        assert guarded.drainable() is False and expecting.continue_pending
        first = reader.read(0)  # the first read makes the direct reader
        assert first == b"" and isinstance(reader._reader, SocketBody)
        assert client.recv(len(CONTINUE)) == CONTINUE  # sent before the body is read
        assert not guarded.drainable()  # read past the guard: never drained
        sender = threading.Thread(target=client.sendall, args=(b"z" * size,))
        sender.start()
        got = 0
        while got < size:
            got += len(reader.read(256 * 1024))
        sender.join(10)
        assert counted.count == size
    finally:
        server.close()
        client.close()


def _direct(size: int, reuse: bool):
    server, client = socket.socketpair()
    body = Body(LengthReader(SocketUnreader(server), size))
    reader = body_stream({"wsgi.input": body}, size, fallback=body, reuse=reuse)
    return server, client, body, reader


def test_reused_buffer_blocks_and_a_body_cut_short():
    """Chunk bodies may share one buffer (each block valid until the next read);
    a client that stops early gives a short block, never a BufferError."""
    size = 1024 * 1024
    for reuse in (False, True):
        server, client, body, reader = _direct(size, reuse)
        try:
            data = bytes(range(256)) * (size // 256)

            def send_part(client=client, data=data):
                client.sendall(data[: size // 2 + 10])
                client.shutdown(socket.SHUT_WR)  # the client gives up mid-body

            sender = threading.Thread(target=send_part)
            sender.start()
            quarter = size // 4
            first = reader.read(quarter)
            kept = bytes(first)
            second = reader.read(quarter)
            third = reader.read(size)  # only what arrived: short
            assert kept == data[:quarter]
            assert bytes(second) == data[quarter : 2 * quarter]
            assert bytes(third) == data[2 * quarter : size // 2 + 10]
            if reuse:  # blocks of one size are views of the same buffer
                assert isinstance(first, memoryview) and first.obj is second.obj
            else:  # a fresh buffer per block, never overwritten
                assert bytes(first) == kept
            assert body.failed
            sender.join(10)
        finally:
            server.close()
            client.close()
