"""Workloads of the transfer client (issue 14), interleaved with the service
figures they are compared with, and the DERIVA CLI on the same large put.

Each round: the service's own 4-stream upload job, the same job with each
chunk's ``Content-MD5`` (precomputed before the clock starts; the server
verifies each, as it does for the client's chunks), then ``hatrac-client put``
of the same file (with its default per-chunk ``Content-MD5``, then without
chunk digests, ``--chunk-digest none``, to show what they cost); the
service's large GET of the object the client put (after an untimed GET that
brings it back into the page cache, which an upload job's hashing empties),
then ``hatrac-client get`` into a file (verified by its SHA-256); 1 KiB
PUTs by 8 load clients, then ``hatrac-client put -r``
of a directory of as many small files (``--jobs 8``); and, over HTTPS
through an nginx TLS proxy (the DERIVA CLI speaks only https),
``deriva-hatrac-cli put`` of the large file beside ``hatrac-client put``
through the same proxy. The clients run as subprocesses, timed from
start to exit (their start-up included), as a user would see them.

The DERIVA CLI is taken from ``.venv-deriva`` (``scripts/bench.sh`` makes it;
the tests never install it); without it, its rows are "not available".
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from . import workloads
from .load import MIB
from .rounds import Step
from .servers import PROJECT, free_port, stop_group, wait_for_port

if TYPE_CHECKING:
    from .groups import Context

DERIVA_CLI = PROJECT / ".venv-deriva" / "bin" / "deriva-hatrac-cli"

TLS_PROXY_CONF = """
worker_processes 2;
daemon off;
pid {directory}/nginx.pid;
error_log {directory}/error.log warn;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {directory}/body;
    proxy_temp_path {directory}/proxy;
    client_max_body_size 0;
    proxy_request_buffering off;
    proxy_buffering off;
    proxy_read_timeout 300s;
    upstream hatrac {{ server 127.0.0.1:{upstream}; keepalive 16; }}
    server {{
        listen 127.0.0.1:{port} ssl;
        ssl_certificate {directory}/cert.pem;
        ssl_certificate_key {directory}/key.pem;
        location / {{
            proxy_pass http://hatrac;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $http_host;
        }}
    }}
}}
"""


class TlsProxy:
    """nginx terminating TLS (a self-signed localhost certificate) in front of Hatrac."""

    def __init__(self, directory: Path, upstream_port: int):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.upstream = upstream_port
        self.port = free_port()
        self.process = None

    @property
    def url(self) -> str:
        return f"https://localhost:{self.port}"

    @property
    def ca_bundle(self) -> str:
        return str(self.directory / "cert.pem")

    def start(self) -> TlsProxy:
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"]
            + ["-keyout", str(self.directory / "key.pem"), "-out", self.ca_bundle]
            + ["-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost"],
            check=True,
            capture_output=True,
        )
        conf = self.directory / "nginx.conf"
        conf.write_text(
            TLS_PROXY_CONF.format(directory=self.directory, port=self.port, upstream=self.upstream)
        )
        binary = shutil.which("nginx") or "/usr/sbin/nginx"
        self.process = subprocess.Popen(
            [binary, "-c", str(conf), "-p", str(self.directory)],
            stdout=open(self.directory / "nginx.log", "wb"),  # noqa: SIM115
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_for_port(self.port, process=self.process)
        return self

    def stop(self) -> None:
        stop_group(self.process)


def _timed(command: list[str], env=None) -> float:
    began = time.monotonic()
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=900)
    seconds = time.monotonic() - began
    if done.returncode != 0:
        raise RuntimeError(f"{command[2:5]} exited {done.returncode}: {done.stderr[-500:]}")
    return seconds


def _client(*args: str) -> list[str]:
    return [sys.executable, "-m", "hatrac.client", *args, "-q", "--no-resume"]


def client_put(url: str, path: str, source: str, *options: str) -> dict:
    size = os.path.getsize(source)
    seconds = _timed(_client("put", source, url + path, *options))
    return {"mib_per_s": round(size / MIB / seconds, 1), "seconds": round(seconds, 3)}


def client_get(url: str, path: str, dest: str, size: int) -> dict:
    seconds = _timed(_client("get", url + path, dest))
    if os.path.getsize(dest) != size:
        raise RuntimeError("the client's get wrote a file of the wrong size")
    os.unlink(dest)
    return {"mib_per_s": round(size / MIB / seconds, 1), "seconds": round(seconds, 3)}


def client_small_tree(url: str, path: str, tree: str, count: int) -> dict:
    seconds = _timed(_client("put", "-r", tree, url + path, "--jobs", "8"))
    return {"ops_per_s": round(count / seconds, 1), "seconds": round(seconds, 3), "files": count}


def deriva_put(proxy: TlsProxy, path: str, source: str, home: Path) -> dict:
    if not DERIVA_CLI.exists():
        return "not available: no .venv-deriva (scripts/bench.sh installs the deriva package)"
    size = os.path.getsize(source)
    host = f"localhost:{proxy.port}"
    # its own HOME: the CLI reads and writes ~/.deriva; it trusts the proxy's certificate
    # through requests' REQUESTS_CA_BUNDLE (it has no option of its own for that)
    env = dict(os.environ, HOME=str(home), REQUESTS_CA_BUNDLE=proxy.ca_bundle)
    seconds = _timed([str(DERIVA_CLI), "--host", host, "put", source, path], env=env)
    return {"mib_per_s": round(size / MIB / seconds, 1), "seconds": round(seconds, 3)}


def make_small_tree(directory: Path, count: int) -> None:
    """``count`` 1 KiB files in 20 subdirectories."""
    for index in range(count):
        sub = directory / f"d{index % 20:02d}"
        sub.mkdir(parents=True, exist_ok=True)
        (sub / f"f{index:05d}.bin").write_bytes(os.urandom(1024))


def client_workloads(context: Context, namespace: str, small_count: int) -> list[dict]:
    """The interleaved client rounds (see the module docstring)."""
    url, pids = context.url, context.worker_pids
    tree = Path(context.workdir) / "small-tree"
    make_small_tree(tree, small_count)
    home = Path(context.workdir) / "deriva-home"
    home.mkdir(exist_ok=True)
    proxy = TlsProxy(Path(context.workdir) / "tls", int(url.rsplit(":", 1)[1])).start()
    per_client = max(1, small_count // context.clients)
    dest = str(Path(context.workdir) / "client-get.bin")

    def plan(index: int) -> list[Step]:
        names = ("job", "jobmd5", "put", "nodigest", "deriva", "tls", "tree")
        paths = {k: f"{namespace}/{k}-r{index}" for k in names}

        def cleanup():
            for path in paths.values():
                workloads.delete(url, path)
            return {}

        def small_puts():
            return workloads.small_puts(
                url, f"{namespace}/small-r{index}", context.clients, per_client, tag="c"
            )[0]

        return [
            context.step(
                "svc_e4",
                workloads.upload_job,
                url,
                paths["job"],
                context.source,
                context.chunk,
                4,
                pids,
            ),
            context.step(
                "svc_e4_md5",
                workloads.upload_job,
                url,
                paths["jobmd5"],
                context.source,
                context.chunk,
                4,
                pids,
                True,
            ),
            context.step("client_put", client_put, url, paths["put"], context.source),
            context.step(
                "client_put_nodigest",
                client_put,
                url,
                paths["nodigest"],
                context.source,
                "--chunk-digest",
                "none",
            ),
            # untimed: a job's object leaves the page cache as it is hashed (hashahead.py),
            # and the service GET below must read it warm, as (d) and the client's get do
            context.step("warm_d", workloads.large_get, url, paths["put"], context.large, pids),
            context.step("svc_d", workloads.large_get, url, paths["put"], context.large, pids),
            context.step("client_get", client_get, url, paths["put"], dest, context.large),
            context.step("svc_a", small_puts),
            context.step(
                "client_small", client_small_tree, url, paths["tree"], str(tree), small_count
            ),
            context.step("deriva_put", deriva_put, proxy, paths["deriva"], context.source, home),
            context.step(
                "client_put_tls",
                client_put,
                proxy.url,
                paths["tls"],
                context.source,
                "--ca-bundle",
                proxy.ca_bundle,
            ),
            context.step("cleanup", cleanup),
        ]

    try:
        workloads.make_namespace(url, namespace)
        return context.run_group(context.large_rounds, plan)
    finally:
        proxy.stop()
