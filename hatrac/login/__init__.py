"""The browser's front door: a login page, a logout page and webauthn2's ``/authn/preauth``.

* ``GET /authn/login?referrer=URL`` serves ``static/login.html``: a form
  whose script (``static/login.js``) posts the user name and password to
  ``/authn/session`` and then returns to ``referrer``. ``GET /authn/logout``
  serves the same page in its logout form (``DELETE /authn/session``).
* ``GET /authn/preauth`` tells a browser app how to log in, in webauthn2's
  shape (the form's URL, method and fields, and the login page).
* ``GET /authn/static/FILE`` serves the page's CSS and script.

The referrer must be a URL of the service's own origin (:func:`safe_referrer`),
so the page cannot be used as an open redirect; the script checks it again.
The pages have no inline script or style and a strict Content-Security-Policy,
so a web interface can restyle them by replacing the static files.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Optional
from urllib.parse import quote, urlsplit

from flask import Blueprint, Response, current_app, request

from ..errors import BadRequest, NotFound

if TYPE_CHECKING:
    from ..config import Config

STATIC = Path(__file__).parent / "static"
STATIC_TYPES = {".css": "text/css", ".js": "text/javascript", ".html": "text/html"}
LOGIN_PATH = "/authn/login"
LOGOUT_PATH = "/authn/logout"
# nothing but our own files; no framing, no form posts elsewhere, no referrer leaks
PAGE_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
MAX_REFERRER = 4096


def own_origin() -> str:
    """The origin the browser used to reach us (scheme from the request, host from Host)."""
    from ..auth.base import is_https

    config = current_app.extensions["hatrac"].config
    scheme = "https" if is_https(request.environ, config.trust_forwarded_headers) else "http"
    return f"{scheme}://{request.host.lower()}"


def safe_referrer(value: Optional[str], origin: str) -> Optional[str]:
    """``value`` as a path on our own origin, or None if it points anywhere else.

    Accepted: a path beginning with a single ``/`` (``/hatrac/ns?x=1``), or an
    absolute URL of exactly our origin, which is reduced to its path. Refused:
    other hosts, schemes (``javascript:``, ``data:``), scheme-relative
    ``//host`` and ``/\\host`` forms, backslashes, control characters, user
    information and over-long values.
    """
    if not value or len(value) > MAX_REFERRER:
        return None
    if "\\" in value or any(ord(c) < 0x21 or ord(c) == 0x7F for c in value):
        return None
    try:
        parts = urlsplit(value)
    except ValueError:
        return None
    if parts.scheme or parts.netloc:
        if f"{parts.scheme}://{parts.netloc}" != origin or "@" in parts.netloc:
            return None
    elif not value.startswith("/") or value.startswith("//"):
        return None
    path = parts.path or "/"
    if path.startswith("//"):
        return None
    return path + (f"?{parts.query}" if parts.query else "")


def login_url(referrer: str) -> str:
    """The login page that returns to ``referrer`` (a path of this origin)."""
    return f"{LOGIN_PATH}?referrer={quote(referrer, safe='')}"


def challenge(config: Config, environ: dict, html: bool = False) -> str:
    """The ``WWW-Authenticate`` value of a 401 (RFC 9110 asks for one).

    ``Basic`` only where Basic is enabled, the request is not a script's
    (``X-Requested-With``, or a browser's ``Sec-Fetch-Mode`` other than
    ``navigate``) and does not ask for an HTML page (``html``): a
    browser prompts for any Basic challenge, and its prompt would hide the
    401 page's link to the login page (and a Basic login cannot be ended).
    ``Bearer`` where tokens are accepted; else a ``Session`` challenge that
    names the login resource.
    """
    providers = config.authn_providers
    challenges = []
    # a browser marks its scripts' requests (fetch, XHR) with Sec-Fetch-Mode
    script = bool(environ.get("HTTP_X_REQUESTED_WITH")) or (
        environ.get("HTTP_SEC_FETCH_MODE", "navigate") != "navigate"
    )
    if "basic" in providers and not script and not html:
        challenges.append('Basic realm="hatrac", charset="UTF-8"')
    if "token" in providers or "jwt" in providers:
        challenges.append('Bearer realm="hatrac"')
    if not challenges:
        challenges.append('Session realm="hatrac", login="/authn/session"')
    return ", ".join(challenges)


def login_link(config: Config, environ: dict) -> Optional[str]:
    """The login page returning to this request's URL, where sessions are enabled."""
    if "session" not in config.authn_providers:
        return None
    if environ.get("REQUEST_METHOD") not in ("GET", "HEAD"):
        return login_url(config.service_prefix + "/")
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI") or environ.get("PATH_INFO", "/")
    if "://" in raw.split("?", 1)[0]:
        raw = "/" + raw.split("://", 1)[1].split("/", 1)[-1]
    back = safe_referrer(raw, "") or config.service_prefix + "/"
    return login_url(back)


