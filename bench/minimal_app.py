"""The minimal Flask app whose request rate is the ceiling of small requests.

Served by gunicorn with exactly the settings the service uses
(``hatrac.gunicorn_conf``): ``GET /small`` returns 1 KiB. Whatever Hatrac adds
on top of this (routing, auth, database, storage) is what the ratio measures.
``PUT /sink`` reads a body and drops it: how fast a PUT body can get through
gunicorn's (pure Python) request body reader at all. ``PUT /file`` reads a
body in 1 MiB blocks, writes it to a file and fsyncs it before answering:
the fair ceiling of a durable large PUT through a Python WSGI service. Its
files are kept (``sink-*.bin`` in the app's directory, removed by the
benchmark when the round ends), as the service keeps the objects it stores:
an unlinked file would hand its just-written blocks to the next writer, which
this machine's virtual disk writes 2-4x faster (docs/benchmark.md).
"""

import itertools
import os
import threading

from flask import Flask, Response, request

BODY = b"x" * 1024
_serial = itertools.count()


def create_app() -> Flask:
    """A Flask app with one route returning 1 KiB."""
    app = Flask("minimal")

    @app.get("/small")
    def small() -> Response:
        return Response(BODY, mimetype="application/octet-stream")

    @app.put("/sink")
    def sink() -> Response:
        """Read a request body in 1 MiB blocks and drop it: gunicorn's body-reading speed."""
        stream = request.environ["wsgi.input"]
        total = 0
        while True:
            block = stream.read(1024 * 1024)
            if not block:
                break
            total += len(block)
        return Response(f"{total}\n", status=201, mimetype="text/plain")

    @app.put("/file")
    def file() -> Response:
        """Read a body in 1 MiB blocks into a file, fsync it, answer: a durable PUT's floor."""
        stream = request.environ["wsgi.input"]
        path = f"sink-{os.getpid()}-{threading.get_ident()}-{next(_serial)}.bin"
        total = 0
        try:
            with open(path, "wb") as out:
                while True:
                    block = stream.read(1024 * 1024)
                    if not block:
                        break
                    out.write(block)
                    total += len(block)
                out.flush()
                os.fsync(out.fileno())
        except BaseException:
            os.unlink(path)
            raise
        return Response(f"{total}\n", status=201, mimetype="text/plain")

    return app
