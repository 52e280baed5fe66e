"""Rename over a real gunicorn, with the bodies DERIVA's ``rename_obj`` sends.

deriva 1.7.12 sends ``source_name`` with a leading ``/hatrac`` removed
(``source_path.removeprefix('/hatrac')``) and the version list as
``versions``. So under the prefix ``/hatrac`` the service reads
``source_name`` as upstream does, the name after the prefix, and never removes
``/hatrac`` a second time: the object ``/hatrac/hatrac/x`` arrives as
``/hatrac/x``. Under another prefix DERIVA sends the whole path, which the
service accepts too.
"""

from __future__ import annotations

import json
import os
import uuid
from urllib.parse import quote

import pytest
import requests
from servers import GunicornServer

OPEN_ROOT = {"owner": ["admin"], "subtree-owner": ["*"]}
NAMESPACE = {"Content-Type": "application/x-hatrac-namespace"}


def start(tmp_path_factory, request, **settings) -> GunicornServer:
    directory = tmp_path_factory.mktemp("rename-live")
    config = {"data_directory": str(directory / "data"), "root_acls": OPEN_ROOT, **settings}
    if request.param == "postgres":
        postgres = request.getfixturevalue("postgres")
        config["database_dsn"] = postgres.new_schema(f"rn_{os.getpid()}_{uuid.uuid4().hex[:8]}")
    return GunicornServer(config, directory, workers=1, threads=4).start()


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def server(request, tmp_path_factory):
    live = start(tmp_path_factory, request)
    yield live
    live.stop()


@pytest.fixture(scope="module", params=["sqlite"])
def files_server(request, tmp_path_factory):
    """A server under the prefix /files, where DERIVA sends source_name whole."""
    live = start(tmp_path_factory, request, service_prefix="/files")
    yield live
    live.stop()


class DerivaLikeSession(requests.Session):
    """The headers every deriva 1.7 request carries."""

    def __init__(self):
        super().__init__()
        context = {"cid": "test", "wid": uuid.uuid4().hex}
        self.headers["deriva-client-context"] = quote(json.dumps(context, separators=(",", ":")))

    def rename_obj(
        self, base: str, source_path: str, path: str, versions=None
    ) -> requests.Response:
        """HatracStore.rename_obj of deriva 1.7.12, verbatim but for raising."""
        body = {"command": "rename_from", "source_name": source_path.removeprefix("/hatrac")}
        if versions:
            body["versions"] = versions
        return self.post(base + path, json=body, headers={"Content-Type": "application/json"})


def put(session: requests.Session, url: str, data: bytes) -> str:
    reply = session.put(url + "?parents=true", data=data)
    assert reply.status_code == 201, reply.text
    return reply.text.strip()


def test_source_under_a_namespace_named_hatrac(server):
    """/hatrac/hatrac/T/obj is renamed, not /hatrac/T/obj (which DERIVA's strip
    and a second one by the service used to reach)."""
    session = DerivaLikeSession()
    top = f"/t{uuid.uuid4().hex[:10]}"
    deep = put(session, server.url + "/hatrac/hatrac" + top + "/obj", b"deep")
    put(session, server.url + "/hatrac" + top + "/obj", b"shallow")
    reply = session.rename_obj(
        server.url, "/hatrac/hatrac" + top + "/obj", "/hatrac" + top + "/new"
    )
    assert reply.status_code == 201, reply.text
    assert reply.text == "/hatrac" + top + "/new:" + deep.rsplit(":", 1)[1] + "\n"
    assert session.get(server.url + "/hatrac" + top + "/new").content == b"deep"
    # the object of the same name outside the namespace 'hatrac' is untouched
    untouched = session.get(server.url + "/hatrac" + top + "/obj")
    assert untouched.content == b"shallow" and "Location" not in untouched.headers
    moved = session.get(server.url + "/hatrac/hatrac" + top + "/obj")
    assert moved.headers["Location"] == reply.text.strip()


def test_source_of_an_ordinary_name(server):
    """The usual case: /hatrac/T/old arrives as /T/old, with DERIVA's ``versions``."""
    session = DerivaLikeSession()
    top = f"/hatrac/t{uuid.uuid4().hex[:10]}"
    first = put(session, server.url + top + "/old", b"one")
    put(session, server.url + top + "/old", b"two")
    version = first.rsplit(":", 1)[1]
    reply = session.rename_obj(server.url, top + "/old", top + "/new", versions=[version])
    assert reply.status_code == 201, reply.text
    assert reply.text == top + "/new:" + version + "\n"
    assert session.get(server.url + top + "/new").content == b"one"
    assert session.get(server.url + top + "/old").content == b"two"
    # the whole URL path is read as a name under the namespace 'hatrac', which
    # does not exist here: nothing is renamed
    body = {"command": "rename_from", "source_name": top + "/old"}
    missing = session.post(server.url + top + "/other", json=body)
    assert missing.status_code == 409, missing.text
    assert "source " + top + "/old is not an existing object" in missing.text
    assert session.get(server.url + top + "/other").status_code == 404


def test_other_prefix_takes_the_whole_path(files_server):
    """Under /files, DERIVA strips nothing; the service removes /files once."""
    session = DerivaLikeSession()
    top = f"/t{uuid.uuid4().hex[:10]}"
    base = files_server.url
    put(session, base + "/files/files" + top + "/obj", b"deep")
    put(session, base + "/files" + top + "/obj", b"shallow")
    reply = session.rename_obj(base, "/files/files" + top + "/obj", "/files" + top + "/a")
    assert reply.status_code == 201, reply.text
    assert session.get(base + "/files" + top + "/a").content == b"deep"
    # as upstream reads it (the name after the prefix): also accepted
    reply = session.rename_obj(base, top + "/obj", "/files" + top + "/b")
    assert reply.status_code == 201, reply.text
    assert session.get(base + "/files" + top + "/b").content == b"shallow"


@pytest.mark.parametrize("name", ["a b/é x.txt", "100%", "50%off", "trailing ", "日本/語"])
def test_source_as_the_caller_wrote_it(server, name):
    """DERIVA puts the caller's path in the URL, which requests percent-encodes,
    and in source_name as it is: both must name the same object (source names
    with a space or non-ASCII used to be a 400)."""
    session = DerivaLikeSession()
    top = f"/hatrac/t{uuid.uuid4().hex[:10]}"
    put(session, server.url + top + "/" + name, b"odd")  # requests encodes the URL
    reply = session.rename_obj(server.url, top + "/" + name, top + "/new")
    assert reply.status_code == 201, reply.text
    assert session.get(server.url + top + "/new").content == b"odd"
    renamed = session.get(server.url + top + "/" + name)
    assert renamed.headers["Location"] == reply.text.strip()


def test_source_partly_encoded_by_the_caller(server):
    """Escapes the caller wrote are kept, as requests keeps them in the URL."""
    session = DerivaLikeSession()
    top = f"/hatrac/t{uuid.uuid4().hex[:10]}"
    put(session, server.url + top + "/a%20b/%C3%A9%3Ax", b"odd")
    reply = session.rename_obj(server.url, top + "/a b/é%3Ax", top + "/new")
    assert reply.status_code == 201, reply.text
    assert session.get(server.url + top + "/new").content == b"odd"
