"""A/B of two source trees on one small workload, interleaved: ``python -m bench.ab``.

The way to judge a change on a busy machine: both trees are served at once
(same gunicorn settings, same database server, a database or SQLite file
each), and short runs of the same workload alternate between them (A B, B A,
A B, ...), so that both see the same load. Prints each run and the median
ratio B/A with its range::

    python -m bench.ab --a /path/to/main --b . --workload get --rounds 8
    python -m bench.ab --a /path/to/main --b . --workload session --directory sqlite

Workloads: ``get`` (1 KiB GETs), ``session`` (the same with a session
cookie), ``mixed`` (90% GETs, 10% PUTs), ``put`` (1 KiB PUTs of new
objects), ``session_put`` (the same with a session cookie),
``session_pair`` (the benchmark's (h) session GET: half the clients GET
anonymously, half the same objects with a session cookie, at the same
time, reconnecting every 25 requests; its figure is the round's session /
anonymous ratio, so B/A compares the two trees' ratios), ``anon_pair``
(the same with no cookie on either half: the side-by-side method's own
bias, which should read 1), ``session_put_pair`` and ``anon_put_pair``
(the same two for the benchmark's (h) session PUT: half the clients PUT
anonymously into one namespace, half with a session cookie into another
made by that session, or anonymously into both), ``listing``
(JSON listing of the namespace of the GET objects, one client; of a
namespace of ``--children`` objects instead, e.g. 10,000 as the benchmark's
(f)); and large transfers of ``--large-mib`` (default 256): ``large_get``
(GET of one object stored by a PUT before the rounds), ``fresh_get`` (the
GET of an object PUT, untimed, right before it, as the benchmark's (c) and
(d) follow each other), ``large_put`` (a PUT
of a new object each run) and ``job1``/``job4`` (an upload job of
``--chunk-mib`` chunks over 1 or 4 streams), reported in MiB/s. The large
workloads delete nothing during the rounds (a deletion speeds up the next
writer on this machine's disk, docs/benchmark.md). ``--directory sqlite``
serves both trees on SQLite (the embedded default) instead of PostgreSQL;
``--directory-a``/``--directory-b`` choose per side, so one tree can be
compared with itself on both::

    python -m bench.ab --a . --b . --directory-a postgres --directory-b sqlite --workload put

``--wrk`` makes the ``get`` and ``session`` runs wrk's (C, from Debian: an
independent client that spends far less CPU per request than ours, so the
server's own costs weigh more in its rates), GETs of one object over
``--clients`` connections; ``--session-b`` with ``--workload get`` has B's
requests send B's session cookie and A's none, so that B/A is session /
anonymous (A and B may be the same tree)::

    python -m bench.ab --a . --b . --workload get --session-b --wrk --cpu --directory sqlite

``--cpu`` adds, per run, the CPU time per request of each kind of process:
the tree's gunicorn workers, its PostgreSQL backends (those connected to
its database; the server's shared processes, e.g. the WAL writer, are
counted apart as ``pg-other``) and the load clients, in µs, with their
medians at the end: steadier than request rates on a busy machine.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Optional

from . import workloads
from .ceilings import wrk_rate
from .load import MIB, run_load
from .run import ADD_USER_API, BENCH_PASSWORD, BENCH_USER, ROOT_ACLS, make_source
from .servers import PostgresServer, stop_group, wait_for_http, wait_for_port

OBJECTS = 200
LARGE = ("large_get", "fresh_get", "large_put", "job1", "job4")


def _process_cpu() -> dict[int, tuple[int, int, str, float]]:
    """{pid: (parent, process group, command line, CPU seconds)} of every process."""
    tick = os.sysconf("SC_CLK_TCK")
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
            with open(f"/proc/{entry}/cmdline", "rb") as cmdline:
                command = cmdline.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        seconds = (int(fields[11]) + int(fields[12])) / tick
        found[int(entry)] = (int(fields[1]), int(fields[2]), command, seconds)
    return found


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def cpu_kinds(tree: Tree, database: str, server: Optional[int]) -> dict[str, float]:
    """CPU seconds so far of the tree's workers, its backends, the other processes
    of the PostgreSQL server started as ``server`` (its postmaster is that process or
    its child) and this process's finished children (the load clients)."""
    kinds = {"workers": 0.0, "backends": 0.0, "pg-other": 0.0}
    processes = _process_cpu()
    for parent, group, command, seconds in processes.values():
        if group == tree.process.pid:
            kinds["workers"] += seconds
        elif server is not None and server in (parent, processes.get(parent, (0,))[0]):
            if f" {database} " in command:
                kinds["backends"] += seconds
            elif not command.startswith("postgres: postgres ab_"):
                kinds["pg-other"] += seconds
    kinds["clients"] = _children_cpu()
    return kinds


