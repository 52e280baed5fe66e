"""The servers a benchmark run starts: PostgreSQL, gunicorn apps and nginx.

Modelled on ``test/servers.py`` (the package never imports test code), with
one difference that matters for figures: PostgreSQL keeps its durable
defaults (``fsync`` and ``synchronous_commit`` on), as a deployment would.
Every server runs in its own session (process group) under a private
directory and is stopped by process-group id, never by name.
"""

from __future__ import annotations

import glob
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Optional

PROJECT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(
    port: int, timeout: float = 30.0, process: Optional[subprocess.Popen] = None
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode} before listening")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port} after {timeout}s")


def wait_for_http(
    url: str, timeout: float = 30.0, process: Optional[subprocess.Popen] = None
) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as reply:
                reply.read()
            return
        except urllib.error.HTTPError:
            return  # it answers; a 4xx is an answer
        except OSError:
            if time.monotonic() > deadline or (process is not None and process.poll() is not None):
                raise RuntimeError(f"{url} did not answer") from None
            time.sleep(0.1)


def stop_group(process: Optional[subprocess.Popen], sig: int = signal.SIGTERM) -> None:
    """Stop a server we started (its whole process group), killing it if it lingers."""
    if process is None or process.poll() is not None:
        return
    try:
        os.killpg(process.pid, sig)
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    except ProcessLookupError:
        pass


def postgres_bindir() -> str:
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[4]))
    if candidates:
        return candidates[-1]
    initdb = shutil.which("initdb")
    if initdb:
        return str(Path(initdb).parent)
    raise RuntimeError("PostgreSQL not found; install Debian's postgresql (scripts/bench.sh does)")


