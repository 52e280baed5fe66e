"""Sending one request both through the application (its fast path first,
hatrac/rest/fast.py) and straight to the Flask path behind it, to compare."""

from __future__ import annotations

from werkzeug.test import Client


def both(app, method: str, path: str, headers=None, **kwargs):
    """(answer through the app, answer of the Flask path alone, fast path taken?)."""
    fast = app.wsgi_app
    flask = fast.flask
    handed = []
    # the test client's defaults, for the plain werkzeug client as well
    kwargs["environ_base"] = {"REMOTE_ADDR": "127.0.0.1", **kwargs.get("environ_base", {})}

    def counting(environ, start_response):
        handed.append(environ["REQUEST_METHOD"])
        return flask(environ, start_response)

    fast.flask = counting
    try:
        # no cookie jars: a Cookie header given is sent as it is
        through = app.test_client(use_cookies=False).open(
            path, method=method, headers=headers, **kwargs
        )
    finally:
        fast.flask = flask
    alone = Client(flask, use_cookies=False).open(path, method=method, headers=headers, **kwargs)
    for reply in (through, alone):
        reply.get_data()
        reply.close()  # the Flask path logs a request when its body is closed
    return through, alone, not handed


def same(through, alone) -> None:
    assert through.status == alone.status
    assert list(through.headers.items()) == list(alone.headers.items())
    assert through.get_data() == alone.get_data()
