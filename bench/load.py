"""The load client: several processes, each with one keep-alive HTTP connection.

Every figure of the benchmark comes from here, and the service is reached
only over HTTP from these child processes. ``http.client`` keeps the client
cheap per request; whether it is fast enough is checked in every run by
pointing the same code at nginx's 1 KiB file (the ``client_capacity``
figure, which must sit far above every service figure).

A plan says what each request is:

* ``{"kind": "get", "paths": [...]}``: GET paths in turn (each client starts elsewhere);
* ``{"kind": "put", "prefix": "/hatrac/ns/", "size": 1024}``: PUT new objects
  ``PREFIX cW-N`` with a body of ``size`` bytes;
* ``{"kind": "mix", "get_fraction": 0.9, ...}``: both, chosen at random with a fixed seed.

``"variants": [{...}, {...}]`` in a plan gives client ``i`` the plan updated
with variant ``i % n``: two kinds of requests measured at the same moment, on
the same machine load (:func:`run_variants` returns one result per variant).

``headers`` in a plan are sent with every request (e.g. a session cookie).
``reconnect_every``: each client closes its connection after that many
requests and opens a new one for the next (whose time includes the connect),
so that which server process serves which client is drawn again.
Large transfers are in :mod:`bench.transfers`, the machine's own ceilings in
:mod:`bench.ceilings`; they run in child processes too, through
:func:`in_child` and :func:`run_processes`.
"""

from __future__ import annotations

import http.client
import multiprocessing
import random
import time
import urllib.parse
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Callable, Optional, Union

MIB = 1024 * 1024
CONTEXT = multiprocessing.get_context("fork")


@dataclass
class LoadResult:
    """What a load run measured: completed requests, failures, wall time, latencies."""

    ops: int = 0
    errors: int = 0
    elapsed: float = 0.0
    latencies: list = field(default_factory=list)
    first_error: Optional[str] = None
    created: list = field(default_factory=list)  # paths of the objects PUT successfully

    @property
    def rate(self) -> float:
        return self.ops / self.elapsed if self.elapsed > 0 else 0.0

    def percentile(self, fraction: float) -> float:
        """A latency percentile in milliseconds (nearest rank)."""
        if not self.latencies:
            return 0.0
        ordered = sorted(self.latencies)
        index = min(len(ordered) - 1, max(0, int(round(fraction * len(ordered))) - 1))
        return ordered[index] * 1000

    def summary(self) -> dict:
        return {
            "ops_per_s": round(self.rate, 1),
            "p50_ms": round(self.percentile(0.50), 2),
            "p99_ms": round(self.percentile(0.99), 2),
            "requests": self.ops,
            "errors": self.errors,
            "first_error": self.first_error,
            "seconds": round(self.elapsed, 2),
        }


