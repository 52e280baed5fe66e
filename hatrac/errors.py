"""The exception family of the service.

Every failure a client can cause or observe is one of these classes. Each
carries its HTTP status and a human-readable reason; the REST layer turns them
into responses in the negotiated format (see ``hatrac.rest.render``). The
model and the storage backends raise them; nothing below the REST layer
builds a response by hand.
"""

from __future__ import annotations

from typing import Optional


class HatracError(Exception):
    """Base class: an HTTP status and a message meant for the client."""

    status = 500
    title = "Internal Server Error"

    def __init__(self, message: Optional[str] = None, headers: Optional[dict] = None) -> None:
        super().__init__(message or self.title)
        self.message = message or self.title
        self.headers = dict(headers or {})


class BadRequest(HatracError):
    """The request is malformed, or a value in it is invalid (400)."""

    status = 400
    title = "Bad Request"


class Unauthenticated(HatracError):
    """The anonymous client is not allowed; logging in might help (401)."""

    status = 401
    title = "Unauthorized"


class Forbidden(HatracError):
    """The authenticated client is not allowed (403)."""

    status = 403
    title = "Forbidden"


class NotFound(HatracError):
    """No such name or version, and the client may know that (404)."""

    status = 404
    title = "Not Found"


class MethodNotAllowed(HatracError):
    """The resource does not take this method; ``Allow`` lists those it does (405)."""

    status = 405
    title = "Method Not Allowed"

    def __init__(self, method: str, allowed: list[str]) -> None:
        allow = ", ".join(sorted(set(allowed)))
        super().__init__(
            f"Method {method} is not supported on this resource; allowed: {allow}.",
            headers={"Allow": allow},
        )


class Conflict(HatracError):
    """The request contradicts the resource's state (a name bound or deleted, a namespace
    where an object is needed, a job incomplete) (409)."""

    status = 409
    title = "Conflict"


class PreconditionFailed(HatracError):
    """An ``If-Match`` or ``If-None-Match`` condition does not hold (412)."""

    status = 412
    title = "Precondition Failed"


class PayloadTooLarge(HatracError):
    """A body larger than a configured limit (413)."""

    status = 413
    title = "Payload Too Large"


class RangeNotSatisfiable(HatracError):
    """A ``Range`` entirely past the body; ``Content-Range`` gives its size (416)."""

    status = 416
    title = "Range Not Satisfiable"

    def __init__(self, size: int) -> None:
        super().__init__(
            f"The requested range is not satisfiable for a body of {size} bytes.",
            headers={"Content-Range": f"bytes */{size}"},
        )


class TooManyRequests(HatracError):
    """Too many attempts in a short time (failed logins) (429)."""

    status = 429
    title = "Too Many Requests"


class InternalError(HatracError):
    """A fault of the service itself, reported without its details (500)."""

    status = 500
    title = "Internal Server Error"


class NotImplementedHere(HatracError):
    """A request the protocol allows but this service does not implement (501)."""

    status = 501
    title = "Not Implemented"


class BadGateway(HatracError):
    """An upstream service (e.g. S3) failed; the request may be retried."""

    status = 502
    title = "Bad Gateway"


class ServiceUnavailable(HatracError):
    """A transient fault (database down, storage busy or full); retry later.

    Every such answer carries ``Retry-After`` (seconds), so that clients and
    proxies back off instead of hammering a service that is recovering.
    """

    status = 503
    title = "Service Unavailable"
    retry_after = 5

    def __init__(self, message: Optional[str] = None, headers: Optional[dict] = None) -> None:
        super().__init__(message, headers)
        self.headers.setdefault("Retry-After", str(self.retry_after))


class DatabaseUnusable(ServiceUnavailable):
    """The database refuses us for good (credentials, database name, host):
    retrying cannot help, an administrator must fix the DSN or the server."""


def access_denied(client_identity: Optional[str], message: str) -> HatracError:
    """The right error for a refusal: 401 for anonymous clients, 403 otherwise."""
    if client_identity is None:
        return Unauthenticated(message)
    return Forbidden(message)
