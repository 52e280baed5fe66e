"""The webauthn2 provider against a stand-in webauthn2 session service, over real gunicorn.

The stand-in (:class:`StandInWebauthn2`, our own code) answers ``GET
/authn/session`` in webauthn2's JSON shape for the sessions a test gives it,
404 for others, and can be made slow, broken or absent.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
from servers import GunicornServer, free_port

from hatrac.auth.webauthn2 import IdentityServiceError, parse_session

GLOBUS_USER = "https://auth.globus.org/0b9a1c2e-6f1d-4c55-9d52-5c7a2e1f0a11"
GLOBUS_GROUP = "https://auth.globus.org/ff766864-a03f-11e5-b097-22000aef184d"
NS = {"Content-Type": "application/x-hatrac-namespace"}
CACHE_SECS = 1


def session_document(identity: str, groups: list[str]) -> dict:
    attributes = [{"id": identity, "display_name": "someone", "identities": [identity]}]
    attributes += [{"id": group, "display_name": "a group"} for group in groups]
    return {
        "client": {"id": identity, "display_name": "someone", "identities": [identity]},
        "attributes": attributes,
        "since": "2026-12-01T10:00:00+00:00",
        "expires": "2026-12-01T18:00:00+00:00",
        "seconds_remaining": 28000,
        "vary_headers": ["cookie"],
    }


class StandInWebauthn2:
    """A small webauthn2 session service: cookie or bearer value -> session document."""

    def __init__(self):
        self.sessions: dict[str, object] = {}
        self.delay = 0.0
        self.status = None  # force this status for every answer
        self.asked = 0
        self.port = free_port()
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                stand_in.asked += 1
                if stand_in.delay:
                    time.sleep(stand_in.delay)
                if self.path != "/authn/session":
                    return self._answer(404, b"not found\n")
                if stand_in.status:
                    return self._answer(stand_in.status, b"broken\n")
                value = None
                for part in (self.headers.get("Cookie") or "").split(";"):
                    name, _, cookie = part.strip().partition("=")
                    if name == "webauthn":
                        value = cookie
                authorization = self.headers.get("Authorization") or ""
                if value is None and authorization.startswith("Bearer "):
                    value = authorization[len("Bearer ") :]
                if value not in stand_in.sessions:
                    return self._answer(404, b"No existing login session found.\n")
                body = stand_in.sessions[value]
                raw = body if isinstance(body, bytes) else json.dumps(body).encode()
                return self._answer(200, raw, "application/json")

            def _answer(self, status, body, kind="text/plain"):
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/authn/session"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def webauthn2():
    stand_in = StandInWebauthn2()
    yield stand_in
    stand_in.stop()


@pytest.fixture(scope="module")
def site(webauthn2, tmp_path_factory):
    """Our service configured as in a DERIVA deployment: identities from webauthn2 only."""
    directory = tmp_path_factory.mktemp("webauthn2")
    config = {
        "data_directory": str(directory / "data"),
        "authn_providers": ["webauthn2"],
        "webauthn2_session_url": webauthn2.url,
        "webauthn2_cache_secs": CACHE_SECS,
        "webauthn2_timeout_secs": 1,
        "root_acls": {"owner": [GLOBUS_USER]},
        "cors_allowed_origins": ["https://lab.example.org"],
    }
    server = GunicornServer(config, directory, workers=1, threads=4).start()
    yield server
    server.stop()


@pytest.fixture
def stand_in(webauthn2):
    webauthn2.sessions.clear()
    webauthn2.delay = 0.0
    webauthn2.status = None
    yield webauthn2
    webauthn2.delay = 0.0
    webauthn2.status = None


def cookie(value: str) -> dict:
    return {"Cookie": f"webauthn={value}"}


def test_roles_come_from_the_webauthn2_session(site, stand_in):
    stand_in.sessions["owner-cookie"] = session_document(GLOBUS_USER, [])
    stand_in.sessions["member-cookie"] = session_document(
        "https://auth.globus.org/1111", [GLOBUS_GROUP]
    )
    stand_in.sessions["outsider-cookie"] = session_document("https://auth.globus.org/2222", [])
    ns = f"{site.url}/hatrac/lab{time.time_ns()}"
    reply = requests.put(ns, headers={**NS, **cookie("owner-cookie")})
    assert reply.status_code == 201, reply.text
    assert requests.get(ns + ";acl/owner", headers=cookie("owner-cookie")).json() == [GLOBUS_USER]
    # an ACL naming the webauthn2 group id verbatim grants its members
    group = requests.utils.quote(GLOBUS_GROUP, safe="")
    reply = requests.put(ns + ";acl/subtree-read/" + group, headers=cookie("owner-cookie"))
    assert reply.status_code == 204, reply.text
    reply = requests.put(ns + "/obj", data=b"bytes", headers=cookie("owner-cookie"))
    assert reply.status_code == 201
    assert requests.get(ns + "/obj", headers=cookie("member-cookie")).content == b"bytes"
    assert requests.get(ns + "/obj", headers=cookie("outsider-cookie")).status_code == 403
    assert requests.get(ns).status_code == 401


def test_bearer_token_is_asked_as_such(site, stand_in):
    stand_in.sessions["a-bearer-token"] = session_document(GLOBUS_USER, [])
    reply = requests.get(site.url + "/hatrac/", headers={"Authorization": "Bearer a-bearer-token"})
    assert reply.status_code == 200, reply.text


def test_unknown_session_is_401(site, stand_in):
    reply = requests.get(site.url + "/hatrac/", headers=cookie("never-issued"))
    assert reply.status_code == 401
    assert "webauthn2" in reply.text


def test_logout_is_seen_within_the_cache_time(site, stand_in):
    stand_in.sessions["short-lived"] = session_document(GLOBUS_USER, [])
    assert requests.get(site.url + "/hatrac/", headers=cookie("short-lived")).status_code == 200
    asked = stand_in.asked
    # cached: webauthn2 is not asked again at once
    assert requests.get(site.url + "/hatrac/", headers=cookie("short-lived")).status_code == 200
    assert stand_in.asked == asked
    del stand_in.sessions["short-lived"]  # the user logs out at webauthn2
    deadline = time.monotonic() + CACHE_SECS + 2
    while time.monotonic() < deadline:
        status = requests.get(site.url + "/hatrac/", headers=cookie("short-lived")).status_code
        if status == 401:
            break
        time.sleep(0.1)
    assert status == 401


@pytest.mark.parametrize(
    "fault",
    ["slow", "error", "no-client", "not-json"],
)
def test_a_failing_webauthn2_is_503_never_anonymous(site, stand_in, fault):
    value = f"cookie-{fault}-{time.time_ns()}"
    stand_in.sessions[value] = session_document(GLOBUS_USER, [])
    if fault == "slow":
        stand_in.delay = 2.5  # beyond webauthn2_timeout_secs
    elif fault == "error":
        stand_in.status = 500
    elif fault == "no-client":
        stand_in.sessions[value] = {"attributes": [], "seconds_remaining": 10}
    else:
        stand_in.sessions[value] = b"<html>a login page</html>"
    reply = requests.get(site.url + "/hatrac/", headers=cookie(value), timeout=30)
    assert reply.status_code == 503, reply.text
    assert reply.headers.get("Retry-After")
    assert "webauthn2" in reply.text


def test_a_dead_webauthn2_is_503(webauthn2, tmp_path):
    config = {
        "data_directory": str(tmp_path / "data"),
        "authn_providers": ["webauthn2"],
        "webauthn2_session_url": f"http://127.0.0.1:{free_port()}/authn/session",
        "root_acls": {"owner": [GLOBUS_USER], "read": ["*"]},
    }
    server = GunicornServer(config, tmp_path, workers=1, threads=2).start()
    try:
        reply = requests.get(server.url + "/hatrac/", headers=cookie("anything"))
        assert reply.status_code == 503
        assert "cannot be reached" in reply.text
        # requests without a credential are anonymous as ever
        assert requests.get(server.url + "/hatrac/").status_code == 200
    finally:
        server.stop()


def test_cookie_requests_from_another_site_are_refused(site, stand_in):
    stand_in.sessions["csrf-cookie"] = session_document(GLOBUS_USER, [])
    reply = requests.put(
        f"{site.url}/hatrac/csrf{time.time_ns()}",
        headers={**NS, **cookie("csrf-cookie"), "Origin": "https://evil.example.com"},
    )
    assert reply.status_code == 403
    for origin in ("https://lab.example.org.evil.com", "null", "https://Lab.example.org"):
        reply = requests.put(
            f"{site.url}/hatrac/csrf{time.time_ns()}",
            headers={**NS, **cookie("csrf-cookie"), "Origin": origin},
        )
        assert reply.status_code == 403, origin
    # an origin listed in cors_allowed_origins is a browser app the site trusts
    reply = requests.put(
        f"{site.url}/hatrac/csrf{time.time_ns()}",
        headers={**NS, **cookie("csrf-cookie"), "Origin": "https://lab.example.org"},
    )
    assert reply.status_code == 201, reply.text


def test_parse_session_shapes():
    client = parse_session(session_document(GLOBUS_USER, [GLOBUS_GROUP]))
    assert client.identity == GLOBUS_USER
    assert client.attributes == frozenset({GLOBUS_GROUP})
    assert parse_session({"client": "legacy-id", "attributes": ["a", "b"]}).attributes == {"a", "b"}
    for broken in (
        [],
        {"attributes": []},
        {"client": {"display_name": "no id"}},
        {"client": {"id": ""}},
        {"client": {"id": "x"}, "attributes": [{"display_name": "no id"}]},
    ):
        with pytest.raises(IdentityServiceError):
            parse_session(broken)