class Tree:
    """One source tree served by gunicorn with the packaged settings."""

    def __init__(self, label: str, source: Path, workdir: Path, dsn: str, workers, threads):
        self.label = label
        self.source = source.resolve()
        self.directory = workdir / label
        self.directory.mkdir(parents=True)
        self.config_path = self.directory / "hatrac_config.json"
        self.config_path.write_text(
            json.dumps(
                {
                    "database_dsn": dsn,
                    "storage_backend": "filesystem",
                    "data_directory": str(self.directory / "data"),
                    "storage_path": str(self.directory / "storage"),
                    "root_acls": ROOT_ACLS,
                    "log_level": "WARNING",
                    "max_request_payload_size": 4 << 30,  # the large workloads
                }
            )
        )
        self.environment = dict(
            os.environ,
            HATRAC_WORKERS=str(workers),
            HATRAC_THREADS=str(threads),
            HATRAC_CONFIG=str(self.config_path),
            PYTHONPATH=str(self.source),
        )
        from .servers import free_port

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = None

    def start(self) -> None:
        command = [sys.executable, "-m", "gunicorn", "--config", "python:hatrac.gunicorn_conf"]
        command += ["--bind", f"127.0.0.1:{self.port}", "hatrac:create_app()"]
        self.process = subprocess.Popen(
            command,
            cwd=self.directory,
            env=self.environment,
            stdout=open(self.directory / "gunicorn.log", "wb"),  # noqa: SIM115
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_for_port(self.port, process=self.process)
        wait_for_http(self.url + "/hatrac/", process=self.process)

    def session(self) -> dict:
        """A benchmark account in this tree's directory, logged in: the Cookie header."""
        subprocess.run(
            [sys.executable, "-c", ADD_USER_API, str(self.config_path), BENCH_USER],
            input=BENCH_PASSWORD + "\n",
            text=True,
            env=self.environment,
            cwd=self.directory,
            check=True,
            capture_output=True,
        )
        return workloads.login_with_password(self.url, BENCH_USER, BENCH_PASSWORD)

    def stop(self) -> None:
        stop_group(self.process)


def prepare(tree: Tree, headers: dict, children: int = 0) -> list[str]:
    """The namespace and the 1 KiB objects every GET workload reads (and, with
    ``children``, the namespace ``/hatrac/ab/list`` of that many objects)."""
    _, paths = workloads.small_puts(tree.url, "/hatrac/ab", 8, OBJECTS // 8, headers, tag="g")
    if children:
        per_client = -(-children // 8)
        workloads.small_puts(tree.url, "/hatrac/ab/list", 8, per_client, headers, tag="l")
    return paths


def prepare_large(tree: Tree, source: str) -> list[str]:
    """The namespace of the large workloads, and the object ``large_get`` reads."""
    workloads.make_namespace(tree.url, "/hatrac/ab/large")
    stored = "/hatrac/ab/large/stored"
    workloads.large_put(tree.url, stored, source, [])
    return [stored]


def measure_large(
    tree: Tree, workload: str, paths: list[str], source: str, chunk: int, serial: int
) -> dict:
    """One large transfer: its MiB/s as ``figure``."""
    if workload == "large_get":
        figures = workloads.large_get(tree.url, paths[0], os.path.getsize(source), [])
    elif workload == "fresh_get":
        fresh = f"/hatrac/ab/large/f{serial}"
        workloads.large_put(tree.url, fresh, source, [])
        figures = workloads.large_get(tree.url, fresh, os.path.getsize(source), [])
    elif workload == "large_put":
        figures = workloads.large_put(tree.url, f"/hatrac/ab/large/p{serial}", source, [])
    else:
        streams = 1 if workload == "job1" else 4
        path = f"/hatrac/ab/large/{workload}-{serial}"
        figures = workloads.upload_job(tree.url, path, source, chunk, streams, [])
    return {"figure": figures["mib_per_s"], "seconds": round(figures["seconds"], 3)}


def measure(
    tree: Tree,
    workload: str,
    paths: list[str],
    headers: dict,
    clients: int,
    duration: float,
    serial: int,
) -> dict:
    if workload in ("get", "session"):
        return workloads.small_gets(tree.url, paths, clients, duration, headers)
    if workload == "wrk":
        figures = wrk_rate(tree.url + paths[0], clients, duration, headers)
        if figures is None:
            raise RuntimeError("wrk failed or is not installed")
        return figures
    if workload in ("session_pair", "anon_pair"):
        # the second half sends the tree's session cookie (none for anon_pair)
        first, second = workloads.side_by_side_gets(
            tree.url, [{"paths": paths}, {"paths": paths, "headers": headers}], clients, duration
        )
        return {
            **second,
            "ops_per_s": second["ops_per_s"] / first["ops_per_s"],
            "requests": first["requests"] + second["requests"],
        }
    if workload in ("session_put_pair", "anon_put_pair"):
        # as (h): each half into a namespace of its own, the second made by its own client
        first, second = workloads.side_by_side_puts(
            tree.url,
            [
                {"namespace": "/hatrac/ab/pair-anon"},
                {"namespace": "/hatrac/ab/pair-second", "headers": headers},
            ],
            clients,
            duration,
            tag=f"r{serial}-",
        )[0]
        return {
            **second,
            "ops_per_s": second["ops_per_s"] / first["ops_per_s"],
            "requests": first["requests"] + second["requests"],
        }
    if workload == "mixed":
        return workloads.mixed(
            tree.url, paths, "/hatrac/abmix", clients, duration, headers, tag=f"m{serial}-"
        )
    if workload in ("put", "session_put"):
        plan = {"kind": "put", "prefix": f"/hatrac/ab/p{serial}-", "size": 1024}
        return run_load(
            tree.url, {**plan, "headers": headers}, clients, duration=duration
        ).summary()
    if workload in ("listing", "listing_children"):
        namespace = "/hatrac/ab" if workload == "listing" else "/hatrac/ab/list"
        plan = {"kind": "get", "paths": [namespace], "headers": {"Accept": "application/json"}}
        result = run_load(tree.url, plan, 1, duration=duration)
        return {**result.summary(), "ops_per_s": result.rate}
    raise ValueError(workload)


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ab", description=__doc__.split("\n")[0])
    parser.add_argument("--a", type=Path, required=True, help="tree A (e.g. a checkout of main)")
    parser.add_argument("--b", type=Path, required=True, help="tree B (the change)")
    parser.add_argument(
        "--workload",
        choices=[
            "get",
            "session",
            "session_pair",
            "anon_pair",
            "session_put_pair",
            "anon_put_pair",
            "mixed",
            "put",
            "session_put",
            "listing",
            *LARGE,
        ],
        default="get",
    )
    parser.add_argument("--large-mib", type=int, default=256, help="large workloads' size")
    parser.add_argument("--chunk-mib", type=int, default=8, help="upload jobs' chunk size")
    parser.add_argument("--directory", choices=["postgres", "sqlite"], default="postgres")
    parser.add_argument(
        "--directory-a", choices=["postgres", "sqlite"], help="A's directory (default --directory)"
    )
    parser.add_argument(
        "--directory-b", choices=["postgres", "sqlite"], help="B's directory (default --directory)"
    )
    parser.add_argument(
        "--children", type=int, default=0, help="listing: of a namespace of this many objects"
    )
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--duration", type=float, default=2.0)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument(
        "--cpu", action="store_true", help="CPU per request of workers, backends and clients"
    )
    parser.add_argument(
        "--wrk",
        action="store_true",
        help="get, session: GETs of one object by wrk (C, an independent client) instead",
    )
    parser.add_argument(
        "--session-b",
        action="store_true",
        help="get: B's requests send B's session cookie, so B/A is session / anonymous",
    )
    arguments = parser.parse_args(argv)
    if arguments.wrk and arguments.workload not in ("get", "session"):
        parser.error("--wrk measures the get and session workloads only")
    if arguments.wrk and shutil.which("wrk") is None:
        parser.error("--wrk needs wrk (Debian: apt-get install wrk)")
    if arguments.session_b and arguments.workload != "get":
        parser.error("--session-b goes with --workload get")
    kinds = {
        "A": arguments.directory_a or arguments.directory,
        "B": arguments.directory_b or arguments.directory,
    }
    workdir = Path(tempfile.mkdtemp(prefix="hatrac-ab-", dir="/var/tmp"))
    os.chmod(workdir, 0o755)
    postgres = None
    trees: list[Tree] = []
    try:
        if "postgres" in kinds.values():
            postgres = PostgresServer(workdir / "postgres").start()
        for label, source in (("A", arguments.a), ("B", arguments.b)):
            if kinds[label] == "postgres":
                postgres.psql(f"CREATE DATABASE ab_{label.lower()}")
                dsn = postgres.dsn(f"ab_{label.lower()}")
            else:
                dsn = f"sqlite:{workdir / label / 'data' / 'hatrac.sqlite3'}"
            trees.append(Tree(label, source, workdir, dsn, arguments.workers, arguments.threads))
        for tree in trees:
            tree.start()
        headers = {tree.label: {} for tree in trees}
        if arguments.workload in ("session", "session_put", "session_pair", "session_put_pair"):
            headers = {tree.label: tree.session() for tree in trees}
        sent = dict(headers)  # what each side's requests carry
        if arguments.session_b:
            sent["B"] = trees[1].session()
        large = arguments.workload in LARGE
        workload, children = arguments.workload, 0
        if workload == "listing" and arguments.children:
            workload, children = "listing_children", arguments.children
        source = str(workdir / "large.bin")
        if large:
            make_source(Path(source), arguments.large_mib * MIB)
            paths = {tree.label: prepare_large(tree, source) for tree in trees}
        else:
            # session_pair: objects made anonymously, read by both kinds (only the cookie differs)
            made_by = {} if workload == "session_pair" else headers
            paths = {
                tree.label: prepare(tree, made_by.get(tree.label, {}), children) for tree in trees
            }
        unit = "MiB/s" if large else ("ops/s by wrk" if arguments.wrk else "ops/s")
        digits = 1
        if workload in ("session_pair", "session_put_pair"):
            unit, digits = "session / anonymous", 3
        elif workload in ("anon_pair", "anon_put_pair"):
            unit, digits = "second half / first half, both anonymous", 3
        server = postgres.process.pid if postgres is not None else None
        results: dict[str, list[dict]] = {"A": [], "B": []}
        for index in range(arguments.rounds):
            order = trees if index % 2 == 0 else trees[::-1]
            for tree in order:
                if large:
                    figures = measure_large(
                        tree,
                        arguments.workload,
                        paths[tree.label],
                        source,
                        arguments.chunk_mib * MIB,
                        index,
                    )
                    detail = f"{figures['seconds']} s"
                else:
                    database = f"ab_{tree.label.lower()}"
                    before = cpu_kinds(tree, database, server) if arguments.cpu else {}
                    figures = measure(
                        tree,
                        "wrk" if arguments.wrk else workload,
                        paths[tree.label],
                        sent[tree.label],
                        arguments.clients,
                        arguments.duration,
                        index,
                    )
                    figures["figure"] = figures["ops_per_s"]
                    detail = f"p50 {figures['p50_ms']} ms"
                    if before:
                        after = cpu_kinds(tree, database, server)
                        done = max(1, figures.get("requests", 0))
                        figures["cpu"] = {
                            kind: (after[kind] - before[kind]) / done * 1e6 for kind in after
                        }
                        detail += ", CPU µs/request " + " ".join(
                            f"{kind} {value:.0f}" for kind, value in figures["cpu"].items()
                        )
                results[tree.label].append(figures)
                print(
                    f"round {index + 1} {tree.label}: {figures['figure']:.{digits}f} {unit} "
                    f"{detail} (load {os.getloadavg()[0]:.1f})",
                    flush=True,
                )
        ratios = [b["figure"] / a["figure"] for a, b in zip(results["A"], results["B"])]
        for label in ("A", "B"):
            rates = [r["figure"] for r in results[label]]
            line = (
                f"{label} ({arguments.a if label == 'A' else arguments.b}, {kinds[label]}): median "
                f"{statistics.median(rates):.{digits}f} {unit}"
            )
            if not large:
                p50s = [r["p50_ms"] for r in results[label]]
                line += f", p50 {statistics.median(p50s):.2f} ms"
            if arguments.cpu and not large:
                line += ", CPU µs/request " + " ".join(
                    f"{kind} {statistics.median(r['cpu'][kind] for r in results[label]):.0f}"
                    for kind in results[label][0]["cpu"]
                )
            print(line)
        label = arguments.workload + (" by wrk" if arguments.wrk else "")
        if arguments.session_b:
            label += ", B with a session cookie"
        print(
            f"B/A {label} ({kinds['B']} / {kinds['A']}): median "
            f"{statistics.median(ratios):.3f}, range {min(ratios):.3f}-{max(ratios):.3f} "
            f"over {len(ratios)} rounds"
        )
    finally:
        for tree in trees:
            tree.stop()
        if postgres is not None:
            postgres.stop()
        time.sleep(0.2)
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
