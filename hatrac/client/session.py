"""Credentials and remotes: ``login``, ``logout``, ``whoami``, ``remote``.

``login`` posts the user name and password (prompted, or one line from
stdin with ``--password-stdin``) to the server's ``/authn/session`` and keeps
the session cookie; ``login --token`` keeps an API token instead. Both go
to ``credentials.json`` (mode 600). ``HATRAC_TOKEN``, when set, is used in
preference to anything stored.
"""

from __future__ import annotations

import getpass
import sys
from typing import Optional

from . import settings
from .http import EXIT_DENIED, EXIT_USAGE, Connection, HatracError
from .output import Output


def _read_secret(prompt: str, from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    if not sys.stdin.isatty():
        raise HatracError(
            f"no terminal to ask for the {prompt}; use --password-stdin", exit_code=EXIT_USAGE
        )
    return getpass.getpass(prompt.capitalize() + ": ")


def login(
    conn: Connection, output: Output, user: Optional[str], password_stdin: bool, token: bool
) -> int:
    origin = conn.origin
    if token:
        secret = _read_secret("token", password_stdin)
        conn.session.headers["Authorization"] = "Bearer " + secret
        conn.credential_source = "the token given"
        session = conn.request("GET", "/authn/session", ok=(200, 404))
        if session.status_code == 404:
            raise HatracError(f"{origin} does not know this token", 401, exit_code=EXIT_DENIED)
        settings.store_credential(origin, {"token": secret})
        return _report(output, origin, session.json(), "token stored")
    if not user:
        if not sys.stdin.isatty() or password_stdin:
            raise HatracError("give the user name with --user", exit_code=EXIT_USAGE)
        user = input("User name: ")
    password = _read_secret("password", password_stdin)
    try:
        reply = conn.request(
            "POST", "/authn/session", data={"username": user, "password": password}, ok=(200, 201)
        )
    except HatracError as error:
        if error.status == 401:
            error.message = f"login to {origin} as {user} failed: " + error.message.split(";")[0]
        raise
    cookies = reply.cookies.get_dict()
    if not cookies:
        raise HatracError(f"{origin} answered the login without a session cookie")
    name = "webauthn" if "webauthn" in cookies else sorted(cookies)[0]
    settings.store_credential(origin, {"cookie": f"{name}={cookies[name]}", "user": user})
    try:
        body = reply.json()
    except ValueError:
        body = {"client": {"id": user}}
    return _report(output, origin, body, "logged in")


def _report(output: Output, origin: str, session: dict, what: str) -> int:
    client = session.get("client") or {}
    identity = client.get("id") if isinstance(client, dict) else client
    output.result(
        {
            "action": "login",
            "server": origin,
            "client": identity,
            "expires": session.get("expires"),
        },
        f"{what}: {identity} on {origin}"
        + (f" until {session['expires']}" if session.get("expires") else ""),
    )
    return 0


def logout(conn: Connection, output: Output) -> int:
    stored = settings.credential_for(conn.origin)
    if stored and stored.get("cookie"):
        conn.request("DELETE", "/authn/session", ok=(200, 204, 401, 404))
        conn.cookie = None
    settings.store_credential(conn.origin, None)
    output.result({"action": "logout", "server": conn.origin}, f"logged out of {conn.origin}")
    return 0


def whoami(conn: Connection, output: Output) -> int:
    response = conn.request(
        "GET", "/authn/session", headers={"Accept": "application/json"}, ok=(200, 404)
    )
    if response.status_code == 404:
        if conn.credential_source:
            raise HatracError(
                f"{conn.origin} no longer accepts {conn.credential_source} (expired or logged "
                "out); log in again with 'hatrac-client login'",
                401,
                exit_code=EXIT_DENIED,
            )
        output.result({"server": conn.origin, "client": None}, "anonymous (not logged in)")
        return 0
    session = response.json()
    client = session.get("client") or {}
    attributes = [a.get("id") for a in session.get("attributes", []) if isinstance(a, dict)]
    record = {
        "server": conn.origin,
        "client": client.get("id"),
        "display_name": client.get("display_name"),
        "attributes": attributes,
        "expires": session.get("expires"),
        "seconds_remaining": session.get("seconds_remaining"),
    }
    text = f"{client.get('id')} on {conn.origin}"
    if attributes:
        text += "\nattributes: " + ", ".join(str(a) for a in attributes)
    if session.get("expires"):
        text += f"\nexpires: {session['expires']}"
    output.result(record, text)
    return 0


def remote(action: str, name: Optional[str], url: Optional[str], output: Output) -> int:
    remotes = settings.load_remotes()
    if action == "ls":
        for known, base in sorted(remotes.items()):
            output.result({"name": known, "url": base}, f"{known} = {base}")
        return 0
    if not name:
        raise HatracError("give the remote's name", exit_code=EXIT_USAGE)
    if action == "add":
        if not settings.valid_remote_name(name):
            raise HatracError(f"{name!r} is not a valid remote name", exit_code=EXIT_USAGE)
        if not url or not url.startswith(("http://", "https://")):
            raise HatracError("give the remote's URL (http(s)://host/hatrac)", exit_code=EXIT_USAGE)
        remotes[name] = url.rstrip("/")
    elif name in remotes:
        del remotes[name]
    else:
        raise HatracError(f"there is no remote {name!r}", exit_code=EXIT_USAGE)
    settings.save_remotes(remotes)
    output.result({"action": "remote " + action, "name": name, "url": url}, None)
    return 0