def connect(base_url: str, timeout: float = 120) -> http.client.HTTPConnection:
    """A (not yet opened) connection to the server at ``base_url``."""
    parts = urllib.parse.urlsplit(base_url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    connection.blocksize = MIB  # file bodies are sent in 1 MiB reads
    return connection


class Requester:
    """One keep-alive connection that reconnects once if the server closed it."""

    def __init__(self, base_url: str):
        self.base_url = base_url
        self.connection = connect(base_url)

    def request(
        self,
        method: str,
        path: str,
        body: Union[None, str, bytes, BinaryIO] = None,
        headers: Optional[dict] = None,
    ) -> tuple[int, http.client.HTTPResponse, bytes]:
        """Send one request; return (status, response headers, body bytes)."""
        for attempt in (0, 1):
            try:
                self.connection.request(method, path, body=body, headers=headers or {})
                reply = self.connection.getresponse()
                data = reply.read()
                return reply.status, reply, data
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                self.connection.close()
                self.connection = connect(self.base_url)
                if attempt:
                    raise
                if hasattr(body, "seek"):
                    body.seek(0)
        raise AssertionError("unreachable")

    def close(self) -> None:
        self.connection.close()


def _client(index, base_url, plan, count, duration, barrier, queue) -> None:
    variants = plan.get("variants")
    if variants:  # client i runs variant i % n (e.g. anonymous and session clients at once)
        plan = {**plan, **variants[index % len(variants)]}
    headers = dict(plan.get("headers", {}))
    kind = plan["kind"]
    paths = plan.get("paths") or []
    body = b"b" * plan.get("size", 1024)
    put_headers = dict(headers, **{"Content-Type": "application/octet-stream"})
    chooser = random.Random(index)
    get_fraction = plan.get("get_fraction", 1.0 if kind == "get" else 0.0)
    prefix = plan.get("prefix", "")
    reconnect_every = plan.get("reconnect_every")
    requester = Requester(base_url)
    result = LoadResult()
    latencies = result.latencies
    cursor = chooser.randrange(len(paths)) if paths else 0
    serial = 0
    # one warm-up request opens the connection before the clock starts
    if paths:
        requester.request("GET", paths[0], headers=headers)
    barrier.wait()
    start = time.monotonic()
    deadline = start + duration if duration else None
    done = 0
    while True:
        if count is not None and done >= count:
            break
        if deadline is not None and time.monotonic() >= deadline:
            break
        if kind == "get" or (kind == "mix" and chooser.random() < get_fraction):
            method, path, payload, sent = "GET", paths[cursor % len(paths)], None, headers
            cursor += 1
            expected = (200,)
        else:
            method, path, payload, sent = "PUT", f"{prefix}c{index}-{serial}", body, put_headers
            serial += 1
            expected = (200, 201)
        began = time.monotonic()
        try:
            status, _, data = requester.request(method, path, payload, sent)
        except OSError as error:
            status, data = 0, str(error).encode()
        latencies.append(time.monotonic() - began)
        done += 1
        if reconnect_every and done % reconnect_every == 0:
            requester.close()  # the next request connects again (timed, as any request)
            requester = Requester(base_url)
        if status in expected:
            result.ops += 1
            if method == "PUT":
                result.created.append(path)
        else:
            result.errors += 1
            if result.first_error is None:
                result.first_error = f"{method} {path}: {status} {data[:200]!r}"
    end = time.monotonic()
    requester.close()
    queue.put((index, start, end, result))


def run_load(
    base_url: str,
    plan: dict,
    clients: int = 8,
    count: Optional[int] = None,
    duration: Optional[float] = None,
) -> LoadResult:
    """Run ``clients`` processes, each doing ``count`` requests or running ``duration`` s."""
    parts = run_processes(_client, clients, base_url, plan, count, duration)
    return combine(parts, parts)


def run_variants(
    base_url: str,
    plan: dict,
    clients: int = 8,
    count: Optional[int] = None,
    duration: Optional[float] = None,
) -> list[LoadResult]:
    """Like :func:`run_load`, with ``plan["variants"]`` run side by side: one result each."""
    variants = len(plan["variants"])
    parts = run_processes(_client, clients, base_url, plan, count, duration)
    return [
        combine([part for part in parts if part[0] % variants == number], parts)
        for number in range(variants)
    ]


def run_processes(target: Callable, clients: int, *args) -> list[tuple]:
    """Start ``clients`` processes of ``target(index, *args, barrier, queue)`` together
    (the barrier starts their clocks at once); the (index, start, end, result) each
    puts on the queue."""
    barrier = CONTEXT.Barrier(clients)
    queue = CONTEXT.Queue()
    processes = [
        CONTEXT.Process(target=target, args=(i, *args, barrier, queue), daemon=True)
        for i in range(clients)
    ]
    for process in processes:
        process.start()
    parts = [queue.get(timeout=3600) for _ in processes]
    for process in processes:
        process.join()
    return parts


def combine(mine: list[tuple], every: list[tuple]) -> LoadResult:
    """One result of the clients in ``mine``, over the time all of ``every`` ran."""
    total = LoadResult()
    for _, _, _, result in mine:
        total.ops += result.ops
        total.errors += result.errors
        total.latencies.extend(result.latencies)
        total.first_error = total.first_error or result.first_error
        total.created.extend(result.created)
    total.elapsed = max(part[2] for part in every) - min(part[1] for part in every)
    return total


class Unavailable(Exception):
    """The service does not offer what a workload needs (yet)."""


def in_child(function: Callable, *args: Any) -> Any:
    """Run ``function(*args)`` in a separate process and return its (picklable) result."""
    queue = CONTEXT.Queue()

    def target():
        try:
            queue.put(("ok", function(*args)))
        except Unavailable as error:
            queue.put(("unavailable", str(error)))
        except BaseException as error:  # report it to the parent, whatever it is
            queue.put(("error", f"{type(error).__name__}: {error}"))

    process = CONTEXT.Process(target=target)  # not a daemon: it may start processes itself
    process.start()
    outcome, value = queue.get(timeout=3600)
    process.join()
    if outcome == "unavailable":
        raise Unavailable(value)
    if outcome == "error":
        raise RuntimeError(value)
    return value
