"""Hatrac: a simple object store for web-based, data-oriented collaboration.

``create_app(config)`` builds the WSGI application (``gunicorn
'hatrac:create_app()'`` serves it); ``init_app(app, config)`` mounts the
service inside another Flask application.
"""

from __future__ import annotations

__version__ = "0.1.0"


def create_app(config=None):
    """Build the Flask application (see :func:`hatrac.app.create_app`)."""
    from .app import create_app as factory

    return factory(config)


def init_app(app, config=None):
    """Mount Hatrac in an existing Flask app (see :func:`hatrac.app.init_app`)."""
    from .app import init_app as mount

    return mount(app, config)


__all__ = ["__version__", "create_app", "init_app"]
