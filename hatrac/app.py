"""Building the service: the application factory and ``init_app`` for host apps.

``create_app(config)`` returns a complete Flask application;
``init_app(app, config)`` mounts Hatrac inside an existing Flask application
(the blueprint plus the per-app state it needs). Nothing is read or opened at
import time.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from typing import Optional, Union

from flask import Flask, Response, g, request
from werkzeug.exceptions import HTTPException

from . import __version__
from .auth import build_authenticator
from .config import Config, ConfigError, StartupError, load_config
from .errors import DatabaseUnusable, HatracError, InternalError, ServiceUnavailable
from .logs import configure_default_logging, log_startup
from .model.client import Client
from .model.credentials import DeferredClient
from .model.directory import directory_from_config
from .model.service import Hatrac
from .model.storage import open_storage
from .urls import PathParser

# the environ key of a request's refused credential (see authenticate_deferred)
_REFUSED = "hatrac.refused"

logger = logging.getLogger("hatrac")

# how often a service whose database was down at start tries to set it up again
INITIALIZE_RETRY_SECS = 1


class HatracState:
    """Everything one Hatrac instance needs per application: config, model, auth."""

    def __init__(self, config: Config, wait_for_database: bool = False) -> None:
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
        except Exception as error:
            raise StartupError(database_failure(config, error)) from error
        self.initialized = False
        self._initializing = threading.Lock()
        self._next_attempt = 0.0
        self._last_failure: Optional[BaseException] = None
        try:
            self._initialize()
        except ServiceUnavailable as error:
            if not wait_for_database or isinstance(error, DatabaseUnusable):
                raise StartupError(database_failure(config, error)) from error
            # a server process that starts (or is respawned) while the database
            # is down keeps running and answers 503 until it is back: failing
            # here would make gunicorn stop the whole service
            logger.warning(
                "the database is not reachable yet (%s); answering 503 until it is",
                startup_reason(error),
            )
        except Exception as error:
            raise StartupError(database_failure(config, error)) from error
        self.authenticator = build_authenticator(config, self.directory)
        self.accounts = self.authenticator.accounts
        # the web interface's page hook (hatrac.web), None when it is turned off
        self.pages = None

    def _initialize(self) -> None:
        """Create or upgrade the schema and the root; raises ServiceUnavailable."""
        try:
            self.directory.initialize(self.config.root_acls)
        except ServiceUnavailable as error:
            self._next_attempt = time.monotonic() + INITIALIZE_RETRY_SECS
            self._last_failure = error
            raise
        self.initialized = True

    def require_database(self) -> None:
        """Make sure the database was set up; a 503 while it cannot be.

        Only a service that started while its database was down does any work
        here: one request at a time, at most once per ``INITIALIZE_RETRY_SECS``,
        tries again; the others answer 503 at once instead of queueing.
        """
        if self.initialized:
            return
        waiting = ServiceUnavailable(
            "The database is not reachable yet; please retry.",
            {"Retry-After": str(INITIALIZE_RETRY_SECS)},
        )
        if time.monotonic() < self._next_attempt or not self._initializing.acquire(blocking=False):
            raise waiting from self._last_failure
        try:
            if not self.initialized:
                self._initialize()
                logger.info("the database is reachable; the service is ready")
        finally:
            self._initializing.release()

    def authenticate(self, environ: dict) -> Client:
        return self.authenticator.identify(environ)

    def authenticate_deferred(self, environ: dict) -> Union[Client, DeferredClient]:
        """The client, or a DeferredClient looked up with the first name resolution.

        A credential refused once is refused again without asking (or auditing)
        twice: a fast path that hands the request to Flask leaves it noted.
        """
        refused = environ.get(_REFUSED)
        if refused is not None:
            raise refused
        try:
            return self.authenticator.identify_deferred(environ)
        except HatracError as error:
            environ[_REFUSED] = error
            raise

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
    from .observability import request_id

    g.request_id = request_id(request.environ)


def _finish_request(response: Response) -> Response:
    response.headers["X-Request-Id"] = g.get("request_id", "")
    if response.status_code in (204, 304):
        # no content, so no media type: not Flask's default text/html
        response.headers.pop("Content-Type", None)
    return response


# what answers while the database is unreachable (ready says why it is not ready)
_WITHOUT_DATABASE = frozenset({"hatrac_live", "hatrac_ready", "hatrac_metrics"})


def init_app(app: Flask, config: Union[None, str, dict, Config] = None) -> HatracState:
    """Mount Hatrac inside ``app``: state, blueprint and error rendering."""
    from .login import create_login_blueprint
    from .observability import init_observability
    from .rest import create_blueprint
    from .rest.authn import create_authn_blueprint
    from .rest.bodies import BodyGuard
    from .rest.content_safety import check_download_request
    from .rest.cors import init_cors

    state = HatracState(load_config(config), wait_for_database=True)
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

    @app.before_request
    def require_database() -> None:
        if not state.initialized and request.endpoint not in _WITHOUT_DATABASE:
            state.require_database()

    app.after_request(_finish_request)
    init_cors(app)
    app.before_request(lambda: check_download_request(state.config))
    if not isinstance(app.wsgi_app, BodyGuard):
        # outermost: bodies the server cannot read are 400s, refused ones drained
        app.wsgi_app = BodyGuard(app.wsgi_app)  # type: ignore[method-assign]

    @app.errorhandler(500)
    def internal_error(error: HTTPException) -> Response:  # an unexpected bug: log it, say little
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
    from .rest.fast import FastReads

    # plain reads of small objects are answered before Flask (rest/fast.py)
    observer = app.extensions["hatrac.observability"]
    app.wsgi_app = FastReads(state, observer, app.wsgi_app, app.url_map.iter_rules())  # type: ignore[method-assign]
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
