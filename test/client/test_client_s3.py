"""hatrac-client against S3 storage that answers GETs with a 303 to a presigned
URL (moto): the client follows the redirect for every ranged part, without
its credentials, and verifies the bytes it got from S3."""

from __future__ import annotations

import base64
import hashlib
import os

import pytest
import requests
from clienthelpers import PASSWORD, Live, logged_in, open_accounts, server_config
from servers import GunicornServer

THRESHOLD = 64 * 1024


@pytest.fixture(scope="module")
def redirecting(request, tmp_path_factory):
    directory = tmp_path_factory.mktemp("client-s3")
    config = server_config(request, directory, "sqlite", "amazons3")
    config["s3_config"]["buckets"]["/"]["presigned_url_threshold"] = THRESHOLD
    accounts = open_accounts(config)
    accounts.add_user("alice", PASSWORD)
    server = GunicornServer(config, directory, workers=2, threads=4).start()
    yield Live(server, accounts, "sqlite-amazons3")
    server.stop()
    accounts.directory.close()


@pytest.mark.parametrize("streams", ["1", "3"])
def test_get_follows_the_presigned_redirect_and_verifies(
    redirecting, request, tmp_path, capsys, monkeypatch, streams
):
    monkeypatch.delenv("HATRAC_TOKEN", raising=False)
    hc = logged_in(redirecting, tmp_path / "cfg", capsys, monkeypatch)
    namespace = f"t:/s3-{streams}"
    assert hc("mkdir", namespace)[0] == 0
    data = os.urandom(600_000)
    local = tmp_path / "big"
    local.write_bytes(data)
    assert hc("put", local, namespace + "/big", "--threshold", "256k")[0] == 0
    # the server does send this object's GET to S3 (moto), not through itself
    cookie = hc.cookie(redirecting)
    path = namespace.replace("t:", "/hatrac") + "/big"
    answer = requests.get(redirecting.url + path, headers={"Cookie": cookie}, allow_redirects=False)
    moto = request.getfixturevalue("moto")
    assert answer.status_code == 303
    assert answer.headers["Location"].startswith(moto.endpoint_url)
    dest = tmp_path / "fetched"
    (result,) = hc.json(
        "get", namespace + "/big", dest, "--streams", streams, "--part-size", "128k"
    )
    assert result["verified"] == "sha256" and dest.read_bytes() == data
    assert result["parts"] == (1 if streams == "1" else 5)
    sha256 = base64.b64encode(hashlib.sha256(data).digest()).decode()
    assert hc.json("stat", namespace + "/big")[0]["content-sha256"] == sha256
    # below the threshold: the bytes come through the service itself
    (tmp_path / "small").write_bytes(b"small")
    assert hc("put", tmp_path / "small", namespace + "/small")[0] == 0
    assert hc("get", namespace + "/small", tmp_path / "s")[0] == 0
    assert (tmp_path / "s").read_bytes() == b"small"
