"""The three groups of interleaved workloads, each a plan of rounds for :mod:`bench.rounds`.

* small requests: minimal Flask GET, (a) small PUTs; Flask, (b) small GETs;
  Flask, (g) mixed, per round;
* large objects: dd, MD5 of the size on one core, the minimal app's durable
  file PUT, (c) large PUT;
  nginx, (d) its GET; dd, (e) upload job over 1 stream; dd, over 4 streams;
  the round's objects are deleted at its end so that rounds do not fill the disk;
* authentication and depth: anonymous and session-cookie PUTs and GETs, in an
  order that alternates from round to round (so that neither always runs on a
  warmer machine), then the 10-level namespace.

Every step goes through ``context.attempt`` so that a failure is a string in
the results, not a crash; with ``--profile`` the service steps of the last
round are sampled with py-spy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from . import ceilings, workloads
from .rounds import Step, run_rounds


@dataclass
class Context:
    """What the groups need: URLs, sizes, the source file, and how to run a step."""

    url: str
    flask_url: str
    nginx_url: str
    workdir: Any
    source: str
    large: int
    chunk: int
    clients: int
    duration: float
    per_client: int
    rounds: int
    large_rounds: int
    worker_pids: list
    attempt: Callable
    profiler: Any = None
    created: dict = field(default_factory=dict)  # namespace -> paths created so far

    def step(self, label: str, function: Callable, *args, profile: Optional[str] = None) -> Step:
        """A step that runs ``function(*args)`` (profiled in the last round if ``profile``)."""

        def run(index: int):
            if profile and self.profiler is not None and index == self.rounds - 1:
                with self.profiler.sampling(profile):
                    return self.attempt(f"{label} (round {index + 1})", function, *args)
            return self.attempt(f"{label} (round {index + 1})", function, *args)

        return label, run


def _puts(context: Context, namespace: str, count: int, headers=None, tag: str = "r"):
    """A step function: small PUTs into ``namespace`` under the round's tag; paths remembered."""

    def run(index: int):
        figures, created = workloads.small_puts(
            context.url, namespace, context.clients, count, headers, tag=f"{tag}{index}-"
        )
        context.created.setdefault(namespace, []).extend(created)
        return figures

    return run


def _gets(context: Context, namespace: str, headers=None):
    def run():
        return workloads.small_gets(
            context.url,
            context.created.get(namespace, []),
            context.clients,
            context.duration,
            headers,
        )

    return run


def small_requests(context: Context, namespace: str) -> list[dict]:
    """(a), (b), (g) against the minimal Flask app, interleaved."""
    per_round = max(1, context.per_client // context.rounds)

    def flask():
        return ceilings.flask_get_rate(context.flask_url, context.clients, context.duration)

    def plan(index: int) -> list[Step]:
        put = _puts(context, namespace, per_round)
        return [
            context.step("flask_a", flask),
            context.step("a", put, index, profile="a"),
            context.step("flask_b", flask),
            context.step("b", _gets(context, namespace), profile="b"),
            context.step("flask_g", flask),
            context.step(
                "g",
                lambda: workloads.mixed(
                    context.url,
                    context.created.get(namespace, []),
                    "/hatrac/bench/mixed",
                    context.clients,
                    context.duration,
                    tag=f"r{index}-",
                ),
            ),
        ]

    return run_rounds(context.rounds, plan)


def large_objects(context: Context, namespace: str) -> list[dict]:
    """(c), (d), (e) against dd, the minimal app's durable PUT and nginx, interleaved."""
    pids = context.worker_pids

    def dd():
        return ceilings.disk_write(context.workdir, context.large)

    def plan(index: int) -> list[Step]:
        large = f"{namespace}/large-r{index}"
        jobs = [f"{namespace}/job1-r{index}", f"{namespace}/job4-r{index}"]

        def cleanup():
            for path in [large, *jobs]:
                workloads.delete(context.url, path)
            return {}

        return [
            context.step("dd_c", dd),
            context.step("md5_c", ceilings.md5_stream, context.large),
            context.step("flask_file", ceilings.flask_file_put, context.flask_url, context.source),
            context.step(
                "c", workloads.large_put, context.url, large, context.source, pids, profile="c"
            ),
            context.step(
                "nginx_d",
                lambda: ceilings.nginx_large(context.nginx_url, "/large.bin")["large_get"],
            ),
            context.step(
                "d", workloads.large_get, context.url, large, context.large, pids, profile="d"
            ),
            context.step("dd_e1", dd),
            context.step(
                "e1",
                workloads.upload_job,
                context.url,
                jobs[0],
                context.source,
                context.chunk,
                1,
                pids,
                profile="e1",
            ),
            context.step("dd_e4", dd),
            context.step(
                "e4",
                workloads.upload_job,
                context.url,
                jobs[1],
                context.source,
                context.chunk,
                4,
                pids,
                profile="e4",
            ),
            context.step("cleanup", cleanup),
        ]

    workloads.make_namespace(context.url, namespace)
    return run_rounds(context.large_rounds, plan)


def auth_and_depth(context: Context, session: Optional[dict]) -> list[dict]:
    """Session-cookie and 10-level requests against anonymous flat ones of the same round."""
    per_round = max(2, context.per_client // 4 // context.rounds)
    flat, by_session = "/hatrac/bench/flat", "/hatrac/bench/session"
    deep = workloads.deep_namespace(10, "/hatrac/bench/deep")

    def flat_gets(headers):
        # session and anonymous GETs read the same objects: only the cookie differs
        return _gets(context, flat, headers)

    def plan(index: int) -> list[Step]:
        anonymous_put = context.step("anon_put", _puts(context, flat, per_round), index)
        anonymous_get = context.step("anon_get", flat_gets(None))
        if session is None:
            unavailable = "not available: no session (see session_login)"
            session_put = ("session_put", lambda _index: unavailable)
            session_get = ("session_get", lambda _index: unavailable)
        else:
            session_put = context.step(
                "session_put",
                _puts(context, by_session, per_round, session),
                index,
                profile="session_put",
            )
            session_get = context.step("session_get", flat_gets(session), profile="session_get")
        puts, gets = [anonymous_put, session_put], [anonymous_get, session_get]
        if index % 2:
            puts.reverse()
            gets.reverse()
        return [
            *puts,
            *gets,
            context.step("anon_put_deep_ref", _puts(context, flat, per_round, tag="d"), index),
            context.step("deep_put", _puts(context, deep, per_round), index, profile="deep_put"),
            context.step("anon_get_deep_ref", flat_gets(None)),
            context.step("deep_get", _gets(context, deep), profile="deep_get"),
        ]

    return run_rounds(context.rounds, plan)
