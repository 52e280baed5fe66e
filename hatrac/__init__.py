"""Hatrac: a simple object store for web-based, data-oriented collaboration.

``create_app(config)`` builds the WSGI application (``gunicorn
'hatrac:create_app()'`` serves it); ``init_app(app, config)`` mounts the
service inside another Flask application.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Union

if TYPE_CHECKING:  # the package imports nothing until it is asked to build the app
    from flask import Flask

    from .app import HatracState
    from .config import Config

__version__ = "0.1.0"


def create_app(config: Union[None, str, dict, Config] = None) -> Flask:
    """Build the Flask application (see :func:`hatrac.app.create_app`)."""
    from .app import create_app as factory

    return factory(config)


def init_app(app: Flask, config: Union[None, str, dict, Config] = None) -> HatracState:
    """Mount Hatrac in an existing Flask app (see :func:`hatrac.app.init_app`)."""
    from .app import init_app as mount

    return mount(app, config)


__all__ = ["__version__", "create_app", "init_app"]
