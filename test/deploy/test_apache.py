"""Hatrac under a real Apache HTTPD + mod_wsgi, configured by ``hatrac apache-config``.

What only Apache shows: encoded slashes surviving ``AllowEncodedSlashes
NoDecode``, identities set by an Apache auth module (mod_authn_file Basic)
and groups set by Apache (RewriteMap), chunked request bodies through
mod_wsgi, and every alias (``/hatrac``, ``/hatrac-health``, ``/authn``)
reaching the one application.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import requests

NS = {"Content-Type": "application/x-hatrac-namespace"}
ALICE = ("alice", "alice-pw")


def hatrac_command() -> str:
    """The admin command of the environment running the tests."""
    return str(Path(sys.executable).parent / "hatrac")


def fresh(apache, user=("alice", "alice-pw")) -> str:
    """A new namespace owned by ``user``; returns its URL path."""
    path = f"/hatrac/apache-{uuid.uuid4().hex[:10]}"
    reply = requests.put(apache.url + path, headers=NS, auth=user)
    assert reply.status_code == 201, reply.text
    return path


def test_health_endpoints_through_apache(apache):
    live = requests.get(apache.url + "/hatrac-health/live")
    assert live.status_code == 200 and live.json()["status"] == "alive"
    ready = requests.get(apache.url + "/hatrac-health/ready")
    assert ready.json() == {"status": "ready", "database": "ok", "storage": "ok"}
    assert requests.get(apache.url + "/hatrac").status_code == 200


def test_remote_user_comes_from_apache_basic_auth(apache):
    path = fresh(apache)
    owners = requests.get(apache.url + path + ";acl/owner", auth=("alice", "alice-pw")).json()
    assert owners == ["alice"]
    # a wrong password is refused by Apache itself, before Hatrac
    refused = requests.put(apache.url + path + "/x", data=b"x", auth=("alice", "wrong"))
    assert refused.status_code == 401
    assert "X-Request-Id" not in refused.headers
    # anonymous requests pass Apache and are judged by Hatrac's ACLs
    anonymous = requests.put(apache.url + path + "/x", data=b"x")
    assert anonymous.status_code == 401 and "X-Request-Id" in anonymous.headers
    # a client cannot claim an identity through headers
    spoofed = requests.put(
        apache.url + path + "/x", data=b"x", headers={"Remote-User": "alice", "X-Remote-User": "a"}
    )
    assert spoofed.status_code == 401


def test_groups_come_from_apache(apache):
    path = fresh(apache)
    obj = apache.url + path + "/data"
    assert requests.put(obj, data=b"lab only", auth=("alice", "alice-pw")).status_code == 201
    acl = requests.put(
        obj + ";acl/subtree-read",  # an object's subtree-read reads its versions
        json=["https://example.org/groups/lab"],
        auth=("alice", "alice-pw"),
    )
    assert acl.status_code == 204, acl.text
    # dave is in the lab group per the Apache RewriteMap; carol is not
    assert requests.get(obj, auth=("dave", "dave-pw")).content == b"lab only"
    assert requests.get(obj, auth=("carol", "carol-pw")).status_code == 403
    assert requests.get(obj).status_code == 401


def test_encoded_slashes_reach_the_app(apache):
    path = fresh(apache)
    alice = ("alice", "alice-pw")
    name = path + "/a%2Fb%3Ac%3Bd"
    created = requests.put(apache.url + name, data=b"slashes", auth=alice)
    assert created.status_code == 201, created.text
    assert created.text.startswith(name + ":")
    listing = requests.get(apache.url + path, headers={"Accept": "application/json"}, auth=alice)
    listing = listing.json()
    assert listing == [name]
    assert requests.get(apache.url + name, auth=alice).content == b"slashes"
    # a different name: the bare slash means a child of a (missing) namespace a
    assert requests.get(apache.url + path + "/a/b%3Ac%3Bd", auth=alice).status_code == 404
    # an ACL role that is a URL, percent-encoded with no safe characters
    role = "https%3A%2F%2Fexample.org%2Fgroups%2Fx%3Ay"
    added = requests.put(apache.url + name + ";acl/read/" + role, auth=alice)
    assert added.status_code == 204, added.text
    roles = requests.get(apache.url + name + ";acl/read", auth=alice).json()
    assert "https://example.org/groups/x:y" in roles
    assert requests.get(apache.url + name + ";acl/read/" + role, auth=alice).status_code == 200
    deleted = requests.delete(apache.url + name + ";acl/read/" + role, auth=alice)
    assert deleted.status_code == 204


def test_object_round_trip_with_digests(apache):
    path = fresh(apache)
    body = os.urandom(3 * 1024 * 1024 + 17)
    md5 = base64.b64encode(hashlib.md5(body).digest()).decode()
    sha = base64.b64encode(hashlib.sha256(body).digest()).decode()
    url = apache.url + path + "/blob"
    reply = requests.put(url, data=body, auth=("alice", "alice-pw"), headers={"Content-MD5": md5})
    assert reply.status_code == 201
    head = requests.head(url, auth=ALICE)
    assert head.headers["Content-MD5"] == md5
    assert head.headers["Content-SHA256"] == sha
    assert head.headers["Content-Length"] == str(len(body))
    got = requests.get(url, auth=ALICE)
    assert got.content == body
    ranged = requests.get(url, headers={"Range": "bytes=10-19"}, auth=ALICE)
    assert ranged.status_code == 206 and ranged.content == body[10:20]
    bad = requests.put(url, data=b"other", auth=("alice", "alice-pw"), headers={"Content-MD5": md5})
    assert bad.status_code == 400


def test_ranges_before_the_end_are_exact_through_mod_wsgi(apache):
    """mod_wsgi sends a file range by sendfile too: it must stop at Content-Length,
    on a keep-alive connection where a byte too many would corrupt the next reply."""
    path = fresh(apache)
    body = os.urandom(3 * 1024 * 1024 + 7)
    url = apache.url + path + "/ranged"
    assert requests.put(url, data=body, auth=ALICE).status_code == 201
    with requests.Session() as session:
        for first, last in ((100_000, 400_000), (0, 70_000), (1, len(body) - 2), (2**20, 2**21)):
            part = session.get(url, headers={"Range": f"bytes={first}-{last}"}, auth=ALICE)
            assert part.status_code == 206
            assert part.headers["Content-Range"] == f"bytes {first}-{last}/{len(body)}"
            assert int(part.headers["Content-Length"]) == last - first + 1
            assert part.content == body[first : last + 1]
        assert session.get(url, auth=ALICE).content == body


def test_chunked_request_body_through_mod_wsgi(apache):
    path = fresh(apache)
    token = base64.b64encode(b"alice:alice-pw").decode()
    with socket.create_connection(("127.0.0.1", apache.port), timeout=30) as sock:
        sock.sendall(
            (
                f"PUT {path}/empty HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                f"Authorization: Basic {token}\r\nTransfer-Encoding: chunked\r\n"
                "Connection: close\r\n\r\n0\r\n\r\n"
            ).encode()
        )
        answer = b""
        while True:
            data = sock.recv(65536)
            if not data:
                break
            answer += data
    assert answer.startswith(b"HTTP/1.1 201"), answer[:300]
    got = requests.get(apache.url + path + "/empty", auth=ALICE)
    assert got.status_code == 200 and got.content == b""


def test_request_id_and_access_log(apache):
    path = fresh(apache)
    reply = requests.get(apache.url + path, headers={"X-Request-Id": "apache-trace-1"}, auth=ALICE)
    assert reply.headers["X-Request-Id"] == "apache-trace-1"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        lines = [line for line in apache.log().splitlines() if "apache-trace-1" in line]
        if lines:
            break
        time.sleep(0.1)
    assert lines, apache.log()[-2000:]
    entry = json.loads(lines[-1][lines[-1].index("{") :])
    assert entry["method"] == "GET" and entry["status"] == 200 and entry["path"] == path
    assert entry["client"] == "alice"


def test_authn_alias_reaches_the_app(apache):
    reply = requests.get(apache.url + "/authn/session")
    # whatever the session resource answers, it is Hatrac (not Apache) answering
    assert "X-Request-Id" in reply.headers, reply.text


def test_cli_verify_sees_what_apache_stored(apache):
    """The admin command reads the same config and finds every version intact."""
    path = fresh(apache)
    for index in range(3):
        requests.put(apache.url + f"{path}/o{index}", data=b"x" * index, auth=("alice", "alice-pw"))
    result = subprocess.run(
        [hatrac_command(), "--config", str(apache.config_path), "verify", path, "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["checked"] == 3 and report["problems"] == []


def as_service_account(apache, argv: list, **kwargs) -> subprocess.CompletedProcess:
    """Run the admin command as the account Apache's daemons run as (files stay theirs)."""
    arguments = ["--config", str(apache.config_path), *argv]
    if not apache.account:
        command = [hatrac_command(), *arguments]
        return subprocess.run(command, capture_output=True, text=True, timeout=120, **kwargs)
    # the daemon account may not reach the test interpreter (e.g. under /root): use
    # Debian's python3 with the venv's packages, exactly as mod_wsgi does
    from hatrac.cli.deploy import python_path

    project = Path(__file__).resolve().parents[2]
    command = ["runuser", "-u", apache.account, "--", "env", f"PYTHONPATH={python_path(project)}"]
    command += ["/usr/bin/python3", "-m", "hatrac.cli", *arguments]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, cwd="/", **kwargs)


