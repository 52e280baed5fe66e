"""``/authn/session``: webauthn2-compatible login sessions, on the store's own host:port.

* ``POST`` form (or JSON) ``username``, ``password`` → 201, the session JSON
  and ``Set-Cookie: webauthn=...; Path=/; HttpOnly; SameSite=Lax`` (host-only;
  ``Secure`` when the request came over HTTPS). Wrong or unknown credentials
  → one uniform 401; too many failures → 429 with Retry-After.
* ``GET`` → the session JSON of the request's credential (cookie, bearer
  token, Basic or trusted front-end), or 404 when there is none (a stale
  cookie is also 404 here, and is cleared).
* ``PUT`` → extends a session and returns the JSON; ``DELETE`` → ends it (204).

``/authn/token``: a built-in user logged in with a session or Basic lists
(``GET``) and creates (``POST``, optional JSON ``expires_in``,
``description``; the token is in the 201 answer, once) its API tokens, and
revokes one with ``DELETE /authn/token/ID``.

Also here: :func:`audit_denial`, called for every 401/403 the service answers.
"""

from __future__ import annotations

import datetime
import json
import time
from typing import TYPE_CHECKING, Optional
from urllib.parse import parse_qs

from flask import Blueprint, Response, current_app, g, request

from ..auth.accounts import (
    GROUP_PREFIX,
    Authentication,
    PasswordRejected,
    client_of,
    secret_hash,
)
from ..auth.audit import audit
from ..auth.base import client_address, is_https
from ..auth.session import same_origin, session_cookies
from ..errors import (
    BadRequest,
    Forbidden,
    HatracError,
    NotFound,
    PayloadTooLarge,
    TooManyRequests,
    Unauthenticated,
)
from .bodies import MAX_JSON_DEPTH, json_nesting

if TYPE_CHECKING:
    from ..model.directory.accounts import Token
    from . import Call

LOGIN_BODY_LIMIT = 64 * 1024


def _state():
    return current_app.extensions["hatrac"]


def _timestamp(seconds: float) -> str:
    moment = datetime.datetime.fromtimestamp(seconds, tz=datetime.timezone.utc)
    return str(moment)  # '2026-11-24 12:00:00.123456+00:00', as webauthn2 prints them


def session_json(found: Authentication, lifetime: int) -> dict:
    """The webauthn2 shape of a session: client, attributes, since, expires, ..."""
    now = time.time()
    client = found.client
    name = client.display_name or client.identity
    attributes = [{"id": client.identity, "display_name": name, "identities": [client.identity]}]
    for attribute in sorted(client.attributes):
        shown = attribute[len(GROUP_PREFIX) :] if attribute.startswith(GROUP_PREFIX) else attribute
        attributes.append({"id": attribute, "display_name": shown})
    since = found.since or now
    # credentials without an end (Basic, trusted, tokens without expiry) are
    # presented as lasting one session lifetime from now
    expires = found.expires or now + lifetime
    return {
        "client": {
            "id": client.identity,
            "display_name": name,
            "full_name": name,
            "email": None,
            "identities": [client.identity],
        },
        "attributes": attributes,
        "since": _timestamp(since),
        "expires": _timestamp(expires),
        "seconds_remaining": max(0, int(expires - now)),
        "vary_headers": ["cookie"],
        "authentication_method": found.method,
    }


def _json(value: dict, status: int = 200) -> Response:
    response = Response(json.dumps(value) + "\n", status=status, mimetype="application/json")
    response.headers["Cache-Control"] = "no-store"
    response.headers["Vary"] = "Cookie, Authorization"
    return response


def _set_cookie(response: Response, value: str, max_age: int) -> None:
    config = _state().config
    response.set_cookie(
        config.session_cookie_name,
        value,
        max_age=max_age,
        path="/",
        secure=is_https(request.environ, config.trust_forwarded_headers),
        httponly=True,
        samesite="Lax",
    )


def _clear_cookie(response: Response) -> None:
    config = _state().config
    if session_cookies(request.environ, config.session_cookie_name):
        response.delete_cookie(
            config.session_cookie_name,
            path="/",
            secure=is_https(request.environ, config.trust_forwarded_headers),
            httponly=True,
            samesite="Lax",
        )


def _current() -> Authentication | None:
    """The request's authentication; None for anonymous or a refused credential."""
    try:
        return _state().authenticator.authenticate(request.environ)
    except Unauthenticated:
        return None


