"""The minimal Flask app whose request rate is the ceiling of small requests.

Served by gunicorn with exactly the settings the service uses
(``hatrac.gunicorn_conf``): ``GET /small`` returns 1 KiB. Whatever Hatrac adds
on top of this (routing, auth, database, storage) is what the ratio measures.
"""

from flask import Flask, Response

BODY = b"x" * 1024


def create_app() -> Flask:
    """A Flask app with one route returning 1 KiB."""
    app = Flask("minimal")

    @app.get("/small")
    def small() -> Response:
        return Response(BODY, mimetype="application/octet-stream")

    return app