class PostgresServer:
    """A private, durable PostgreSQL cluster on a loopback port."""

    def __init__(self, directory: Path):
        self.bindir = postgres_bindir()
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.user: Optional[str] = None
        if os.geteuid() == 0:  # PostgreSQL refuses to run as root
            self.user = "postgres"
            entry = pwd.getpwnam("postgres")
            os.chown(self.directory, entry.pw_uid, entry.pw_gid)
        self.process: Optional[subprocess.Popen] = None

    def _as_user(self, command: list) -> list:
        return ["runuser", "-u", self.user, "--", *command] if self.user else command

    def start(self) -> PostgresServer:
        data = self.directory / "data"
        subprocess.run(
            self._as_user(
                [f"{self.bindir}/initdb", "-D", str(data), "-U", "postgres", "--auth=trust"]
                + ["-E", "UTF8"]
            ),
            check=True,
            capture_output=True,
        )
        settings = {
            "listen_addresses": "127.0.0.1",
            "max_connections": "200",
            "shared_buffers": "128MB",
            "unix_socket_directories": str(self.directory),
            # what the server does besides our statements, in its log
            "log_checkpoints": "on",
            "log_autovacuum_min_duration": "0",
        }
        command = [f"{self.bindir}/postgres", "-D", str(data), "-p", str(self.port)]
        for key, value in settings.items():
            command += ["-c", f"{key}={value}"]
        self.process = subprocess.Popen(
            self._as_user(command),
            stdout=open(self.directory / "server.log", "wb"),  # noqa: SIM115
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_for_port(self.port, process=self.process)
        deadline = time.monotonic() + 30
        while self.psql("SELECT 1", check=False) is None:
            if time.monotonic() > deadline:
                raise RuntimeError("PostgreSQL did not become ready")
            time.sleep(0.1)
        self.psql("CREATE DATABASE hatrac_bench")
        return self

    def dsn(self, database: str = "hatrac_bench") -> str:
        return f"host=127.0.0.1 port={self.port} user=postgres dbname={database}"

    def psql(self, sql: str, database: str = "postgres", check: bool = True) -> Optional[str]:
        result = subprocess.run(
            [f"{self.bindir}/psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres"]
            + ["-d", database, "-v", "ON_ERROR_STOP=1", "-qAtc", sql],
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            if check:
                raise RuntimeError(f"psql failed: {result.stderr}")
            return None
        return result.stdout

    def error_counts(self) -> dict:
        """How often the server logged the errors a service retries (a sign of contention)."""
        try:
            text = (self.directory / "server.log").read_text(errors="replace")
        except OSError:
            return {}
        return {
            "serialization_failures": text.count("could not serialize access"),
            "deadlocks": text.count("deadlock detected"),
            "errors": text.count("ERROR:"),
        }

    def stop(self) -> None:
        stop_group(self.process, signal.SIGINT)  # SIGINT: PostgreSQL's fast shutdown


class GunicornServer:
    """A WSGI app under gunicorn with the service's own settings (``hatrac.gunicorn_conf``).

    ``workers`` and ``threads`` go through the same environment variables an
    admin would set, so Hatrac and the minimal app are served identically.
    """

    def __init__(
        self,
        app: str,
        directory: Path,
        workers: int,
        threads: int,
        config: Optional[dict] = None,
        worker_class: Optional[str] = None,
    ):
        self.app = app
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.workers = workers
        self.threads = threads
        self.worker_class = worker_class
        self.config = config
        self.port = free_port()
        self.log_path = self.directory / f"gunicorn_{self.port}.log"
        self.process: Optional[subprocess.Popen] = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, probe_path: str = "/") -> GunicornServer:
        environment = dict(
            os.environ,
            HATRAC_WORKERS=str(self.workers),
            HATRAC_THREADS=str(self.threads),
            PYTHONPATH=str(PROJECT),
        )
        if self.config is not None:
            config_path = self.directory / f"hatrac_config_{self.port}.json"
            config_path.write_text(json.dumps(self.config, indent=2))
            environment["HATRAC_CONFIG"] = str(config_path)
        command = [sys.executable, "-m", "gunicorn", "--config", "python:hatrac.gunicorn_conf"]
        command += ["--bind", f"127.0.0.1:{self.port}"]
        if self.worker_class:
            command += ["--worker-class", self.worker_class]
        self.process = subprocess.Popen(
            [*command, self.app],
            cwd=self.directory,
            env=environment,
            stdout=open(self.log_path, "wb"),  # noqa: SIM115
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_for_port(self.port, process=self.process)
        try:
            wait_for_http(self.url + probe_path, process=self.process)
        except RuntimeError:
            raise RuntimeError(f"gunicorn {self.app} did not answer:\n{self.log()}") from None
        # every worker must be up before a figure is taken
        deadline = time.monotonic() + 30
        while len(self.worker_pids()) < self.workers and time.monotonic() < deadline:
            time.sleep(0.1)
        return self

    def worker_pids(self) -> list[int]:
        """The gunicorn workers: the children of the master process."""
        if self.process is None:
            return []
        return children_of(self.process.pid)

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-5000:]
        except OSError:
            return ""

    def stop(self) -> None:
        stop_group(self.process)


def children_of(pid: int) -> list[int]:
    found = []
    for stat in glob.glob("/proc/[0-9]*/stat"):
        try:
            text = Path(stat).read_text()
        except OSError:
            continue
        fields = text[text.rindex(")") + 2 :].split()
        if int(fields[1]) == pid:
            found.append(int(stat.split("/")[2]))
    return sorted(found)


def rss_bytes(pid: int) -> int:
    """Resident set size of a process, from /proc."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


NGINX_CONF = """
daemon off;
master_process on;
worker_processes {workers};
pid {directory}/nginx.pid;
error_log {directory}/nginx_error.log warn;
user root;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000;
    keepalive_timeout 75s;
    client_body_temp_path {directory}/client_body;
    proxy_temp_path {directory}/proxy;
    fastcgi_temp_path {directory}/fastcgi;
    uwsgi_temp_path {directory}/uwsgi;
    scgi_temp_path {directory}/scgi;
    default_type application/octet-stream;
    server {{
        listen 127.0.0.1:{port};
        root {root};
    }}
}}
"""


class NginxServer:
    """nginx serving a directory of static files over loopback (sendfile on)."""

    def __init__(self, directory: Path, root: Path, workers: int):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.root = Path(root)
        self.workers = workers
        self.port = free_port()
        self.process: Optional[subprocess.Popen] = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> NginxServer:
        binary = shutil.which("nginx") or "/usr/sbin/nginx"
        if not os.path.exists(binary):
            raise RuntimeError("nginx not found; install Debian's 'nginx' (scripts/bench.sh does)")
        conf = self.directory / "nginx.conf"
        conf.write_text(
            NGINX_CONF.format(
                directory=self.directory, root=self.root, port=self.port, workers=self.workers
            )
        )
        self.process = subprocess.Popen(
            [binary, "-c", str(conf), "-p", str(self.directory)],
            stdout=open(self.directory / "nginx.log", "wb"),  # noqa: SIM115
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_for_port(self.port, process=self.process)
        return self

    def stop(self) -> None:
        stop_group(self.process, signal.SIGQUIT)  # graceful for nginx
