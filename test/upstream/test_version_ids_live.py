"""A version whose id was issued by upstream Hatrac or by S3 is served like ours.

Imported data keeps its ids byte for byte (26 characters of RFC 4648 base32,
or any provider's S3 VersionId), so such a version is bound here directly in
the directory, as the importer does, and then read over real HTTP.
"""

from __future__ import annotations

import base64
import hashlib
import os
import time
import uuid
from urllib.parse import quote

import pytest
import requests
from servers import GunicornServer

from hatrac.config import load_config
from hatrac.model.directory import directory_from_config
from hatrac.model.storage import open_storage

ROOT = {"owner": ["admin"], "read": ["*"], "subtree-read": ["*"]}
IDS = [
    "FYAMZWT2U2ACLY6Z4F5AQK4JKE",
    "3/L4kqtJlcpXroDTDmJ+rmSFXd3dIbrHY+MTRCxf3vjVBH40Nr8X8gdRQBpUMLUo",
    "null",
    "x" * 1000,
]


@pytest.fixture(scope="module")
def served(postgres, tmp_path_factory):
    directory_path = tmp_path_factory.mktemp("ids")
    config = {
        "data_directory": str(directory_path / "data"),
        "root_acls": ROOT,
        "database_dsn": postgres.new_schema(f"ids_{os.getpid()}_{uuid.uuid4().hex[:8]}"),
    }
    loaded = load_config(config)
    storage = open_storage(loaded)
    directory = directory_from_config(loaded)
    directory.initialize(ROOT)
    bodies = {}

    def bind(tx):
        root = tx.get_name("/")
        obj = tx.create_name("/ids", root.id, "object", {"owner": ["admin"]}, time.time())
        for number, version in enumerate(IDS):
            body = f"bytes of {number}".encode()
            bodies[version] = body
            key = storage.key_for("/ids", f"imported{number}")
            staged = storage.stage(key, [body])
            storage.commit(staged)
            metadata = {
                "content-type": "text/plain",
                "content-md5": staged.digests.md5_b64,
                "content-sha256": staged.digests.sha256_b64,
            }
            tx.create_version(obj.id, version, len(body), key, metadata, {}, time.time())

    directory.run(bind, write=True)
    directory.close()
    live = GunicornServer(config, directory_path, workers=1, threads=4).start()
    yield live, bodies
    live.stop()


def test_foreign_version_ids_are_served(served):
    live, bodies = served
    listing = requests.get(live.url + "/hatrac/ids;versions", headers={"Accept": "text/uri-list"})
    assert listing.status_code == 200, listing.text
    listed = listing.text.split()
    for version, body in bodies.items():
        url = f"/hatrac/ids:{quote(version, safe='-_.~')}"
        assert url in listed
        reply = requests.get(live.url + url)
        assert reply.status_code == 200, (version, reply.text)
        assert reply.content == body
        assert reply.headers["Content-MD5"] == base64.b64encode(hashlib.md5(body).digest()).decode()
        again = requests.get(live.url + url, headers={"If-None-Match": reply.headers["ETag"]})
        assert again.status_code == 304
        metadata = requests.get(live.url + url + ";metadata/content-type")
        assert metadata.status_code == 200 and "text/plain" in metadata.text
    newest = requests.get(live.url + "/hatrac/ids")
    assert newest.content == bodies[IDS[-1]]
    assert requests.get(live.url + "/hatrac/ids:FYAMZWT2U2ACLY6Z4F5AQK4JKF").status_code == 404
