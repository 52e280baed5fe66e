"""The service workloads (a)-(h) of issue 7, driven over HTTP by :mod:`bench.load`.

Each function returns a dict of figures, or raises :class:`~bench.load.Unavailable`
when the service does not offer what it needs yet (upload jobs, sessions);
the runner then reports that workload as "not available".
"""

from __future__ import annotations

import statistics
import threading
import urllib.parse
from typing import Optional

from .load import MIB, Requester, Unavailable, in_child, run_load, run_variants
from .servers import rss_bytes
from .transfers import large_get as load_large_get
from .transfers import large_put as load_large_put
from .transfers import upload_job as run_upload_job

NAMESPACE = {"Content-Type": "application/x-hatrac-namespace"}


def make_namespace(base_url: str, path: str, headers: Optional[dict] = None) -> None:
    def work():
        requester = Requester(base_url)
        status, _, data = requester.request(
            "PUT", path + "?parents=true", b"", dict(NAMESPACE, **(headers or {}))
        )
        requester.close()
        if status not in (201, 409):
            raise RuntimeError(f"creating namespace {path}: {status} {data[:300]!r}")

    in_child(work)


def object_paths(prefix: str, clients: int, per_client: int) -> list[str]:
    """The names the ``put`` plan of :mod:`bench.load` gives its objects."""
    return [f"{prefix}c{i}-{n}" for n in range(per_client) for i in range(clients)]


class RssSampler:
    """Samples the RSS of some processes every 50 ms; keeps each one's peak."""

    def __init__(self, pids: list[int]):
        self.pids = pids
        self.peaks = {pid: rss_bytes(pid) for pid in pids}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            for pid in self.pids:
                self.peaks[pid] = max(self.peaks[pid], rss_bytes(pid))
            self._stop.wait(0.05)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


MAX_ERROR_SHARE = 0.05


def _check(result, what: str) -> None:
    """Refuse a figure built on failures; a few 5xx under contention are reported, not fatal.

    Clients of the protocol retry 5xx answers, so a rare 503 (a serialization
    failure that outlived the service's retries) is counted in ``errors`` and
    the figure stands; more than 5% of failed requests void it.
    """
    if result.errors > MAX_ERROR_SHARE * max(1, result.ops + result.errors):
        raise RuntimeError(f"{what} failed: {result.errors} errors; {result.first_error}")


def small_puts(
    base_url: str,
    namespace: str,
    clients: int,
    per_client: int,
    headers: Optional[dict] = None,
    tag: str = "",
) -> tuple[dict, list]:
    """(a) 1 KiB PUTs of new objects by ``clients`` concurrent clients into one namespace.

    The objects are named ``NAMESPACE/TAGcW-N`` (a round's tag keeps names
    new). Returns the figures and the paths of the objects created.
    """
    make_namespace(base_url, namespace, headers)
    plan = {"kind": "put", "prefix": f"{namespace}/{tag}", "size": 1024, "headers": headers or {}}
    result = run_load(base_url, plan, clients, count=per_client)
    _check(result, "small PUTs")
    return result.summary(), sorted(result.created)


def small_gets(
    base_url: str,
    paths: list[str],
    clients: int,
    duration: float,
    headers: Optional[dict] = None,
) -> dict:
    """(b) 1 KiB GETs of existing objects, ``clients`` concurrent clients."""
    if not paths:
        raise RuntimeError("no objects to GET (their PUTs failed)")
    plan = {"kind": "get", "paths": paths, "headers": headers or {}}
    result = run_load(base_url, plan, clients, duration=duration)
    _check(result, "small GETs")
    return result.summary()


# Side by side, each client opens a new connection after this many requests:
# gunicorn's worker that accepted a connection serves it to its end, so with one
# connection for a whole step the clients' placement on the workers is drawn
# once, and the kind that drew a worker to itself won the round. Drawn again
# every 25 requests, the round's ratio spreads about half as much; both kinds
# pay the same connects, timed like any request (docs/benchmark.md)
SIDE_BY_SIDE_RECONNECT = 25


