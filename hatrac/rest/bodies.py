"""Request bodies as the service reads them: guarded, drained, parsed safely.

:class:`BodyGuard` is WSGI middleware (installed by
:func:`hatrac.app.init_app`) that wraps ``wsgi.input`` in
:class:`GuardedInput`:

* a body the server cannot decode (a malformed ``Transfer-Encoding:
  chunked`` body, for which gunicorn raises ``InvalidChunkSize``, or a
  connection that breaks mid-body) raises :class:`MalformedBody`, a 400,
  wherever it is read, instead of escaping as a 500;
* a request answered with an error before its body was read (401, 403, 404,
  413, 507...) and whose declared length is at most :data:`DRAIN_LIMIT`
  has the rest of its body read and discarded before the answer goes out,
  so a client that sends its whole body before it reads gets the status
  instead of a broken pipe. Larger bodies are not waited for (the
  connection closes after the answer); nor is a body whose sender was not
  yet told to go on (``Expect: 100-continue`` still unanswered, see
  :mod:`hatrac.gunicorn_worker`): such clients get the status first.

:func:`parse_json` parses the small JSON bodies of ``;acl``, rename, upload
jobs and tokens with a nesting limit, after the callers' size caps.
"""

from __future__ import annotations

import json
from typing import Any, Callable, Iterable, Iterator, Optional

from flask import request

from ..errors import BadRequest, HatracError, PayloadTooLarge

DRAIN_LIMIT = 16 * 1024 * 1024
DRAIN_BLOCK = 256 * 1024
MAX_JSON_DEPTH = 32


class MalformedBody(BadRequest):
    """The request body cannot be read as sent (bad chunked coding, cut off)."""


class GuardedInput:
    """``wsgi.input`` that turns read failures into 400s and counts what was read."""

    def __init__(self, stream: Any, declared: Optional[int], chunked: bool) -> None:
        self._stream = stream
        self.declared = declared
        self.chunked = chunked
        self.consumed = 0
        self.ended = False

    def _guard(self, read: Callable[[], Any], size: Optional[int] = None) -> Any:
        try:
            data = read()
        except HatracError:
            raise
        except Exception as error:  # the server's reader: gunicorn raises its ParseExceptions
            self.ended = True  # where the body ends is unknown now: never drain it
            raise MalformedBody(
                f"The request body could not be read as sent ({type(error).__name__}: "
                f"{' '.join(str(error).split())[:200]}); nothing was stored."
            ) from None
        if isinstance(data, (bytes, bytearray)):
            self.consumed += len(data)
            if not data and size != 0:
                self.ended = True
        elif isinstance(data, list):
            self.consumed += sum(len(line) for line in data)
        return data

    def read(self, *args: Any) -> bytes:
        size = args[0] if args else None
        return self._guard(lambda: self._stream.read(*args), size)

    def readline(self, *args: Any) -> bytes:
        return self._guard(lambda: self._stream.readline(*args))

    def readlines(self, *args: Any) -> list:
        return self._guard(lambda: self._stream.readlines(*args))

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def __iter__(self) -> Iterator[bytes]:
        while True:
            line = self.readline()
            if not line:
                return
            yield line

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)

    def body_bypassed(self) -> None:
        """The body is read past this wrapper (hatrac.rest.body): never drain it."""
        self.ended = True

    # -- draining -----------------------------------------------------------------
    def drainable(self, limit: int = DRAIN_LIMIT) -> bool:
        """Whether the client is sending body bytes nobody read, few enough to
        drain: a declared length within ``limit`` (a larger or chunked body
        is not waited for: the connection closes after the answer)."""
        if self.ended or getattr(self._stream, "continue_pending", False):
            return False
        if self.declared is not None:
            return 0 < self.declared - self.consumed <= limit
        return False

    def drain(self, limit: int = DRAIN_LIMIT) -> None:
        """Read and discard what is left of the body, at most ``limit`` bytes."""
        left = limit
        if self.declared is not None:
            left = min(left, self.declared - self.consumed)
        try:
            while left > 0:
                block = self.read(min(DRAIN_BLOCK, left))
                if not block:
                    return
                left -= len(block)
        except BadRequest:
            return


class BodyGuard:
    """WSGI middleware: :class:`GuardedInput` in, refused bodies drained out."""

    def __init__(self, wsgi_app: Callable) -> None:
        self.wsgi_app = wsgi_app

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        stream = environ.get("wsgi.input")
        if stream is None:
            return self.wsgi_app(environ, start_response)
        try:
            declared: Optional[int] = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            declared = None
        chunked = "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
        if chunked:
            declared = None
        guarded = GuardedInput(stream, declared, chunked)
        environ["wsgi.input"] = guarded

        def answer(status: str, headers: list, *exc_info: Any):
            if not status.startswith(("1", "2", "3")) and guarded.drainable():
                guarded.drain()
            return start_response(status, headers, *exc_info)

        return self.wsgi_app(environ, answer)


def parse_json(body: bytes, refusal: str) -> Any:
    """Parse a small JSON body; anything undecodable or nested too deep is a 400
    saying ``refusal`` (what the body must be)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest(f"{refusal} (the body is not UTF-8)") from None
    if json_nesting(text) > MAX_JSON_DEPTH:
        raise BadRequest(f"{refusal} (nested more than {MAX_JSON_DEPTH} levels deep)")
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        raise BadRequest(refusal) from None


def json_nesting(text: str) -> int:
    """The deepest nesting of arrays and objects in JSON text (strings skipped)."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


def read_small_body(limit: int) -> bytes:
    """A request body that is small by nature (JSON, text), refused above ``limit``."""
    if (request.content_length or 0) > limit:
        raise PayloadTooLarge(f"This body may be at most {limit} bytes.")
    body = request.stream.read(limit + 1)
    if len(body) > limit:
        raise PayloadTooLarge(f"This body may be at most {limit} bytes.")
    return body
