"""Building the service: the application factory and ``init_app`` for host apps.

``create_app(config)`` returns a complete Flask application;
``init_app(app, config)`` mounts Hatrac inside an existing Flask application
(the blueprint plus the per-app state it needs). Nothing is read or opened at
import time.
"""

from __future__ import annotations

import logging
import os
import random
import sys
from typing import Union

from flask import Flask, Response, g, request
from werkzeug.exceptions import HTTPException

from . import __version__
from .auth import build_authenticator
from .config import Config, ConfigError, StartupError, load_config
from .errors import HatracError, InternalError, ServiceUnavailable
from .logs import configure_default_logging, log_startup
from .model.client import Client
from .model.directory import directory_from_config
from .model.service import Hatrac
from .model.storage import open_storage
from .urls import PathParser

logger = logging.getLogger("hatrac")


class HatracState:
    """Everything one Hatrac instance needs per application: config, model, auth."""

    def __init__(self, config: Config):
        self.config = config
        self.parser = PathParser(
            config.allowed_url_char_class,
            config.max_segment_length,
            config.max_name_length,
            legacy_names=config.legacy_names,
        )
        try:
            self.storage = open_storage(config)
            self.storage.check()
        except Exception as error:
            raise StartupError(f"storage: {startup_reason(error)}") from error
        try:
            self.directory = directory_from_config(config)
            self.model = Hatrac(config, self.directory, self.storage)
            self.directory.initialize(config.root_acls)
        except Exception as error:
            raise StartupError(database_failure(config, error)) from error
        self.authenticator = build_authenticator(config, self.directory)
        self.accounts = self.authenticator.accounts
        # the web interface's page hook (hatrac.web), None when it is turned off
        self.pages = None

    def authenticate(self, environ: dict) -> Client:
        return self.authenticator.identify(environ)

    def authenticate_deferred(self, environ: dict):
        """The client, or a DeferredClient looked up with the first name resolution."""
        return self.authenticator.identify_deferred(environ)

    def close(self) -> None:
        self.accounts.close()
        self.directory.close()


def startup_reason(error: BaseException) -> str:
    """One line saying why a startup step failed (the root cause included)."""
    text = str(getattr(error, "message", None) or error).strip()
    cause = error.__cause__
    if cause is not None and str(cause).strip() and str(cause).strip() not in text:
        text = f"{text} ({str(cause).strip()})"
    return " ".join(text.split())


def redacted_dsn(dsn: str) -> str:
    """The DSN without its password (key=value or URL form)."""
    import re

    dsn = re.sub(r"password\s*=\s*\S+", "password=***", dsn)
    return re.sub(r"(://[^:/@]+):[^@]*@", r"\1:***@", dsn)


def database_failure(config: Config, error: BaseException) -> str:
    """The one-line startup error for a database that cannot be opened or set up."""
    dsn = redacted_dsn(config.database_dsn)
    return (
        f"database {dsn!r} cannot be opened: {startup_reason(error)}; check database_dsn in the "
        "config, that the database server is running, and that the service account may use it"
    )


def _render_error(error: HatracError) -> Response:
    from .rest import handle_hatrac_error

    return handle_hatrac_error(error)


def _render_http_exception(error: HTTPException) -> Response:
    wrapped = HatracError(error.description)
    wrapped.status = error.code or 500
    wrapped.title = error.name
    if error.code == 405 and error.valid_methods:  # type: ignore[attr-defined]
        wrapped.headers["Allow"] = ", ".join(error.valid_methods)  # type: ignore[attr-defined]
    return _render_error(wrapped)


def _start_request() -> None:
    incoming = request.environ.get("HTTP_X_REQUEST_ID", "")
    if incoming and len(incoming) <= 64 and incoming.replace("-", "").isalnum():
        g.request_id = incoming
    else:
        # an id, not a secret: the process's PRNG (reseeded in each forked worker)
        # spares a getrandom() system call per request
        g.request_id = f"{random.getrandbits(64):016x}"


def _finish_request(response: Response) -> Response:
    response.headers["X-Request-Id"] = g.get("request_id", "")
    return response


def init_app(app: Flask, config: Union[None, str, dict, Config] = None) -> HatracState:
    """Mount Hatrac inside ``app``: state, blueprint and error rendering."""
    from .login import create_login_blueprint
    from .observability import init_observability
    from .rest import create_blueprint
    from .rest.authn import create_authn_blueprint
    from .rest.bodies import BodyGuard
    from .rest.content_safety import check_download_request
    from .rest.cors import init_cors

    state = HatracState(load_config(config))
    app.extensions["hatrac"] = state
    init_observability(app, state)
    app.register_blueprint(create_blueprint(state.config.service_prefix))
    app.register_blueprint(create_authn_blueprint())
    app.register_blueprint(create_login_blueprint())
    from .web import init_web

    init_web(app, state)
    app.register_error_handler(HatracError, _render_error)
    app.register_error_handler(HTTPException, _render_http_exception)
    app.before_request(_start_request)
    app.after_request(_finish_request)
    init_cors(app)
    app.before_request(lambda: check_download_request(state.config))
    if not isinstance(app.wsgi_app, BodyGuard):
        # outermost: bodies the server cannot read are 400s, refused ones drained
        app.wsgi_app = BodyGuard(app.wsgi_app)  # type: ignore[method-assign]

    @app.errorhandler(500)
    def internal_error(error) -> Response:  # an unexpected bug: log it, say little
        original = getattr(error, "original_exception", error)
        database = getattr(state.directory, "database", None)
        if database is not None and database.is_connection_error(original):
            # a lost database connection outside the directory's retries: transient
            logger.warning(
                "request %s: database connection lost: %s", g.get("request_id"), original
            )
            return _render_error(
                ServiceUnavailable("The database connection was lost; please retry.")
            )
        logger.error("request %s failed", g.get("request_id"), exc_info=original)
        return _render_error(
            InternalError(
                f"An internal error occurred; quote request id {g.get('request_id')} "
                "when reporting it."
            )
        )

    return state


def create_app(config: Union[None, str, dict, Config] = None) -> Flask:
    """The Hatrac application; ``config`` is a dict, a file path, or None (environment)."""
    app = Flask("hatrac")
    app.url_map.strict_slashes = False
    try:
        state = init_app(app, config)
    except ConfigError as error:
        if "gunicorn.arbiter" in sys.modules:
            # gunicorn prints an AppImportError as one line and stops (no
            # traceback, no respawning of workers that cannot start)
            from gunicorn.errors import AppImportError

            raise AppImportError(f"hatrac: cannot start: {' '.join(str(error).split())}") from None
        raise
    configure_default_logging(state.config.log_level)
    log_startup(
        "hatrac application ready",
        version=__version__,
        service_prefix=state.config.service_prefix,
        database=redacted_dsn(state.config.database_dsn),
        storage=state.config.storage_backend,
        metrics_multiprocess=bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR")),
    )
    return app