def _login_fields() -> tuple[str, str]:
    if (request.content_length or 0) > LOGIN_BODY_LIMIT:
        raise PayloadTooLarge(f"A login body may be at most {LOGIN_BODY_LIMIT} bytes.")
    body = request.stream.read(LOGIN_BODY_LIMIT + 1)
    if len(body) > LOGIN_BODY_LIMIT:
        raise PayloadTooLarge(f"A login body may be at most {LOGIN_BODY_LIMIT} bytes.")
    try:
        text = body.decode("utf-8")
        if request.mimetype == "application/json":
            fields = json.loads(text) if json_nesting(text) <= MAX_JSON_DEPTH else None
            if not isinstance(fields, dict):
                raise ValueError
            username, password = fields.get("username"), fields.get("password")
        else:
            form = parse_qs(text, keep_blank_values=True, max_num_fields=20)
            username = (form.get("username") or [None])[0]
            password = (form.get("password") or [None])[0]
    except (ValueError, RecursionError):  # also UnicodeDecodeError and JSONDecodeError
        raise BadRequest(
            "The login body must be a UTF-8 form (or JSON) with username and password."
        )
    if not isinstance(username, str) or not isinstance(password, str):
        raise BadRequest("Log in with the form fields 'username' and 'password'.")
    return username, password


def login() -> Response:
    state = _state()
    config = state.config
    if "session" not in config.authn_providers:
        raise NotFound("Login sessions are not enabled on this service.")
    allowed = [origin for origin in config.cors_allowed_origins if origin != "*"]
    if not same_origin(request.environ, allowed):
        raise Forbidden("A login from another site's page is refused (CSRF).")
    username, password = _login_fields()
    address = client_address(request.environ, config.trust_forwarded_headers)
    try:
        identity = state.accounts.check_password(username, password, address)
    except PasswordRejected as rejected:
        audit(
            "login.failure",
            via="session",
            user=username[:256],
            reason=str(rejected),
            client_address=address,
        )
        raise Unauthenticated("Login failed: unknown user name or wrong password.") from None
    except TooManyRequests:
        audit("login.throttled", via="session", user=username[:256], client_address=address)
        raise
    session_id, since, expires = state.accounts.open_session(identity, address)
    audit("login.success", via="session", user=identity.name, client_address=address)
    audit("session.create", user=identity.name, client_address=address)
    found = Authentication(client_of(identity), "session", since, expires, secret_hash(session_id))
    response = _json(session_json(found, config.session_expiry_secs), status=201)
    _set_cookie(response, session_id, config.session_expiry_secs)
    return response


def get_session() -> Response:
    found = _current()
    if found is None:
        response = _json({"error": "No session: not logged in."}, status=404)
        _clear_cookie(response)
        return response
    return _json(session_json(found, _state().config.session_expiry_secs))


def extend_session() -> Response:
    state = _state()
    found = _current()
    if found is None:
        raise NotFound("No session to extend: not logged in.")
    if found.session_hash is not None:
        expires = state.accounts.extend_session(found.session_hash)
        if expires is None:
            raise NotFound("The session has ended.")
        found = Authentication(found.client, found.method, found.since, expires, found.session_hash)
        audit(
            "session.extend",
            user=found.client.identity,
            client_address=client_address(request.environ, state.config.trust_forwarded_headers),
        )
    response = _json(session_json(found, state.config.session_expiry_secs))
    cookies = session_cookies(request.environ, state.config.session_cookie_name)
    if found.session_hash is not None and cookies and found.method == "session":
        for cookie in cookies:  # the one of this session
            if secret_hash(cookie) == found.session_hash:
                _set_cookie(response, cookie, state.config.session_expiry_secs)
    return response


def end_session() -> Response:
    state = _state()
    found = _current()
    if found is None or found.session_hash is None:
        response = _json({"error": "No session: not logged in."}, status=404)
        _clear_cookie(response)
        return response
    state.accounts.end_session(found.session_hash)
    audit(
        "session.end",
        user=found.client.identity,
        client_address=client_address(request.environ, state.config.trust_forwarded_headers),
    )
    response = Response(status=204)
    _clear_cookie(response)
    return response


def session_resource() -> Response:
    handlers = {
        "GET": get_session,
        "HEAD": get_session,
        "POST": login,
        "PUT": extend_session,
        "DELETE": end_session,
    }
    return handlers[request.method]()


def _token_owner() -> Authentication:
    """The built-in user managing its tokens: logged in by session or Basic."""
    found = _current()
    if found is None:
        raise Unauthenticated("Log in (session or Basic) to manage your API tokens.")
    if found.method not in ("session", "basic"):
        raise Forbidden(
            "API tokens are managed by built-in accounts logged in with a session or Basic "
            f"(this request authenticated by {found.method})."
        )
    return found


