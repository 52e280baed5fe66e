"""The benchmark command: start everything, measure ceilings and workloads, report.

``python -m bench --size tiny|small|full`` (``scripts/bench.sh`` installs
what is missing first). Order of a run: make the test file; disk ceiling;
PostgreSQL; nginx and its ceilings; the minimal Flask app; PostgreSQL round
trips (all informational, once); then the service under gunicorn, in three
groups of interleaved rounds where each workload follows its own ceiling
(:mod:`bench.groups`), and the listing. Servers are stopped and the work
directory removed at the end, whatever happens.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any, Callable, Optional

from . import ceilings, client, groups, report, workloads
from .load import MIB, Unavailable
from .servers import PROJECT, GunicornServer, NginxServer, PostgresServer

SIZES = {
    # large object, chunk, small PUTs per client over all rounds (8 clients: the listing
    # size), seconds of each timed run, interleaved rounds (large-object rounds at most),
    # rounds of the side-by-side group (h): its ratios spread more over rounds than a
    # ceiling's (which clients the CPUs happen to run), so more rounds steady their median
    "tiny": {
        "large_mib": 8,
        "chunk_mib": 1,
        "puts_per_client": 24,
        "duration": 0.5,
        "rounds": 2,
        "large_rounds": 2,
        "pair_rounds": 2,
    },
    "small": {
        "large_mib": 128,
        "chunk_mib": 8,
        "puts_per_client": 250,
        "duration": 2.0,
        "rounds": 5,
        "large_rounds": 5,
        "pair_rounds": 5,
    },
    "full": {
        "large_mib": 1024,
        "chunk_mib": 8,
        "puts_per_client": 1250,
        "duration": 3.0,
        "rounds": 5,
        # three: the 24 GiB they write fit in this 23 GiB machine's fresh memory;
        # a fourth and fifth round write into page cache the guest recycles, where
        # dd runs 3-4x faster (docs/benchmark.md, "The dd ceiling")
        "large_rounds": 3,
        "pair_rounds": 9,
    },
}

ROOT_ACLS = {
    "owner": ["bench-admin"],
    "create": ["*"],
    "read": ["*"],
    "subtree-create": ["*"],
    "subtree-read": ["*"],
    "subtree-update": ["*"],
    # the large objects of a round are deleted at its end, by the anonymous benchmark client
    "subtree-owner": ["*"],
}

BENCH_USER = "bench-user"
BENCH_PASSWORD = "bench-password-not-secret"


def parse_arguments(argv: Optional[list[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Measure Hatrac against this machine's ceilings (see docs/benchmark.md).",
    )
    parser.add_argument("--size", choices=sorted(SIZES), default="full")
    parser.add_argument("--large-mib", type=int, help="size of the large object (MiB)")
    parser.add_argument("--chunk-mib", type=int, help="upload job chunk size (MiB)")
    parser.add_argument("--puts-per-client", type=int, help="small PUTs per client in (a)")
    parser.add_argument("--duration", type=float, help="seconds of each timed run (per round)")
    parser.add_argument("--rounds", type=int, help="interleaved rounds of ceiling and service")
    parser.add_argument("--large-rounds", type=int, help="at most this many large-object rounds")
    parser.add_argument(
        "--pair-rounds", type=int, help="rounds of the side-by-side group (h) (session, depth)"
    )
    parser.add_argument("--clients", type=int, default=8, help="concurrent load clients")
    parser.add_argument(
        "--workers", type=int, default=None, help="gunicorn workers (default: HATRAC_WORKERS or 4)"
    )
    parser.add_argument("--threads", type=int, default=None, help="gunicorn threads per worker")
    parser.add_argument("--worker-class", default=None, help="gunicorn worker class override")
    parser.add_argument(
        "--directory",
        choices=["postgres", "sqlite"],
        default="postgres",
        help="the service's directory: PostgreSQL, or SQLite (the embedded default)",
    )
    parser.add_argument("--workdir", type=Path, default=None, help="where files and servers live")
    parser.add_argument(
        "--json",
        type=Path,
        default=None,
        help="result file (default bench/results/bench-SIZE-TIMESTAMP.json)",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="sample the service's workers with py-spy during (a), (b), (c), (d)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    arguments = parser.parse_args(argv)
    preset = SIZES[arguments.size]
    for key, value in preset.items():
        if getattr(arguments, key) is None:
            setattr(arguments, key, value)
    if arguments.workers is None:
        arguments.workers = int(os.environ.get("HATRAC_WORKERS", 4))
    if arguments.threads is None:
        arguments.threads = int(os.environ.get("HATRAC_THREADS", 8))
    return arguments


def make_source(path: Path, size: int) -> None:
    """A file of incompressible bytes, written once and reused by every large transfer."""
    block = os.urandom(MIB)
    with open(path, "wb") as out:
        for _ in range(size // MIB):
            out.write(block)
        out.write(block[: size % MIB])


def git_commit() -> str:
    try:
        return subprocess.run(
            ["git", "-C", str(PROJECT), "describe", "--always", "--dirty"],
            capture_output=True,
            text=True,
        ).stdout.strip()
    except OSError:
        return "unknown"


def say(message: str) -> None:
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%H:%M:%S")
    print(f"[bench {stamp}] {message}", file=sys.stderr, flush=True)


def attempt(label: str, function: Callable, *args: Any, **kwargs: Any) -> Any:
    """Run one workload; its failure becomes a string in the results, not a crash."""
    say(label)
    try:
        return function(*args, **kwargs)
    except Unavailable as error:
        return f"not available: {error}"
    except Exception as error:  # recorded in the results, with the traceback on stderr
        traceback.print_exc()
        return f"failed: {type(error).__name__}: {error}"


ADD_USER_API = """
import sys
from hatrac.auth.accounts import Accounts
from hatrac.config import load_config
from hatrac.model.directory import open_directory
config = load_config(sys.argv[1])
directory = open_directory(config.database_dsn, 1, config.database_max_retries)
directory.initialize(config.root_acls)
Accounts(directory, config).add_user(sys.argv[2], sys.stdin.readline().rstrip("\\n"))
"""

ADD_USER_COMMANDS = (
    ["user", "add", BENCH_USER, "--password-stdin"],
    ["user", "add", BENCH_USER],
    ["users", "add", BENCH_USER, "--password-stdin"],
)


def prepare_session(server: GunicornServer, config_path: Path) -> dict:
    """Create a benchmark account and log in; the Cookie header, or Unavailable.

    The account is made with the admin command line when this tree has one,
    else through the accounts module directly (set-up only: the workloads
    themselves go over HTTP).
    """
    environment = dict(os.environ, HATRAC_CONFIG=str(config_path), PYTHONPATH=str(PROJECT))
    hatrac = [sys.executable, "-c", "import sys; from hatrac.cli import main; sys.exit(main())"]
    attempts = [[*hatrac, *command] for command in ADD_USER_COMMANDS]
    attempts.append([sys.executable, "-c", ADD_USER_API, str(config_path), BENCH_USER])
    errors = []
    for command in attempts:
        created = subprocess.run(
            command,
            input=BENCH_PASSWORD + "\n",
            capture_output=True,
            text=True,
            env=environment,
            cwd=server.directory,
            timeout=60,
        )
        if created.returncode == 0:
            break
        errors.append((created.stderr or created.stdout).strip().splitlines()[-1:])
    else:
        raise Unavailable(f"no way to create an account in this tree: {errors}")
    return workloads.login_with_password(server.url, BENCH_USER, BENCH_PASSWORD)


def run(arguments: argparse.Namespace) -> dict:
    workdir = Path(arguments.workdir or tempfile.mkdtemp(prefix="hatrac-bench-", dir="/var/tmp"))
    workdir.mkdir(parents=True, exist_ok=True)
    os.chmod(workdir, 0o755)
    large = arguments.large_mib * MIB
    chunk = arguments.chunk_mib * MIB
    clients, duration = arguments.clients, arguments.duration
    servers = []
    profiler = None
    meta = {
        "size": arguments.size,
        "directory": arguments.directory,
        "large_mib": arguments.large_mib,
        "chunk_mib": arguments.chunk_mib,
        "puts_per_client": arguments.puts_per_client,
        "clients": clients,
        "duration_s": duration,
        "rounds": arguments.rounds,
        "large_rounds": min(arguments.rounds, arguments.large_rounds),
        "pair_rounds": arguments.pair_rounds,
        "gunicorn": {
            "config": "hatrac.gunicorn_conf",
            "workers": arguments.workers,
            "threads": arguments.threads,
            "worker_class": arguments.worker_class or "gthread",
        },
        "started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "commit": git_commit(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "loadavg_start": os.getloadavg(),
    }
    try:
        public = workdir / "public"
        public.mkdir()
        source = public / "large.bin"
        say(f"writing a {arguments.large_mib} MiB source file in {workdir}")
        make_source(source, large)
        (public / "small.bin").write_bytes(os.urandom(1024))
        os.chmod(public, 0o755)

        results_ceilings: dict = {}
        say("ceiling: disk (dd)")
        results_ceilings["disk"] = ceilings.disk(workdir, large)
        results_ceilings["small_files"] = ceilings.small_files(workdir, clients, duration)

        say("starting PostgreSQL")
        postgres = PostgresServer(workdir / "postgres").start()
        servers.append(postgres)

        say("ceiling: nginx")
        nginx = NginxServer(workdir / "nginx", public, arguments.workers).start()
        servers.append(nginx)
        results_ceilings["nginx"] = ceilings.nginx(
            nginx.url, "/large.bin", "/small.bin", clients, duration
        )

        say("ceiling: minimal Flask app under gunicorn")
        flask = GunicornServer(
            "bench.minimal_app:create_app()",
            workdir / "flask",
            arguments.workers,
            arguments.threads,
            worker_class=arguments.worker_class,
        ).start("/small")
        servers.append(flask)
        results_ceilings["flask"] = ceilings.flask_small(flask.url, clients, duration)
        results_ceilings["flask_body_read"] = ceilings.flask_body_read(flask.url, str(source))
        results_ceilings["flask_file_put"] = ceilings.flask_file_put(flask.url, str(source))

        say("ceiling: PostgreSQL INSERT+SELECT round trips")
        results_ceilings["postgres"] = ceilings.postgres(
            postgres.dsn("postgres"), clients, duration
        )

        service_dir = workdir / "hatrac"
        if arguments.directory == "sqlite":
            dsn = f"sqlite:{service_dir / 'data' / 'hatrac.sqlite3'}"
        else:
            dsn = postgres.dsn()
        say(f"starting Hatrac under gunicorn ({arguments.directory} + filesystem)")
        config = {
            "database_dsn": dsn,
            "storage_backend": "filesystem",
            "data_directory": str(service_dir / "data"),
            "storage_path": str(service_dir / "storage"),
            "max_request_payload_size": max(large * 2, 128 * MIB),
            "root_acls": ROOT_ACLS,
            "log_level": "WARNING",
        }
        hatrac = GunicornServer(
            "hatrac:create_app()",
            service_dir,
            arguments.workers,
            arguments.threads,
            config=config,
            worker_class=arguments.worker_class,
        ).start("/hatrac/")
        servers.append(hatrac)
        config_path = service_dir / f"hatrac_config_{hatrac.port}.json"
        url = hatrac.url
        small_ns = "/hatrac/bench/small"
        service: dict = {}

        if arguments.profile:
            from .profile import Profiler

            profiler = Profiler(hatrac.process.pid, PROJECT / "bench" / "results")

        context = groups.Context(
            url=url,
            flask_url=flask.url,
            nginx_url=nginx.url,
            workdir=workdir,
            source=str(source),
            large=large,
            chunk=chunk,
            clients=clients,
            duration=duration,
            per_client=arguments.puts_per_client,
            rounds=arguments.rounds,
            large_rounds=min(arguments.rounds, arguments.large_rounds),
            pair_rounds=arguments.pair_rounds,
            worker_pids=hatrac.worker_pids(),
            attempt=attempt,
            profiler=profiler,
            nginx_root=public,
            storage_root=service_dir / "storage",
        )
        say(f"small requests: {context.rounds} interleaved rounds")
        service["small_rounds"] = groups.small_requests(context, small_ns)
        say(f"large objects: {context.large_rounds} interleaved rounds")
        service["large_rounds"] = groups.large_objects(context, "/hatrac/bench/large")
        small_paths = context.created.get(small_ns, [])
        service["f"] = attempt(
            "(f) listing", workloads.listing, url, small_ns, (small_paths or [small_ns])[0], 5
        )
        if isinstance(service["f"], dict):
            service["f"]["children"] = len(small_paths)
        session = attempt("(h) session login", prepare_session, hatrac, config_path)
        service["session_login"] = "ok" if isinstance(session, dict) else session
        say(f"session and depth: {context.pair_rounds} side-by-side rounds")
        service["auth_rounds"] = groups.auth_and_depth(
            context, session if isinstance(session, dict) else None
        )
        files = 2000 if arguments.size == "full" else min(2000, clients * arguments.puts_per_client)
        say(f"transfer client: {context.large_rounds} interleaved rounds ({files} small files)")
        service["client_rounds"] = attempt(
            "transfer client", client.client_workloads, context, "/hatrac/bench/client", files
        )
        hatrac_log = hatrac.log()
        hatrac.stop()
        meta["postgres_log"] = postgres.error_counts()
    finally:
        for server in reversed(servers):
            try:
                server.stop()
            except Exception:  # keep stopping the others
                traceback.print_exc()
        if not arguments.keep:
            shutil.rmtree(workdir, ignore_errors=True)

    meta["loadavg_end"] = os.getloadavg()
    meta["finished"] = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    rows = report.build_rows(results_ceilings, service)
    document = {
        "meta": meta,
        "ceilings": results_ceilings,
        "service": service,
        "workloads": rows,
    }
    if profiler is not None:
        document["profiles"] = profiler.summaries
    if "Traceback" in hatrac_log:
        document["service_log_tail"] = hatrac_log[-3000:]
    return document


def main(argv: Optional[list[str]] = None) -> int:
    arguments = parse_arguments(argv)
    began = time.monotonic()
    document = run(arguments)
    document["meta"]["seconds"] = round(time.monotonic() - began, 1)
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    path = arguments.json or PROJECT / "bench" / "results" / f"bench-{arguments.size}-{stamp}.json"
    report.write_json(path, document)
    print()
    print(report.summary_ceilings(document["ceilings"]))
    print()
    print(report.table(document["workloads"]))
    print()
    print(report.rounds_table(document["service"]))
    meta = document["meta"]
    print(
        f"size {meta['size']}, directory {meta['directory']}, {meta['clients']} clients, "
        f"gunicorn {meta['gunicorn']}, "
        f"load average {meta['loadavg_start'][0]:.2f} -> {meta['loadavg_end'][0]:.2f} "
        f"on {meta['cpus']} CPUs, {meta['seconds']} s"
    )
    print(f"results: {path}")
    return 0