def side_by_side_puts(
    base_url: str, variants: list[dict], clients: int, duration: float, tag: str = ""
) -> tuple[list[dict], list[list]]:
    """Small PUTs of several kinds at once for ``duration`` s: ``variants`` of
    ``{"namespace", "headers"}``, client ``i`` doing variant ``i % n``. One
    summary and list of created paths each."""
    for variant in variants:
        make_namespace(base_url, variant["namespace"], variant.get("headers"))
    plan = {
        "kind": "put",
        "size": 1024,
        "reconnect_every": SIDE_BY_SIDE_RECONNECT,
        "variants": [
            {"prefix": f"{v['namespace']}/{tag}", "headers": v.get("headers") or {}}
            for v in variants
        ],
    }
    results = run_variants(base_url, plan, clients, duration=duration)
    for result in results:
        _check(result, "small PUTs side by side")
    return [r.summary() for r in results], [sorted(r.created) for r in results]


def side_by_side_gets(
    base_url: str, variants: list[dict], clients: int, duration: float
) -> list[dict]:
    """Small GETs of several kinds at once: ``variants`` of ``{"paths", "headers"}``."""
    plan = {
        "kind": "get",
        "reconnect_every": SIDE_BY_SIDE_RECONNECT,
        "variants": [{"paths": v["paths"], "headers": v.get("headers") or {}} for v in variants],
    }
    results = run_variants(base_url, plan, clients, duration=duration)
    for result in results:
        _check(result, "small GETs side by side")
    return [r.summary() for r in results]


def large_put(base_url: str, path: str, source: str, worker_pids: list[int]) -> dict:
    """(c) one large PUT streamed from a file, with the workers' RSS sampled."""
    before = {pid: rss_bytes(pid) for pid in worker_pids}
    with RssSampler(worker_pids) as sampler:
        put = load_large_put(base_url, path, source)
    return {
        "mib_per_s": round(put["bytes"] / MIB / put["seconds"], 1),
        **put,
        "rss_before": before,
        "rss_peak": sampler.peaks,
    }


def large_get(base_url: str, path: str, size: int, worker_pids: list[int]) -> dict:
    """(d) the GET of a large object of ``size`` bytes, with the workers' RSS sampled."""
    with RssSampler(worker_pids) as sampler:
        got = _transfer(base_url, path, size)
    return {**got, "rss_peak": sampler.peaks}


def _transfer(base_url: str, path: str, size: int) -> dict:
    got = load_large_get(base_url, path)
    if got["bytes"] != size:
        raise RuntimeError(f"GET {path} returned {got['bytes']} bytes, not {size}")
    return {"mib_per_s": round(got["bytes"] / MIB / got["seconds"], 1), **got}


def _median_transfer(transfers: list[dict]) -> dict:
    return {
        "mib_per_s": round(statistics.median(t["mib_per_s"] for t in transfers), 1),
        "bytes": transfers[0]["bytes"],
        "seconds": round(statistics.median(t["seconds"] for t in transfers), 4),
        "headers_s": round(statistics.median(t["headers_s"] for t in transfers), 4),
        "transfers": transfers,
    }


def large_get_pair(
    base_url: str,
    path: str,
    nginx_url: str,
    nginx_path: str,
    size: int,
    worker_pids: list[int],
    transfers: int = 3,
    service_first: bool = False,
) -> tuple[dict, dict]:
    """(d) and its ceiling: ``transfers`` GETs each, by nginx and by the service,
    alternating (nginx, service, service, nginx, nginx, service, ...; the service
    first with ``service_first``), each side's figure the median of its transfers.

    ``nginx_path`` should name the very file the service serves (a hard link to
    its stored object), so that both send the same bytes in the same cache state;
    the alternation gives neither side all the first reads (whoever goes first
    reads any page not cached; the caller alternates that from round to round).
    The workers' RSS is sampled through all of them, beside both sides.
    """
    sides: dict[str, list[dict]] = {"nginx": [], "service": []}
    with RssSampler(worker_pids) as sampler:
        for number in range(transfers):
            order = (
                ("nginx", "service") if (number + service_first) % 2 == 0 else ("service", "nginx")
            )
            for side in order:
                if side == "nginx":
                    sides[side].append(_transfer(nginx_url, nginx_path, size))
                else:
                    sides[side].append(_transfer(base_url, path, size))
    service = _median_transfer(sides["service"])
    service["rss_peak"] = sampler.peaks
    return _median_transfer(sides["nginx"]), service


