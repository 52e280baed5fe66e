"""The three groups of interleaved workloads, each a plan of rounds for :mod:`bench.rounds`.

* small requests: minimal Flask GET, (a) small PUTs; Flask, (b) small GETs;
  Flask, (g) mixed, per round;
* large objects: dd, MD5 of the size on one core, the minimal app's durable
  file PUT, (c) large PUT;
  (d) its GET and nginx's of the very same file, three of each, alternated
  (nginx, service, service, nginx, nginx, service; the service first in
  every other round), each side's median compared; dd past the page cache
  (``oflag=direct``, the disk's own speed, informational); dd, (e) upload
  job over 1 stream; dd, over 4 streams.
  Each dd writes a new file of the step's size, and every file written
  (dd's, the minimal app's, the service's objects) is kept until the group
  ends (or its round ends, when the disk is short of room): no writer gets
  blocks another one freed a moment earlier, which this machine's virtual
  disk rewrites 2-4x faster than others (docs/benchmark.md);
* authentication and depth: anonymous and session-cookie PUTs and GETs, in an
  order that alternates from round to round (so that neither always runs on a
  warmer machine), then the 10-level namespace.

Every step goes through ``context.attempt`` so that a failure is a string in
the results, not a crash; with ``--profile`` the service steps of the last
round are sampled with py-spy.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

from . import ceilings, pagecache, workloads
from .rounds import Step, run_rounds

# the pause before the next large round (see large_objects): enough here for what a
# round's deletions or its upload jobs' dropped pages freed to go back to the host
SETTLE_SECS = 3.0
# GETs of (d) and as many of nginx per round, alternated: one 1 GiB transfer
# takes under half a second, and a scheduler hiccup moved a single one by 15%
GET_TRANSFERS = 3


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
    pair_rounds: int
    worker_pids: list
    attempt: Callable
    profiler: Any = None
    # nginx's document root and the service's filesystem storage (for (d): nginx
    # serves a hard link to the very file the service serves)
    nginx_root: Optional[Path] = None
    storage_root: Optional[Path] = None
    created: dict = field(default_factory=dict)  # namespace -> paths created so far
    # rounds of the group running now (run_group): its steps are profiled in its last
    group_rounds: int = 0

    def run_group(self, count: int, plan: Callable[[int], list[Step]]) -> list[dict]:
        """:func:`~bench.rounds.run_rounds` of one group, whose steps are profiled in
        its own last round."""
        self.group_rounds = count
        return run_rounds(count, plan)

    def step(
        self, label: str, function: Callable, *args: Any, profile: Optional[str] = None
    ) -> Step:
        """A step that runs ``function(*args)`` (profiled in its group's last round if
        ``profile``)."""

        def run(index: int):
            if profile and self.profiler is not None and index == self.group_rounds - 1:
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

    return context.run_group(context.rounds, plan)


def large_objects(context: Context, namespace: str) -> list[dict]:
    """(c), (d), (e) against dd, the minimal app's durable PUT and nginx, interleaved.

    Nothing a writer of this group made is deleted while the group runs, when
    the disk has room for it all and two rounds more: freed blocks are rewritten 2-4x
    faster than others by this machine's virtual disk until it has discarded
    them, so a deletion hands the next writer, ceiling or service, a head
    start (docs/benchmark.md, "The dd ceiling"). With less room, each round's
    files go at its end. Either way the next round starts after a sync and a
    pause: (e4)'s hash-ahead drops the job's pages in bulk as it ends, and the
    next round's first writer (its dd) would otherwise get them warm.
    """
    pids = context.worker_pids
    scratch = Path(context.workdir) / "dd"
    # dd four times (one past the page cache), the minimal app's file, (c), (e) twice
    per_round = 8 * context.large
    keep_all = _space_left(context.workdir) > per_round * (context.large_rounds + 2)
    objects: list[str] = []
    files: list[Path] = []

    def remove_all() -> dict:
        for path in objects:
            workloads.delete(context.url, path)
        for target in [*files, *Path(context.workdir).glob("flask/sink-*.bin")]:
            target.unlink(missing_ok=True)
        objects.clear()
        files.clear()
        os.sync()  # commit the deletions (the disk discards the blocks soon after)
        return {}

    def plan(index: int) -> list[Step]:
        large = f"{namespace}/large-r{index}"
        jobs = [f"{namespace}/job1-r{index}", f"{namespace}/job4-r{index}"]
        objects.extend([large, *jobs])

        def dd(tag: str) -> Callable[[], dict]:
            # a new file of the step's size, kept as the service keeps its objects
            def run() -> dict:
                target = scratch / f"r{index}-{tag}.bin"
                files.append(target)
                return ceilings.disk_write_new(target, context.large)

            return run

        def dd_direct() -> dict:
            target = scratch / f"r{index}-direct.bin"
            files.append(target)
            return ceilings.disk_write_direct(target, context.large)

        def get_pair() -> dict:
            # nginx serves the file (c) just stored, as the service does: the same
            # bytes in the same cache state (recorded), not the source file that
            # every PUT of the group keeps warm
            stored = stored_file(context.storage_root, context.large)
            nginx_path, cached = "/large.bin", None
            if stored is not None and context.nginx_root is not None:
                link = Path(context.nginx_root) / f"d-r{index}.bin"
                link.unlink(missing_ok=True)
                os.link(stored, link)
                files.append(link)
                nginx_path, cached = f"/{link.name}", pagecache.cached_bytes(str(stored))
            ceiling, service = workloads.large_get_pair(
                context.url,
                large,
                context.nginx_url,
                nginx_path,
                context.large,
                pids,
                GET_TRANSFERS,
                service_first=index % 2 == 1,
            )
            ceiling["file"] = service["file"] = nginx_path
            service["cached_before"] = cached
            return {"first": ceiling, "second": service}

        def end_of_round() -> dict:
            if not keep_all:
                remove_all()
            if index < context.large_rounds - 1:
                # (e4)'s hash-ahead drops the job's pages in bulk as it ends; the
                # next writer, the next round's dd, would get them warm (a head
                # start the service's PUT never has, docs/benchmark.md): the pause
                # lets them go, so every round's dd starts as the first round's
                os.sync()
                time.sleep(SETTLE_SECS)
            return {"kept": keep_all}

        return [
            context.step("dd_c", dd("c")),
            context.step("md5_c", ceilings.md5_stream, context.large),
            context.step("flask_file", ceilings.flask_file_put, context.flask_url, context.source),
            context.step(
                "c", workloads.large_put, context.url, large, context.source, pids, profile="c"
            ),
            context.step("get_pair", get_pair, profile="d"),
            context.step("dd_direct", dd_direct),
            context.step("dd_e1", dd("e1")),
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
            context.step("dd_e4", dd("e4")),
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
            context.step("cleanup", end_of_round),
        ]

    workloads.make_namespace(context.url, namespace)
    try:
        rounds = context.run_group(context.large_rounds, plan)
    finally:
        remove_all()
    for sample in rounds:
        figures = sample.pop("get_pair")
        if isinstance(figures, str):
            sample["nginx_d"] = sample["d"] = figures
        else:
            sample["nginx_d"], sample["d"] = figures["first"], figures["second"]
    return rounds


def stored_file(storage_root: Optional[Path], size: int) -> Optional[Path]:
    """The newest stored object file of ``size`` bytes (the one a PUT just made), if any."""
    if storage_root is None:
        return None
    found = [
        (entry.stat().st_mtime_ns, entry)
        for entry in Path(storage_root).glob("objects/*/*/*")
        if entry.is_file() and entry.stat().st_size == size
    ]
    return max(found)[1] if found else None


def _space_left(directory) -> int:
    stats = os.statvfs(directory)
    return stats.f_bavail * stats.f_frsize


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
    1.35x faster than anonymous ones). In :attr:`Context.pair_rounds` rounds.
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

    rounds = context.run_group(context.pair_rounds, plan)
    for sample in rounds:
        for step, (first, second) in PAIRS.items():
            figures = sample.pop(step)
            if isinstance(figures, str):
                sample[first] = sample[second] = figures
            else:
                sample[first], sample[second] = figures["first"], figures["second"]
    return rounds
