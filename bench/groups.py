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


def _pair_puts(context: Context, variants: list[dict], tag: str):
    """A step function: PUTs of two kinds side by side for the run's duration (a fixed
    count would let the faster kind finish first and run alone); paths remembered."""

    def run(index: int) -> dict:
        figures, created = workloads.side_by_side_puts(
            context.url, variants, context.clients, context.duration, tag=f"{tag}{index}-"
        )
        for variant, paths in zip(variants, created):
            context.created.setdefault(variant["namespace"], []).extend(paths)
        return {"first": figures[0], "second": figures[1]}

    return run


def _pair_gets(context: Context, variants: list[dict]):
    def run() -> dict:
        chosen = [
            {"paths": context.created.get(v["namespace"], []), "headers": v.get("headers")}
            for v in variants
        ]
        figures = workloads.side_by_side_gets(
            context.url, chosen, context.clients, context.duration
        )
        return {"first": figures[0], "second": figures[1]}

    return run


# the steps of a round of auth_and_depth, and the two figures each one yields
PAIRS = {
    "session_pair_put": ("anon_put", "session_put"),
    "session_pair_get": ("anon_get", "session_get"),
    "deep_pair_put": ("anon_put_deep_ref", "deep_put"),
    "deep_pair_get": ("anon_get_deep_ref", "deep_get"),
}


def auth_and_depth(context: Context, session: Optional[dict]) -> list[dict]:
    """Session-cookie and 10-level requests *side by side* with anonymous flat ones.

    Half the clients send the one kind and half the other, at the same time,
    so both see the very same machine: their ratio does not depend on the
    load moving between two runs (which once made session requests look
    1.35x faster than anonymous ones).
    """
    flat = {"namespace": "/hatrac/bench/flat"}
    by_session = {"namespace": "/hatrac/bench/session", "headers": session}
    deep = {"namespace": workloads.deep_namespace(10, "/hatrac/bench/deep")}
    # session GETs read the very objects anonymous GETs read: only the cookie differs
    flat_with_session = {"namespace": flat["namespace"], "headers": session}

    def plan(index: int) -> list[Step]:
        steps = []
        if session is None:
            unavailable = "not available: no session (see session_login)"
            steps.append(("session_pair_put", lambda _index: unavailable))
            steps.append(("session_pair_get", lambda _index: unavailable))
        else:
            steps.append(
                context.step(
                    "session_pair_put",
                    _pair_puts(context, [flat, by_session], "s"),
                    index,
                    profile="session_put",
                )
            )
            steps.append(
                context.step(
                    "session_pair_get",
                    _pair_gets(context, [flat, flat_with_session]),
                    profile="session_get",
                )
            )
        steps.append(
            context.step(
                "deep_pair_put",
                _pair_puts(context, [flat, deep], "d"),
                index,
                profile="deep_put",
            )
        )
        steps.append(
            context.step("deep_pair_get", _pair_gets(context, [flat, deep]), profile="deep_get")
        )
        return steps

    rounds = run_rounds(context.rounds, plan)
    for sample in rounds:
        for step, (first, second) in PAIRS.items():
            figures = sample.pop(step)
            if isinstance(figures, str):
                sample[first] = sample[second] = figures
            else:
                sample[first], sample[second] = figures["first"], figures["second"]
    return rounds
