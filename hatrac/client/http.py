"""One keep-alive connection pool per server, with credentials, retries and errors.

Retries: connection errors, timeouts and answers 500, 502, 503, 504 are
retried with jittered exponential backoff (``Retry-After`` honoured, capped);
a 4xx is never retried, nor 507 (storage full) and 501. Every request body
comes from a factory so a retry sends it again from its start.

Errors become :class:`HatracError`, carrying the server's reason (from RFC
9457 JSON or the text body), the request id and the exit code scripts see.
"""

from __future__ import annotations

import json
import os
import random
import re
import threading
import time
from typing import Any, Callable, Iterable, Optional

import requests

from .locations import RemotePath

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_NOT_FOUND = 3
EXIT_DENIED = 4
EXIT_UNAVAILABLE = 5
EXIT_CONFLICT = 6

RETRIED_STATUSES = {500, 502, 503, 504}
MAX_RETRY_AFTER = 30.0
USER_AGENT = "hatrac-client"
_TAGS = re.compile(r"<[^>]+>")


class HatracError(Exception):
    """A failed request or transfer, with what the user needs to see."""

    def __init__(
        self,
        message: str,
        status: Optional[int] = None,
        request_id: Optional[str] = None,
        exit_code: Optional[int] = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.request_id = request_id
        self.exit_code = exit_code if exit_code is not None else exit_code_for(status)

    def __str__(self) -> str:
        text = self.message
        if self.status is not None:
            text = f"{self.status}: {text}"
        if self.request_id:
            text += f" (request id {self.request_id})"
        return text

    def as_json(self) -> dict:
        return {"status": self.status, "reason": self.message, "request_id": self.request_id}


def exit_code_for(status: Optional[int]) -> int:
    if status is None:
        return EXIT_FAILED
    if status == 404:
        return EXIT_NOT_FOUND
    if status in (401, 403):
        return EXIT_DENIED
    if status in (409, 412):
        return EXIT_CONFLICT
    if status in RETRIED_STATUSES:
        return EXIT_UNAVAILABLE
    return EXIT_FAILED


def reason_of(response: requests.Response) -> str:
    """The server's human reason: RFC 9457 ``detail``, else the text body."""
    text = response.text if response.content is not None else ""
    if "json" in response.headers.get("Content-Type", ""):
        try:
            body = json.loads(text)
            if isinstance(body, dict) and body.get("detail"):
                return str(body["detail"])
        except ValueError:
            pass
    text = _TAGS.sub(" ", text)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    # our text errors start with the status line ("404 Not Found"); the reason follows
    if len(lines) > 1 and re.match(r"^\d{3}\b", lines[0]):
        lines = lines[1:]
    reason = " ".join(lines)[:1000]
    return reason or response.reason or "no reason given"


BodyFactory = Callable[[], Optional[Iterable[bytes]]]


class Throttle:
    """A byte rate limit shared by every transfer of a run (``--limit-rate``)."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.start = time.monotonic()
        self.spent = 0
        self._lock = threading.Lock()

    def spend(self, count: int) -> None:
        with self._lock:
            self.spent += count
            due = self.start + self.spent / self.rate
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)


def retry_after_seconds(value: Optional[str]) -> Optional[float]:
    """The delay a ``Retry-After`` header asks for in seconds (ASCII digits), else
    None: an HTTP date, or anything else, leaves the client's own backoff."""
    if value is None:
        return None
    value = value.strip()
    if not value or not value.isascii() or not value.isdigit():
        return None
    return float(value)


class Connection:
    """Requests to one server (``origin``), authenticated, retried, checked."""

    def __init__(
        self,
        origin: str,
        credential: Optional[dict] = None,
        ca_bundle: Optional[str] = None,
        retries: int = 5,
        retry_wait: float = 0.5,
        timeout: float = 60.0,
        pool: int = 16,
        limit_rate: Optional[float] = None,
        on_retry: Optional[Callable[[str], None]] = None,
        max_retry_wait: float = MAX_RETRY_AFTER,
    ) -> None:
        self.max_retry_wait = max_retry_wait
        self.on_retry = on_retry
        self.origin = origin
        self.throttle = Throttle(limit_rate) if limit_rate else None
        self.retries = retries
        self.retry_wait = retry_wait
        self.timeout = timeout
        self.session = requests.Session()
        adapter = requests.adapters.HTTPAdapter(pool_connections=2, pool_maxsize=pool)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.session.headers["User-Agent"] = USER_AGENT
        self.session.trust_env = False
        if ca_bundle:
            self.session.verify = ca_bundle
        self.credential_source: Optional[str] = None
        self.cookie: Optional[str] = None
        token = os.environ.get("HATRAC_TOKEN")
        if token:
            self.session.headers["Authorization"] = "Bearer " + token
            self.credential_source = "the HATRAC_TOKEN environment variable"
        elif credential and credential.get("token"):
            self.session.headers["Authorization"] = "Bearer " + credential["token"]
            self.credential_source = "the stored token"
        elif credential and credential.get("cookie"):
            # a header, not the cookie jar: sent only to this server, and dropped by
            # requests on a redirect (e.g. to a presigned S3 URL)
            self.cookie = credential["cookie"]
            self.credential_source = "the stored session"

    def close(self) -> None:
        self.session.close()

    def retry_delay(self, attempt: int, response: Optional[requests.Response]) -> float:
        """Seconds to wait before retry ``attempt``: jittered backoff, or longer when
        the answer's ``Retry-After`` asks, never over ``max_retry_wait``."""
        delay = self.retry_wait * (2**attempt) * (0.5 + random.random())
        # "is not None": a Response is false when its status is an error (a 503 is)
        if response is not None:
            asked = retry_after_seconds(response.headers.get("Retry-After"))
            if asked is not None:
                delay = max(delay, asked)
        return min(delay, self.max_retry_wait)

    def _wait(self, attempt: int, response: Optional[requests.Response]) -> None:
        time.sleep(self.retry_delay(attempt, response))

    def request(
        self,
        method: str,
        resource: str,
        *,
        headers: Optional[dict] = None,
        body: Optional[BodyFactory] = None,
        json_body: Any = None,
        data: Any = None,
        ok: tuple[int, ...] = (200, 201, 204),
        stream: bool = False,
        allow_redirects: bool = True,
    ) -> requests.Response:
        """Send a request (``resource``: a URL path on this server, or a full URL),
        retrying transient failures; raise :class:`HatracError` unless the
        status is in ``ok``."""
        url = resource if resource.startswith(("http://", "https://")) else self.origin + resource
        if self.cookie and (url + "/").startswith(self.origin + "/"):
            headers = {**(headers or {}), "Cookie": self.cookie}
        last_error = ""
        for attempt in range(self.retries + 1):
            response = None
            try:
                response = self.session.request(
                    method,
                    url,
                    headers=headers,
                    data=body() if body is not None else data,
                    json=json_body,
                    stream=stream,
                    timeout=(10, self.timeout),
                    allow_redirects=allow_redirects,
                )
            except requests.exceptions.SSLError as error:
                raise HatracError(
                    f"TLS failure talking to {self.origin}: {_root_cause(error)}; give the "
                    "server's certificate authority with --ca-bundle if it is a private one",
                    exit_code=EXIT_UNAVAILABLE,
                )
            except (requests.ConnectionError, requests.Timeout) as error:
                last_error = f"cannot reach {self.origin}: {_root_cause(error)}"
            else:
                if response.status_code in ok:
                    return response
                if response.status_code not in RETRIED_STATUSES:
                    raise self.error_from(response)
                last_error = ""
            if attempt < self.retries:
                if response is not None:
                    last_error = f"{response.status_code} {reason_of(response)[:200]}"
                    response.close()
                if self.on_retry is not None:
                    self.on_retry(f"{method} {resource}: {last_error}; retrying")
                self._wait(attempt, response)
        if response is not None:
            raise self.error_from(response, f" (after {self.retries + 1} attempts)")
        raise HatracError(
            f"{last_error} (after {self.retries + 1} attempts)", exit_code=EXIT_UNAVAILABLE
        )

    def error_from(self, response: requests.Response, suffix: str = "") -> HatracError:
        reason = reason_of(response) + suffix
        status = response.status_code
        if status == 401 and self.credential_source:
            reason += (
                f"; the server refused {self.credential_source} (expired, logged out or "
                "revoked): log in again with 'hatrac-client login'"
            )
        elif status == 401:
            reason += "; log in with 'hatrac-client login' or set HATRAC_TOKEN"
        elif status == 507:
            reason = "the server's storage is full: " + reason
        return HatracError(reason, status, response.headers.get("X-Request-Id"))

    # -- small helpers ----------------------------------------------------------------
    def head(self, target: RemotePath, ok: tuple[int, ...] = (200,)) -> requests.Response:
        try:
            return self.request("HEAD", target.resource, ok=ok, allow_redirects=False)
        except HatracError as error:
            if error.status is None:
                raise
            # a HEAD error has no body: ask again with GET for the server's reason
            try:
                response = self.request("GET", target.resource, ok=ok, stream=True)
            except HatracError as detailed:
                if detailed.status == error.status:
                    raise detailed from None
                raise error from None
            response.close()
            raise error

    def get_json(self, resource: str) -> Any:
        response = self.request("GET", resource, headers={"Accept": "application/json"})
        try:
            return response.json()
        except ValueError:
            raise HatracError(f"the server's answer to GET {resource} is not JSON")

    def listing(self, target: RemotePath) -> list[str]:
        """The child URL paths of a namespace (a JSON array of URLs)."""
        found = self.get_json(target.resource)
        if not isinstance(found, list):
            raise HatracError(f"{target.display()} is not a namespace")
        return [urlpath(str(url)) for url in found]


def urlpath(url: str) -> str:
    """The path of a URL the server gave (some servers give absolute URLs)."""
    if url.startswith(("http://", "https://")):
        rest = url.split("://", 1)[1]
        return "/" + rest.split("/", 1)[1] if "/" in rest else "/"
    return url


def _root_cause(error: BaseException) -> str:
    text = str(error)
    match = re.search(r"\[Errno -?\d+\] [^')\]]+|certificate verify failed[^')\]]*", text)
    return match.group(0) if match else text[:300]