def _token_json(token: Token) -> dict:
    return {
        "id": token.id,
        "description": token.description,
        "created": _timestamp(token.created),
        "expires": _timestamp(token.expires) if token.expires else None,
        "revoked": token.revoked,
    }


def create_token() -> Response:
    state = _state()
    found = _token_owner()
    body = request.stream.read(LOGIN_BODY_LIMIT + 1) if request.content_length != 0 else b""
    if len(body) > LOGIN_BODY_LIMIT:
        raise PayloadTooLarge(f"A token request may be at most {LOGIN_BODY_LIMIT} bytes.")
    try:
        text = body.decode("utf-8")
        if json_nesting(text) > MAX_JSON_DEPTH:
            raise ValueError
        fields = json.loads(text) if text.strip() else {}
        if not isinstance(fields, dict):
            raise ValueError
    except (ValueError, RecursionError):
        raise BadRequest(
            'The body must be empty or JSON: {"expires_in": SECONDS, "description": TEXT}.'
        ) from None
    expires_in = fields.get("expires_in")
    description = fields.get("description")
    if expires_in is not None and (isinstance(expires_in, bool) or not isinstance(expires_in, int)):
        raise BadRequest(
            f"expires_in must be a whole number of seconds, not {json.dumps(expires_in)[:40]}."
        )
    if description is not None and (not isinstance(description, str) or len(description) > 200):
        raise BadRequest("description must be a string of at most 200 characters.")
    user = found.client.identity
    token_id, value = state.accounts.issue_token(user, expires_in, description)
    audit(
        "token.issue",
        user=user,
        token_id=token_id,
        client_address=client_address(request.environ, state.config.trust_forwarded_headers),
    )
    token = next(t for t in state.accounts.tokens(user) if t.id == token_id)
    return _json({**_token_json(token), "token": value}, status=201)


def list_tokens() -> Response:
    found = _token_owner()
    tokens = _state().accounts.tokens(found.client.identity)
    return _json({"tokens": [_token_json(t) for t in tokens]})


def revoke_token(token_id: int) -> Response:
    state = _state()
    found = _token_owner()
    if not state.accounts.revoke_token(token_id, found.client.identity):
        raise NotFound(f"You have no live API token with id {token_id}.")
    audit(
        "token.revoke",
        user=found.client.identity,
        token_id=token_id,
        client_address=client_address(request.environ, state.config.trust_forwarded_headers),
    )
    return Response(status=204)


def token_collection() -> Response:
    return create_token() if request.method == "POST" else list_tokens()


def audit_denial(error: HatracError) -> None:
    """Audit one 401/403 answer: who, what, from where."""
    state = current_app.extensions.get("hatrac")
    trust = state.config.trust_forwarded_headers if state is not None else False
    client = g.get("client")
    audit(
        "access.denied",
        status=error.status,
        method=request.method,
        resource=request.path,
        user=client.identity if client is not None else None,
        client_address=client_address(request.environ, trust),
        reason=error.message[:200],
    )


def _render(error: HatracError) -> Response:
    from . import handle_hatrac_error

    return handle_hatrac_error(error)


def create_authn_blueprint() -> Blueprint:
    """The blueprint of ``/authn/session`` (independent of the service prefix)."""
    blueprint = Blueprint("hatrac_authn", __name__)
    blueprint.add_url_rule(
        "/authn/session",
        "session",
        session_resource,
        methods=["GET", "HEAD", "POST", "PUT", "DELETE"],
        strict_slashes=False,
    )
    blueprint.add_url_rule(
        "/authn/token",
        "tokens",
        token_collection,
        methods=["GET", "HEAD", "POST"],
        strict_slashes=False,
    )
    blueprint.add_url_rule("/authn/token/<int:token_id>", "token", revoke_token, methods=["DELETE"])
    blueprint.register_error_handler(HatracError, _render)
    return blueprint


def audit_acl_change(call: Call, access: str, role: Optional[str], roles: list) -> None:
    """Audit one ACL change (the resource, the access mode, the new list, who)."""
    resource = call.path.name + (f":{call.path.version}" if call.path.version else "")
    audit(
        "acl.change",
        method=call.method,
        resource=resource,
        access=access,
        role=role,
        roles=roles,
        user=call.client.identity,
        client_address=client_address(request.environ, call.config.trust_forwarded_headers),
    )