def test_session_login_through_apache(apache):
    """DERIVA's login: POST /authn/session on the store's host, then the webauthn cookie."""
    user = f"sam{uuid.uuid4().hex[:6]}"
    added = as_service_account(apache, ["user", "add", user])
    assert added.returncode == 0, added.stderr
    password = "a long enough password 123"
    changed = as_service_account(
        apache, ["user", "passwd", user, "--password-stdin"], input=password + "\n"
    )
    assert changed.returncode == 0, changed.stderr
    session = requests.Session()
    login = session.post(
        apache.url + "/authn/session", data={"username": user, "password": password}
    )
    assert login.status_code in (200, 201), login.text
    assert login.json()["client"]["id"] == user
    assert "webauthn" in session.cookies
    path = f"/hatrac/session-{uuid.uuid4().hex[:8]}"
    assert session.put(apache.url + path, headers=NS).status_code == 201
    assert session.get(apache.url + path + ";acl/owner").json() == [user]
    assert session.delete(apache.url + "/authn/session").status_code in (200, 204)
    assert session.get(apache.url + "/authn/session").status_code == 404


def test_web_interface_through_apache(apache):
    """The interface's pages and files under the /hatrac alias alone (no other alias)."""
    path = fresh(apache)
    html = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
    assert requests.put(apache.url + path + "/a%2Fb", data=b"x", auth=ALICE).status_code == 201
    page = requests.get(apache.url + path, headers=html, auth=ALICE)
    assert page.status_code == 200
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    assert f'href="{path}/a%2Fb;versions"' in page.text and ">a/b</a>" in page.text
    versions = requests.get(apache.url + path + "/a%2Fb;versions", headers=html, auth=ALICE)
    assert versions.status_code == 200 and "Current version" in versions.text
    script = requests.get(apache.url + "/hatrac/;web/static/app.js")
    assert script.status_code == 200 and "javascript" in script.headers["Content-Type"]


def test_untrusted_forwarded_proto_does_not_make_the_cookie_secure(apache):
    """Issue 13, defect 9: without trust_forwarded_headers, X-Forwarded-Proto
    from the client (or any proxy) is not believed under Apache either."""
    user = f"fwd{uuid.uuid4().hex[:6]}"
    assert as_service_account(apache, ["user", "add", user]).returncode == 0
    password = "a long enough password 123"
    changed = as_service_account(
        apache, ["user", "passwd", user, "--password-stdin"], input=password + "\n"
    )
    assert changed.returncode == 0, changed.stderr
    login = requests.post(
        apache.url + "/authn/session",
        data={"username": user, "password": password},
        headers={"X-Forwarded-Proto": "https"},
    )
    assert login.status_code in (200, 201), login.text
    assert "Secure" not in login.headers["Set-Cookie"], login.headers["Set-Cookie"]