def _sessions_enabled() -> bool:
    return "session" in current_app.extensions["hatrac"].config.authn_providers


def _referrer_argument() -> str:
    """The request's ``referrer`` made safe; the service root when absent; 400 if foreign."""
    prefix = current_app.extensions["hatrac"].config.service_prefix
    given = request.args.get("referrer")
    if given is None or given == "":
        return prefix + "/"
    safe = safe_referrer(given, own_origin())
    if safe is None:
        raise BadRequest(
            "The referrer must be a URL of this service (a path such as /hatrac/ or "
            f"{own_origin()}/...); the login page does not send you to other sites."
        )
    return safe


def _page(name: str) -> Response:
    response = Response((STATIC / name).read_bytes(), mimetype="text/html")
    response.headers["Content-Security-Policy"] = PAGE_POLICY
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def _with_referrer(page: str) -> Optional[Response]:
    """Without a referrer, send the browser to the page that names the service root, so
    that the page's script returns there whatever the service prefix is."""
    if request.args.get("referrer"):
        return None
    back = _referrer_argument()
    return Response(status=303, headers={"Location": f"{page}?referrer={quote(back, safe='')}"})


def login_page() -> Response:
    if not _sessions_enabled():
        raise NotFound("Login sessions are not enabled on this service.")
    _referrer_argument()  # refuse a foreign referrer here too, with the reason
    return _with_referrer(LOGIN_PATH) or _page("login.html")


def logout_page() -> Response:
    _referrer_argument()
    return _with_referrer(LOGOUT_PATH) or _page("logout.html")


def preauth() -> Response:
    """How a browser app logs in here, in the shape webauthn2's ``/authn/preauth`` has."""
    if not _sessions_enabled():
        raise NotFound("Login sessions are not enabled on this service.")
    config = current_app.extensions["hatrac"].config
    referrer = _referrer_argument()
    page = login_url(referrer)
    if request.args.get("do_redirect", "").lower() == "true":
        return Response(status=303, headers={"Location": page})
    body = {
        "authentication_type": "database",
        "cookie": config.session_cookie_name,
        "login_form": {
            "method": "POST",
            "action": "/authn/session",
            "input_fields": ["username", "password"],
        },
        "redirect_url": page,
    }
    response = Response(json.dumps(body) + "\n", mimetype="application/json")
    response.headers["Cache-Control"] = "no-store"
    return response


def static_file(filename: str) -> Response:
    path = STATIC / filename
    kind = STATIC_TYPES.get(path.suffix)
    if kind is None or path.suffix == ".html" or "/" in filename or not path.is_file():
        raise NotFound(f"No file {filename} here.")
    response = Response(path.read_bytes(), mimetype=kind)
    response.headers["Cache-Control"] = "public, max-age=300"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def create_login_blueprint() -> Blueprint:
    """The blueprint of the login and logout pages, ``/authn/preauth`` and their files."""
    blueprint = Blueprint("hatrac_login", __name__)
    blueprint.add_url_rule(LOGIN_PATH, "login", login_page, methods=["GET", "HEAD"])
    blueprint.add_url_rule(LOGOUT_PATH, "logout", logout_page, methods=["GET", "HEAD"])
    blueprint.add_url_rule("/authn/preauth", "preauth", preauth, methods=["GET", "HEAD"])
    blueprint.add_url_rule(
        "/authn/static/<filename>", "static_file", static_file, methods=["GET", "HEAD"]
    )
    return blueprint
