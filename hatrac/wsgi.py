"""The WSGI application for Apache mod_wsgi (loaded by ``hatrac.wsgi``).

mod_wsgi calls the ``application`` object of the script that a
``WSGIScriptAlias`` names. Two things differ from gunicorn:

* **Where the config is.** Apache's ``SetEnv`` reaches each request's
  environ, not the process environment, and ``WSGIDaemonProcess`` has no
  option for environment variables. So the config file is, in order: the
  ``HATRAC_CONFIG`` variable of the process environment, else
  ``HATRAC_CONFIG`` in the first request's environ (``SetEnv HATRAC_CONFIG
  /etc/hatrac/hatrac_config.json`` in the Apache config), else
  ``hatrac_config.json`` in the home directory of the account the daemon
  process runs as (``user=`` of ``WSGIDaemonProcess``, as upstream Hatrac
  does), else the built-in defaults (which then need a writable working
  directory; set ``home=`` of ``WSGIDaemonProcess``).
* **Mount points.** The application routes on full paths (``/hatrac/...``,
  ``/authn/session``, ``/hatrac-health/...``) and parses the raw
  ``REQUEST_URI``. Each ``WSGIScriptAlias /X`` strips ``/X`` into
  ``SCRIPT_NAME``; :class:`FullPathApplication` folds it back into
  ``PATH_INFO``, so the same script can be aliased at every path the
  service answers, and all aliases share one application per process
  (``WSGIApplicationGroup %{GLOBAL}``).

The application is built on the first request. If the config is missing or
unusable, the reason is written as one line to the Apache error log (a
JSON object of ``"kind": "error"``, :mod:`hatrac.logs`),
requests answer 503 naming the log, and the build is retried at most every
few seconds, so fixing the file needs no restart.
"""

from __future__ import annotations

import os
import pwd
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any, Callable, Iterable, Optional

RETRY_SECONDS = 5.0


def daemon_home_config() -> Optional[Path]:
    """``hatrac_config.json`` in the home directory of the process's account, if present."""
    try:
        home = Path(pwd.getpwuid(os.geteuid()).pw_dir)
    except KeyError:
        return None
    candidate = home / "hatrac_config.json"
    return candidate if candidate.exists() else None


def config_source(environ: dict) -> Optional[str]:
    """Which config file to load for this process (None: the built-in defaults)."""
    for value in (os.environ.get("HATRAC_CONFIG"), environ.get("HATRAC_CONFIG")):
        if value:
            return value
    home = daemon_home_config()
    return str(home) if home is not None else None


class FullPathApplication:
    """Builds Hatrac lazily and hands it requests with SCRIPT_NAME folded into PATH_INFO."""

    def __init__(self, factory: Optional[Callable[[Optional[str]], Any]] = None) -> None:
        self._factory = factory or _create_app
        self._app: Any = None
        self._lock = threading.Lock()
        self._failure: Optional[str] = None
        self._failed_at = 0.0

    def _load(self, environ: dict) -> Any:
        with self._lock:
            if self._app is not None:
                return self._app
            if self._failure and time.monotonic() - self._failed_at < RETRY_SECONDS:
                return None
            source = config_source(environ)
            try:
                self._app = self._factory(source)
                self._failure = None
            except Exception as error:
                from .config import ConfigError
                from .logs import json_line

                self._failure = f"hatrac: cannot start: {' '.join(str(error).split())}"
                self._failed_at = time.monotonic()
                errors = environ.get("wsgi.errors") or sys.stderr
                fields = {"level": "ERROR", "logger": "hatrac.wsgi", "pid": os.getpid()}
                fields["message"] = self._failure
                if not isinstance(error, ConfigError):  # a bug, not a setting: show where
                    fields["exception"] = traceback.format_exc()
                print(json_line("error", fields), file=errors, flush=True)
            return self._app

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        app = self._app or self._load(environ)
        if app is None:
            body = (
                b"Hatrac cannot start because of a configuration problem; the web server's "
                b"error log names it.\n"
            )
            start_response(
                "503 Service Unavailable",
                [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))],
            )
            return [body]
        script_name = environ.get("SCRIPT_NAME", "")
        if script_name:
            environ["PATH_INFO"] = script_name + environ.get("PATH_INFO", "")
            environ["SCRIPT_NAME"] = ""
        return app(environ, start_response)


def _create_app(source: Optional[str]):
    from .app import create_app

    return create_app(source)


application = FullPathApplication()