def upload_job(
    base_url: str,
    path: str,
    source: str,
    chunk: int,
    streams: int,
    worker_pids: list[int],
    chunk_md5: bool = False,
) -> dict:
    """(e) the large object as an upload job whose chunks go over ``streams`` connections
    (with ``chunk_md5``: each with its precomputed ``Content-MD5``)."""
    with RssSampler(worker_pids) as sampler:
        outcome = in_child(run_upload_job, base_url, path, source, chunk, streams, chunk_md5)
    return {
        "mib_per_s": round(outcome["bytes"] / MIB / outcome["seconds"], 1),
        "streams": streams,
        **outcome,
        "rss_peak": sampler.peaks,
    }


def delete(base_url: str, path: str) -> None:
    """DELETE an object (the large objects of a round, so rounds do not fill the disk)."""

    def work():
        requester = Requester(base_url)
        status, _, data = requester.request("DELETE", path)
        requester.close()
        if status not in (200, 204, 404):
            raise RuntimeError(f"DELETE {path}: {status} {data[:300]!r}")

    in_child(work)


def listing(base_url: str, namespace: str, single_path: str, repeats: int) -> dict:
    """(f) GET of a namespace's listing (JSON) against one small GET, both unloaded."""
    single = run_load(base_url, {"kind": "get", "paths": [single_path]}, 1, count=repeats * 20)
    plan = {"kind": "get", "paths": [namespace], "headers": {"Accept": "application/json"}}
    listed = run_load(base_url, plan, 1, count=repeats)
    if listed.errors or single.errors:
        raise RuntimeError(f"listing failed: {listed.first_error or single.first_error}")
    list_ms, get_ms = listed.percentile(0.5), single.percentile(0.5)
    return {
        "listing_p50_ms": round(list_ms, 2),
        "small_get_p50_ms": round(get_ms, 2),
        "times_small_get": round(list_ms / get_ms, 2) if get_ms else None,
    }


def mixed(
    base_url: str,
    get_paths: list[str],
    put_namespace: str,
    clients: int,
    duration: float,
    headers: Optional[dict] = None,
    tag: str = "",
) -> dict:
    """(g) 90% GETs of existing objects, 10% PUTs of new ones, for a fixed time."""
    make_namespace(base_url, put_namespace, headers)
    plan = {
        "kind": "mix",
        "get_fraction": 0.9,
        "paths": get_paths,
        "prefix": f"{put_namespace}/{tag}",
        "size": 1024,
        "headers": headers or {},
    }
    result = run_load(base_url, plan, clients, duration=duration)
    _check(result, "mixed load")
    return result.summary()


def deep_namespace(depth: int, root: str) -> str:
    return root + "".join(f"/level{n}" for n in range(1, depth + 1))


def login_with_password(base_url: str, username: str, password: str) -> dict:
    """POST /authn/session (webauthn2's form) and return a Cookie header for the session."""

    def work():
        requester = Requester(base_url)
        body = urllib.parse.urlencode({"username": username, "password": password})
        status, reply, data = requester.request(
            "POST",
            "/authn/session",
            body,
            {"Content-Type": "application/x-www-form-urlencoded"},
        )
        requester.close()
        if status not in (200, 201):
            raise Unavailable(f"POST /authn/session answered {status}: {data[:200]!r}")
        cookies = [
            value.split(";", 1)[0]
            for key, value in reply.getheaders()
            if key.lower() == "set-cookie"
        ]
        if not cookies:
            raise Unavailable("POST /authn/session set no cookie")
        return {"Cookie": "; ".join(cookies)}

    return in_child(work)
