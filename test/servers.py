"""Real servers for the tests: a throwaway PostgreSQL cluster and gunicorn.

Nothing here is mocked: :class:`PostgresServer` runs Debian's PostgreSQL
(initdb + postgres on a loopback port and a private socket directory, as the
``postgres`` user when the tests run as root) and :class:`GunicornServer`
runs the service in a real gunicorn subprocess.
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
import tempfile
import threading
import time
from pathlib import Path
from typing import Optional

import requests


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, timeout: float = 30.0, process=None) -> None:
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


def postgres_bindir() -> str:
    explicit = os.environ.get("HATRAC_TEST_PG_BINDIR")
    if explicit:
        return explicit
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[4]))
    if candidates:
        return candidates[-1]
    initdb = shutil.which("initdb")
    if initdb:
        return str(Path(initdb).parent)
    raise RuntimeError(
        "PostgreSQL server binaries not found; install Debian's 'postgresql' package "
        "(scripts/test.sh does)"
    )


class PostgresServer:
    """A private PostgreSQL cluster on a loopback port, removed on stop."""

    def __init__(self):
        self.bindir = postgres_bindir()
        self.directory = Path(tempfile.mkdtemp(prefix="hatrac-pg-"))
        self.port = free_port()
        self.user: Optional[str] = None
        if os.geteuid() == 0:
            self.user = "postgres"
            entry = pwd.getpwnam("postgres")
            os.chown(self.directory, entry.pw_uid, entry.pw_gid)
        self.process = None

    def _run(self, *args: str, **kwargs) -> subprocess.CompletedProcess:
        command = list(args)
        if self.user:
            command = ["runuser", "-u", self.user, "--", *command]
        return subprocess.run(command, check=True, capture_output=True, **kwargs)

    def start(self) -> PostgresServer:
        data = self.directory / "data"
        self._run(
            f"{self.bindir}/initdb",
            "-D",
            str(data),
            "-U",
            "postgres",
            "--auth=trust",
            "--no-sync",
            "-E",
            "UTF8",
        )
        command = [
            f"{self.bindir}/postgres",
            "-D",
            str(data),
            "-p",
            str(self.port),
            "-k",
            str(self.directory),
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            "fsync=off",
            "-c",
            "max_connections=300",
            "-c",
            "shared_buffers=64MB",
        ]
        if self.user:
            command = ["runuser", "-u", self.user, "--", *command]
        self.process = subprocess.Popen(
            command,
            stdout=open(self.directory / "server.log", "wb"),  # noqa: SIM115
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self._wait_ready("PostgreSQL did not become ready")
        self.psql("CREATE DATABASE hatrac_test")
        return self

    def dsn(self, schema: Optional[str] = None, database: str = "hatrac_test") -> str:
        dsn = f"host=127.0.0.1 port={self.port} user=postgres dbname={database}"
        if schema:
            dsn += f" options='-csearch_path={schema}'"
        return dsn

    def psql(self, sql: str, database: str = "postgres") -> str:
        result = subprocess.run(
            [
                f"{self.bindir}/psql",
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-U",
                "postgres",
                "-d",
                database,
                "-v",
                "ON_ERROR_STOP=1",
                "-qAtc",
                sql,
            ],
            check=True,
            capture_output=True,
            text=True,
        )
        return result.stdout

    def new_schema(self, name: str) -> str:
        """A fresh, empty schema; its DSN gives a private directory to one test."""
        self.psql(f'CREATE SCHEMA "{name}"', database="hatrac_test")
        return self.dsn(schema=name)

    def restart(self) -> None:
        """Restart the cluster on the same port and data (a fast shutdown drops every
        connection, as a failover or a maintenance restart would)."""
        if self.process and self.process.poll() is None:
            self._signal_postmaster()
            self.process.wait(timeout=30)
        command = self.process.args
        self.process = subprocess.Popen(
            command,
            stdout=open(self.directory / "server.log", "ab"),  # noqa: SIM115
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self._wait_ready("PostgreSQL did not come back after a restart")

    def _wait_ready(self, failure: str) -> None:
        """Wait until the cluster listens and accepts connections (``pg_isready``)."""
        wait_for_port(self.port, process=self.process)
        deadline = time.monotonic() + 30
        while True:
            probe = subprocess.run(
                [f"{self.bindir}/pg_isready", "-h", "127.0.0.1", "-p", str(self.port)],
                capture_output=True,
            )
            if probe.returncode == 0:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(failure)
            time.sleep(0.1)

    def crash(self) -> None:
        """Stop the cluster as ``pg_ctl stop -m immediate`` does (SIGQUIT: no
        checkpoint, every backend dropped); ``restart`` brings it back."""
        postmaster = int((self.directory / "data" / "postmaster.pid").read_text().split()[0])
        os.kill(postmaster, signal.SIGQUIT)
        self.process.wait(timeout=30)

    def _signal_postmaster(self) -> None:
        """SIGINT (fast shutdown) to the postmaster itself: runuser does not pass it on."""
        try:
            postmaster = int((self.directory / "data" / "postmaster.pid").read_text().split()[0])
            os.kill(postmaster, signal.SIGINT)
        except (OSError, ValueError, IndexError):
            self.process.send_signal(signal.SIGINT)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self._signal_postmaster()  # fast shutdown
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
        shutil.rmtree(self.directory, ignore_errors=True)


def gunicorn_start_attempt(config_path: Path, cwd: Path) -> subprocess.CompletedProcess:
    """Start the service under gunicorn with ``config_path`` and wait for it to exit
    (for configurations it must refuse at start-up; 60 s at most)."""
    return subprocess.run(
        [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{free_port()}"]
        + ["hatrac:create_app()"],
        env=dict(os.environ, HATRAC_CONFIG=str(config_path)),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )


class GunicornServer:
    """The service under a real gunicorn, configured by a JSON file."""

    def __init__(
        self,
        config: dict,
        directory: Path,
        workers: int = 2,
        threads: int = 4,
        serve_conf: bool = False,
    ):
        self.config = config
        # serve_conf: with hatrac.gunicorn_conf, as scripts/serve.sh runs it
        self.serve_conf = serve_conf
        self.directory = Path(directory)
        self.port = free_port()
        self.workers = workers
        self.threads = threads
        self.process = None
        self.config_path = self.directory / f"hatrac_config_{self.port}.json"
        self.log_path = self.directory / f"gunicorn_{self.port}.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> GunicornServer:
        self.config_path.write_text(json.dumps(self.config))
        environment = dict(os.environ, HATRAC_CONFIG=str(self.config_path))
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "--bind",
                f"127.0.0.1:{self.port}",
                "--workers",
                str(self.workers),
                "--threads",
                str(self.threads),
                "--timeout",
                "120",
                *(["--config", "python:hatrac.gunicorn_conf"] if self.serve_conf else []),
                "hatrac:create_app()",
            ],
            cwd=self.directory,
            env=environment,
            stdout=open(self.log_path, "wb"),  # noqa: SIM115
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_for_port(self.port, process=self.process)
        deadline = time.monotonic() + 30
        while True:
            try:
                requests.get(self.url + "/hatrac/", timeout=5)
                break
            except requests.RequestException:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise RuntimeError("gunicorn did not answer:\n" + self.log()) from None
                time.sleep(0.1)
        return self

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def kill(self) -> None:
        """SIGKILL the whole server (master and workers), as a crash would."""
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()


class TcpRelay:
    """Forwards a loopback port to another while open; refuses connections while
    closed, as a server that is down does. ``close()`` also drops every relayed
    connection. Used to take PostgreSQL or moto away from the service and bring
    them back, with the real server behind it."""

    def __init__(self, target_port: int, port: Optional[int] = None):
        self.target = target_port
        self.port = port or free_port()
        self._listener: Optional[socket.socket] = None
        self._open: list[socket.socket] = []
        self._lock = threading.Lock()

    def open(self) -> TcpRelay:
        self._listener = socket.create_server(("127.0.0.1", self.port))
        threading.Thread(target=self._accept, args=(self._listener,), daemon=True).start()
        return self

    def close(self) -> None:
        if self._listener is not None:
            # shutdown first: it wakes the accept() blocked on it (close alone does not)
            self._listener.shutdown(socket.SHUT_RDWR)
            self._listener.close()
            self._listener = None
        with self._lock:
            for sock in self._open:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                sock.close()
            self._open.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self.target))
            with self._lock:
                self._open += [client, server]
            for source, sink in ((client, server), (server, client)):
                threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            try:
                sink.shutdown(socket.SHUT_WR)
            except OSError:
                pass


class MotoServer:
    """moto's standalone S3 server on a loopback port: the real S3 API over HTTP.

    Tests and the service talk to it with boto3 exactly as to AWS, through
    ``endpoint_url``. :meth:`s3_config` builds a hatrac ``s3_config`` for a
    fresh, versioned bucket.
    """

    ACCESS = {
        "aws_access_key_id": "testing",
        "aws_secret_access_key": "testing",
        "region_name": "us-east-1",
    }

    def __init__(self):
        self.port = free_port()
        self.process = None
        self.log_file = tempfile.NamedTemporaryFile(prefix="moto-", suffix=".log", delete=False)  # noqa: SIM115

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> MotoServer:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=self.log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_for_port(self.port, process=self.process)
        return self

    def client(self):
        import boto3

        return boto3.session.Session(**self.ACCESS).client("s3", endpoint_url=self.endpoint_url)

    def create_bucket(self, name: str, versioned: bool = True) -> str:
        client = self.client()
        client.create_bucket(Bucket=name)
        if versioned:
            client.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
        return name

    def bucket_settings(self, bucket: str, **extra) -> dict:
        settings = {
            "bucket_name": bucket,
            "session_config": dict(self.ACCESS),
            "client_config": {
                "endpoint_url": self.endpoint_url,
                "connect_timeout": 2,
                "read_timeout": 10,
                "retries": {"max_attempts": 1},
            },
        }
        settings.update(extra)
        return settings

    def s3_config(self, bucket: str, **extra) -> dict:
        return {"buckets": {"/": self.bucket_settings(bucket, **extra)}}

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
