"""hatrac-client when things go wrong, against real servers: a session ended
elsewhere or past its own expiry, an expired token, 403, a server that is
down, a full disk (507), 503s while PostgreSQL restarts, and resuming an
anonymous put or one without chunks-received. Each gives a clear message and its exit
code, and leaves nothing partial on the server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time

import pytest
import requests
from clienthelpers import (
    PASSWORD,
    Runner,
    logged_in,
    open_accounts,
    server_config,
    start_live,
)
from servers import GunicornServer, free_port


@pytest.fixture(scope="module")
def live(request, tmp_path_factory):
    """One SQLite + filesystem server for the credential and permission cases."""
    started = start_live(request, tmp_path_factory, ("sqlite", "filesystem"))
    yield started
    started.server.stop()
    started.accounts.directory.close()


@pytest.fixture
def alice(live, tmp_path, capsys, monkeypatch) -> Runner:
    monkeypatch.delenv("HATRAC_TOKEN", raising=False)
    return logged_in(live, tmp_path / "alice", capsys, monkeypatch)


def test_a_session_ended_elsewhere_says_log_in_again(live, alice):
    assert alice("mkdir", "t:/ended")[0] == 0
    cookie = json.loads((alice.config_dir / "credentials.json").read_text())[live.url]["cookie"]
    # the session ends (a logout in another program): the stored cookie is dead
    assert requests.delete(live.url + "/authn/session", headers={"Cookie": cookie}).ok
    code, out, err = alice("ls", "t:/ended")
    assert code == 4
    assert "stored session" in err and "log in again" in err and "request id" in err
    code, out, err = alice("whoami", "t")
    assert code == 4 and "no longer accepts the stored session" in err


def test_an_expired_token_and_a_stored_one(live, alice, monkeypatch):
    _, short = live.accounts.issue_token("alice", expires_in=1)
    monkeypatch.setenv("HATRAC_TOKEN", short)
    assert alice.json("whoami", "t")[0]["client"] == "alice"
    time.sleep(1.2)
    code, out, err = alice("ls", "t:/")
    assert code == 4 and "HATRAC_TOKEN" in err and "log in again" in err
    monkeypatch.delenv("HATRAC_TOKEN")
    _, lasting = live.accounts.issue_token("alice")
    code, out, err = alice("login", "t", "--token", "--password-stdin", stdin=lasting.encode())
    assert code == 0, err
    stored = json.loads((alice.config_dir / "credentials.json").read_text())[live.url]
    assert stored == {"token": lasting}
    assert alice.json("whoami", "t")[0]["client"] == "alice"


def test_403_is_reported_and_nothing_is_made(live, alice, tmp_path, capsys, monkeypatch):
    assert alice("mkdir", "t:/alices")[0] == 0
    bob = logged_in(live, tmp_path / "bob", capsys, monkeypatch, user="bob")
    local = tmp_path / "f"
    local.write_bytes(b"data")
    code, out, err = bob("put", local, "t:/alices/f")
    assert code == 4 and err.startswith("hatrac-client: 403: ") and "request id" in err
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "sub" / "g").write_bytes(b"g")
    (tree / "h").write_bytes(b"h")
    lines = bob.json("put", "-r", tree, "t:/alices/tree", expect=4)
    assert lines[-1]["status"] == 403 and lines[-1]["request_id"]
    for name in ("t:/alices/f", "t:/alices/tree", "t:/alices/tree/h"):
        assert alice("stat", name)[0] == 3
    code, out, err = bob("rm", "-y", "t:/alices")
    assert code == 4 and alice("stat", "t:/alices")[0] == 0
    # a drop box: bob may create in it, not look at it
    assert alice("mkdir", "t:/alices/dropbox")[0] == 0
    assert alice("acl", "set", "t:/alices/dropbox", "create", "bob")[0] == 0
    assert bob("put", local, "t:/alices/dropbox/f")[0] == 0
    assert bob.json("put", "-r", tree, "t:/alices/dropbox")[-1]["files"] == 2
    listed = {entry["name"] for entry in alice.json("ls", "t:/alices/dropbox")}
    assert listed == {"f", "h", "sub"}
    # a refused HEAD has no body: the reason comes from the server all the same
    code, out, err = alice("stat", "t:/alices/hidden", "--retries", "0")
    assert code == 3 and "does not exist" in err
    alice("acl", "set", "t:/alices", "read")
    code, out, err = bob("ls", "t:/alices")
    assert code == 4 and "is not granted" in err and "request id" in err


def test_an_unreachable_server_and_usage_errors(alice):
    closed = f"http://127.0.0.1:{free_port()}/hatrac/x"
    code, out, err = alice("ls", closed, "--retries", "1", "--retry-wait", "0.01")
    assert code == 5 and "cannot reach" in err and "after 2 attempts" in err
    assert alice("ls", "nosuchremote:/x")[0] == 2
    assert alice("put", "t:/a", "t:/b")[0] == 2
    code, out, err = alice("get", "t:/definitely-not-there")
    assert code == 3 and "does not exist" in err


@pytest.fixture
def small_disk(tmp_path):
    mount = tmp_path / "small"
    mount.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    made = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)], capture_output=True
    )
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {made.stderr.decode().strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_full_disk_507_is_clear_and_leaves_nothing(
    request, tmp_path_factory, small_disk, tmp_path, capsys, monkeypatch
):
    full = start_live(
        request, tmp_path_factory, ("sqlite", "filesystem"), storage_path=str(small_disk / "s")
    )
    try:
        hc = logged_in(full, tmp_path / "cfg", capsys, monkeypatch)
        assert hc("mkdir", "t:/full")[0] == 0
        big = tmp_path / "big"
        big.write_bytes(os.urandom(3 * 1024 * 1024))
        for options in ([], ["--threshold", "512k", "--chunk-size", "512k", "--streams", "1"]):
            code, out, err = hc("put", big, "t:/full/big", "--retry-wait", "0.01", *options)
            assert code == 1, err
            assert "507: the server's storage is full" in err and "request id" in err
            # nothing stored: at most the object a job bound (as upstream), with no version
            code, out, _ = hc("stat", "t:/full/big", "--json")
            assert code == 3 or json.loads(out.splitlines()[0])["version"] is None
        assert "stays open" in err  # the job: resumable once space is freed
        # the open job holds the chunks that fitted: cancelling it frees the space
        assert len(hc.json("jobs", "ls", "t:/full/big")) == 1
        assert hc("jobs", "cancel", "t:/full/big")[0] == 0
        small = tmp_path / "fits"
        small.write_bytes(b"fits")
        assert hc("put", small, "t:/full/small")[0] == 0
    finally:
        full.server.stop()
        full.accounts.directory.close()


def test_503_while_postgresql_restarts_is_retried(
    request, tmp_path_factory, tmp_path, capsys, monkeypatch
):
    postgres = request.getfixturevalue("postgres")
    live = start_live(request, tmp_path_factory, ("postgres", "filesystem"))
    try:
        hc = logged_in(live, tmp_path / "cfg", capsys, monkeypatch)
        assert hc("mkdir", "t:/restart")[0] == 0
        local = tmp_path / "f"
        local.write_bytes(b"survives a restart")
        # every worker must have booted first: gunicorn stops when a worker cannot boot
        deadline = time.monotonic() + 30
        while live.server.log().count("hatrac application ready") < 2:
            assert time.monotonic() < deadline, live.server.log()
            time.sleep(0.05)
        postgres._signal_postmaster()  # down (fast shutdown) ...
        postgres.process.wait(timeout=30)
        code, out, err = hc(
            "put",
            local,
            "t:/restart/early",
            "--retries",
            "1",
            "--retry-wait",
            "0.05",
            "--max-retry-wait",
            "0.1",
        )
        assert code == 5 and "503" in err and "after 2 attempts" in err and "retrying" in err
        # ... and back after a while, while a client keeps retrying
        threading.Timer(1.5, postgres.restart).start()
        code, out, err = hc(
            "put",
            local,
            "t:/restart/f",
            "--retries",
            "10",
            "--retry-wait",
            "0.2",
            "--max-retry-wait",
            "0.5",
        )
        assert code == 0, err + live.server.log()[-3000:]
        assert "503" in err and "retrying" in err  # it did meet the outage
        assert hc("stat", "t:/restart/early")[0] == 3
        fetched = tmp_path / "back"
        assert hc("get", "t:/restart/f", fetched)[0] == 0
        assert fetched.read_bytes() == local.read_bytes()
    finally:
        if postgres.process.poll() is not None:
            postgres.restart()
        live.server.stop()
        live.accounts.directory.close()


def test_progress_bars_only_on_a_terminal(alice, tmp_path):
    import fcntl
    import pty
    import struct
    import termios

    local = tmp_path / "f"
    local.write_bytes(os.urandom(300_000))
    assert alice("mkdir", "t:/bars")[0] == 0
    code, out, err = alice("put", local, "t:/bars/plain")
    assert code == 0 and err == "" and out.startswith("/hatrac/bars/plain:")
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    process = alice.process("put", local, "t:/bars/tty", stderr=follower)
    os.close(follower)
    drawn = b""
    while True:
        try:
            block = os.read(leader, 4096)
        except OSError:
            break
        if not block:
            break
        drawn += block
    assert process.wait(timeout=60) == 0
    os.close(leader)
    assert b"293k/293k" in drawn.replace(b" ", b"") or b"100%" in drawn, drawn


def test_https_with_a_ca_bundle_and_an_honest_certificate_error(
    request, tmp_path_factory, tmp_path, capsys, monkeypatch
):
    """gunicorn serving TLS itself with a self-signed certificate for localhost."""
    directory = tmp_path_factory.mktemp("client-tls")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"]
        + ["-keyout", str(key), "-out", str(cert), "-subj", "/CN=localhost"]
        + ["-addext", "subjectAltName=DNS:localhost"],
        check=True,
        capture_output=True,
    )
    config = server_config(request, directory, "sqlite", "filesystem")
    accounts = open_accounts(config)
    accounts.add_user("alice", PASSWORD)
    accounts.directory.close()
    server = GunicornServer(config, directory)
    server.config_path.write_text(json.dumps(config))
    environment = dict(
        os.environ,
        HATRAC_CONFIG=str(server.config_path),
        GUNICORN_CMD_ARGS=f"--certfile {cert} --keyfile {key}",
    )
    server.process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{server.port}"]
        + ["--workers", "1", "--threads", "4", "hatrac:create_app()"],
        cwd=directory,
        env=environment,
        stdout=open(server.log_path, "wb"),  # noqa: SIM115
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        base = f"https://localhost:{server.port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                requests.get(base + "/hatrac/", verify=str(cert), timeout=5)
                break
            except requests.RequestException:
                assert time.monotonic() < deadline and server.process.poll() is None, server.log()
                time.sleep(0.1)
        hc = Runner(tmp_path / "cfg", capsys, monkeypatch)
        assert hc("remote", "add", "s", base + "/hatrac")[0] == 0
        code, out, err = hc("ls", "s:/", "--retries", "0")
        assert code == 5 and "certificate verify failed" in err and "--ca-bundle" in err
        login = ("login", "s", "-u", "alice", "--password-stdin", "--ca-bundle", cert)
        assert hc(*login, stdin=PASSWORD.encode())[0] == 0
        local = tmp_path / "f"
        local.write_bytes(b"over TLS")
        assert hc("put", local, "s:/tls", "--ca-bundle", cert)[0] == 0
        assert hc("get", "s:/tls", tmp_path / "g", "--ca-bundle", cert)[0] == 0
        assert (tmp_path / "g").read_bytes() == b"over TLS"
    finally:
        server.stop()


def test_resume_without_chunks_received_resends_every_chunk(live, alice, tmp_path, monkeypatch):
    """Upstream's job status has no chunks-received: resuming then sends every chunk
    again (idempotent), and the version is still right."""
    import base64
    import hashlib

    from hatrac.client import http

    data = os.urandom(300_000)
    local = tmp_path / "f"
    local.write_bytes(data)
    assert alice("mkdir", "t:/upstreamish")[0] == 0
    cookie = json.loads((alice.config_dir / "credentials.json").read_text())[live.url]["cookie"]
    sha256 = base64.b64encode(hashlib.sha256(data).digest()).decode()
    spec = {"chunk-length": 65536, "content-length": len(data), "content-sha256": sha256}
    headers = {"Cookie": cookie}
    job = requests.post(
        live.url + "/hatrac/upstreamish/f;upload", json=spec, headers=headers
    ).text.strip()
    assert requests.put(live.url + job + "/1", data=data[65536:131072], headers=headers).ok
    real = http.Connection.get_json

    def upstream_status(self, resource):
        found = real(self, resource)
        if isinstance(found, dict):
            found.pop("chunks-received", None)
            found.pop("chunk-count", None)
        return found

    monkeypatch.setattr(http.Connection, "get_json", upstream_status)
    (result,) = alice.json("put", local, "t:/upstreamish/f", "--threshold", "100k")
    assert result["resumed"] and result["job"] == job and result["chunks-sent"] == 5
    info = alice.json("stat", "t:/upstreamish/f")[0]
    assert info["content-sha256"] == sha256 and info["size"] == len(data)


def test_an_anonymous_put_resumes_from_the_job_it_remembers(
    live, alice, tmp_path, capsys, monkeypatch
):
    """The server never lists an anonymous client's jobs (their URL is their only
    key): the client remembers the jobs it made (jobs.json, mode 600) and resumes
    from that."""
    import base64
    import hashlib
    import signal

    assert alice("mkdir", "t:/anon")[0] == 0
    assert alice("acl", "set", "t:/anon", "create", "*")[0] == 0
    # a drop box: anonymous clients create, only alice reads (no subtree-update:
    # the job that bound a new name is finalized with the create right)
    assert alice("acl", "set", "t:/anon", "subtree-read", "alice")[0] == 0
    anonymous = Runner(tmp_path / "anon", capsys, monkeypatch)
    assert anonymous("remote", "add", "t", live.base)[0] == 0
    data = os.urandom(3 * 1024 * 1024)
    local = tmp_path / "big"
    local.write_bytes(data)
    options = ["--threshold", "256k", "--chunk-size", "128k", "--streams", "2"]
    process = anonymous.process("put", local, "t:/anon/big", *options, "--limit-rate", "1M", "-q")
    jobs_file = anonymous.config_dir / "jobs.json"
    deadline = time.monotonic() + 60
    while True:
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()
        if jobs_file.exists():
            (record,) = json.loads(jobs_file.read_text())
            status = requests.get(live.url + record["job"]).json()
            if len(status["chunks-received"]) >= 4:
                break
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert jobs_file.stat().st_mode & 0o777 == 0o600
    received = requests.get(live.url + record["job"]).json()["chunks-received"]
    assert 4 <= len(received) < 24
    # the server does not list it (anonymous clients may not even list the
    # object's jobs here: they cannot read the namespace); the client knows it
    listed = requests.get(
        live.url + "/hatrac/anon/big;upload", headers={"Accept": "application/json"}
    )
    assert listed.status_code == 401, listed.text
    assert [job["job"] for job in anonymous.json("jobs", "ls", "t:/anon/big")] == [record["job"]]
    (result,) = anonymous.json("put", local, "t:/anon/big", *options)
    assert result["resumed"] and result["job"] == record["job"]
    assert result["chunks-sent"] == 24 - len(received)
    assert json.loads(jobs_file.read_text()) == []  # finished: forgotten
    info = alice.json("stat", "t:/anon/big")[0]
    assert info["content-md5"] == base64.b64encode(hashlib.md5(data).digest()).decode()


def test_a_session_past_its_own_expiry_says_log_in_again(
    request, tmp_path_factory, tmp_path, capsys, monkeypatch
):
    """A server whose sessions last one second: once the stored session has
    expired, every command says so (exit 4) and nothing is made."""
    monkeypatch.delenv("HATRAC_TOKEN", raising=False)
    short = start_live(request, tmp_path_factory, ("sqlite", "filesystem"), session_expiry_secs=1)
    try:
        hc = logged_in(short, tmp_path / "cfg", capsys, monkeypatch)
        assert "cookie" in json.loads((hc.config_dir / "credentials.json").read_text())[short.url]
        time.sleep(1.5)
        local = tmp_path / "f"
        local.write_bytes(b"too late")
        for command in (("put", local, "t:/late"), ("mkdir", "t:/late-ns"), ("ls", "t:/")):
            code, out, err = hc(*command)
            assert code == 4, (command, err)
            assert "stored session" in err and "log in again" in err and "request id" in err
        code, out, err = hc("whoami", "t")
        assert code == 4 and "no longer accepts the stored session" in err
        # alice looks with a lasting credential (a new session would expire again)
        monkeypatch.setenv("HATRAC_TOKEN", short.accounts.issue_token("alice")[1])
        assert hc("stat", "t:/late", "--retries", "0")[0] == 3  # nothing was made
        assert hc("stat", "t:/late-ns", "--retries", "0")[0] == 3
    finally:
        short.server.stop()
        short.accounts.directory.close()


class CuttingProxy:
    """A TCP proxy in front of the server that drops one connection (both ways, no
    goodbye) once it has carried ``cut`` bytes towards the client."""

    def __init__(self, upstream_port: int, cut: int):
        import socket

        self.upstream_port = upstream_port
        self.cut = cut
        self.cuts = 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        import socket

        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
            threading.Thread(target=self._pipe, args=(client, upstream, False), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, True), daemon=True).start()

    def _pipe(self, source, sink, downstream: bool) -> None:
        carried = 0
        try:
            while block := source.recv(65536):
                if downstream and self.cuts == 0 and carried + len(block) > self.cut:
                    self.cuts += 1
                    sink.sendall(block[: self.cut - carried])
                    break
                sink.sendall(block)
                carried += len(block)
        except OSError:
            pass
        for end in (source, sink):  # shutdown: the other thread's recv holds the socket
            try:
                end.shutdown(2)
                end.close()
            except OSError:
                pass

    def close(self) -> None:
        self.listener.close()


@pytest.mark.parametrize("streams", ["1", "3"])
def test_a_connection_dropped_mid_body_is_resumed_in_place(live, alice, tmp_path, streams):
    data = os.urandom(1024 * 1024)
    (tmp_path / "obj").write_bytes(data)
    assert alice("mkdir", f"t:/cut{streams}")[0] == 0
    assert alice("put", tmp_path / "obj", f"t:/cut{streams}/obj")[0] == 0
    assert alice("acl", "set", f"t:/cut{streams}/obj", "subtree-read", "*")[0] == 0
    proxy = CuttingProxy(live.server.port, 300_000)
    try:
        url = f"http://127.0.0.1:{proxy.port}/hatrac/cut{streams}/obj"
        dest = tmp_path / "fetched"
        options = ("--streams", streams, "--part-size", "256k", "--retry-wait", "0.01")
        (result,) = alice.json("get", url, dest, *options)
    finally:
        proxy.close()
    assert proxy.cuts == 1  # the connection was dropped, mid-body, once
    assert result["verified"] == "sha256" and dest.read_bytes() == data
