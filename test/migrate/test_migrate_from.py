"""``hatrac migrate-from``: one of our servers copied into another through the REST API.

The source is a real gunicorn server filled over HTTP; the copy runs as the
real command line (a subprocess, the token on stdin) into a second service's
config; then a second gunicorn serves the copy and every URL is compared,
request by request, with the source.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys

import pytest
import requests
from servers import GunicornServer

from hatrac.auth.accounts import Accounts
from hatrac.config import load_config
from hatrac.model.directory import open_directory

NS = {"Content-Type": "application/x-hatrac-namespace"}
COMPARED_HEADERS = (
    "Content-Type",
    "Content-Length",
    "Content-MD5",
    "Content-SHA256",
    "Content-Disposition",
    "Content-Location",
    "ETag",
    "Last-Modified",
)
BIG = os.urandom(3 * 1024 * 1024 + 17)


def make_service(directory, **extra) -> dict:
    return {
        "data_directory": str(directory / "data"),
        "root_acls": {"owner": ["admin"]},
        "password_hash_rounds": 1000,
        **extra,
    }


def admin_token(config: dict) -> str:
    loaded = load_config(config)
    directory = open_directory(loaded.database_dsn)
    directory.initialize(loaded.root_acls)
    accounts = Accounts(directory, loaded)
    accounts.add_user("admin", "pw")
    _, token = accounts.issue_token("admin")
    directory.close()
    return token


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    directory = tmp_path_factory.mktemp("source")
    config = make_service(directory)
    token = admin_token(config)
    server = GunicornServer(config, directory, workers=1, threads=4).start()
    auth = {"Authorization": "Bearer " + token}
    base = server.url + "/hatrac"

    def put(path, data=None, headers=None, expect=201):
        reply = requests.put(base + path, data=data, headers={**auth, **(headers or {})})
        assert reply.status_code == expect, (path, reply.text)
        return reply

    put("/lab", headers=NS)
    put("/lab/deep?parents=true", headers=NS)
    put("/lab/deep/er", headers=NS)
    put("/lab/deep/er/file.txt", b"first", {"Content-Type": "text/plain"})
    put("/lab/deep/er/file.txt", b"second", {"Content-Type": "text/csv"})
    put("/lab/deep/er/file.txt", b"third")
    put(
        "/lab/odd%20name%25%C3%A9%2Fx",
        b"odd",
        {"Content-Disposition": "filename*=UTF-8''odd%20name.txt"},
    )
    put("/lab/empty", b"")
    put("/lab/big", BIG)
    # a deleted version, invisible to the copy
    gone = put("/lab/deep/er/file.txt", b"deleted later").headers["Location"]
    assert requests.delete(server.url + gone, headers=auth).status_code == 204
    # an object whose only version was deleted: a name with no current version
    only = put("/lab/hollow", b"x").headers["Location"]
    assert requests.delete(server.url + only, headers=auth).status_code == 204
    # ACLs on all three levels, including subtree ones and URL-like roles
    globus = requests.utils.quote("https://auth.globus.org/ab12", safe="")
    put("/lab;acl/subtree-read/" + globus, expect=204)
    put("/lab/deep;acl/subtree-create/g:writers", expect=204)
    put("/lab/big;acl/read/carol", expect=204)
    version = requests.get(base + "/lab/big", headers=auth).headers["Content-Location"]
    reply = requests.put(server.url + version + ";acl/read/dave", headers=auth)
    assert reply.status_code == 204
    yield server, token
    server.stop()


def run_migration(config_path, url: str, token: str, *extra: str):
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "hatrac.cli",
            "--config",
            str(config_path),
            "migrate-from",
            url,
            "--token-stdin",
            "--json",
            *extra,
        ],
        input=token + "\n",
        capture_output=True,
        text=True,
        timeout=300,
    )


def urls_of(base: str, auth: dict) -> list[str]:
    """Every URL of the tree: names, their ACLs, versions, their ACLs and metadata."""
    found, stack = [], ["/hatrac/"]
    while stack:
        url = stack.pop()
        found += [url, url + ";acl"]
        acls = requests.get(base + url + ";acl", headers=auth).json()
        if "create" in acls:
            stack += requests.get(base + url, headers=auth).json()
            continue
        listing = requests.get(base + url + ";versions", headers=auth)
        found.append(url + ";versions")
        for version in listing.json():
            found += [version, version + ";acl", version + ";metadata"]
    return sorted(found)


def observe(base: str, url: str, auth: dict) -> tuple:
    reply = requests.get(base + url, headers=auth)
    headers = {h: reply.headers.get(h) for h in COMPARED_HEADERS}
    if url.endswith((";acl", ";metadata", ";versions")) or url.endswith("/"):
        headers = {"Content-Type": headers["Content-Type"]}
        body = reply.json() if reply.status_code == 200 else None
        if isinstance(body, dict):
            body = {k: sorted(v) if isinstance(v, list) else v for k, v in body.items()}
        return reply.status_code, headers, body
    if reply.status_code == 200 and "Content-Type" in reply.headers and url.count(":") < 2:
        try:
            listing = reply.json()
        except ValueError:
            listing = None
        if isinstance(listing, list) and reply.headers["Content-Type"] == "application/json":
            return reply.status_code, {}, sorted(listing)
    return reply.status_code, headers, hashlib.md5(reply.content).hexdigest()


def test_copy_has_identical_observable_state_and_resumes(source, tmp_path):
    server, token = source
    target_config = make_service(tmp_path)
    config_path = tmp_path / "hatrac_config.json"
    config_path.write_text(json.dumps(target_config))

    dry = run_migration(config_path, server.url + "/hatrac", token, "--dry-run")
    assert dry.returncode == 0, dry.stdout
    assert json.loads(dry.stdout)["versions"] == 6
    result = run_migration(config_path, server.url + "/hatrac", token)
    assert result.returncode == 0, result.stderr + result.stdout
    report = json.loads(result.stdout)
    assert report["versions"] == 6 and report["bytes"] == 5 + 6 + 5 + 3 + 0 + len(BIG)
    assert report["problems"] == [] and report["limitations"]

    copy = GunicornServer(target_config, tmp_path, workers=1, threads=4).start()
    try:
        auth = {"Authorization": "Bearer " + token}  # the same account is not copied:
        copy_auth = {"Authorization": "Bearer " + admin_token(target_config)}
        source_urls = urls_of(server.url, auth)
        assert urls_of(copy.url, copy_auth) == source_urls
        assert len(source_urls) > 30
        for url in source_urls:
            assert observe(copy.url, url, copy_auth) == observe(server.url, url, auth), url
        # the deleted version's id was not copied, and the hollow object has no version
        assert requests.get(copy.url + "/hatrac/lab/hollow", headers=copy_auth).status_code == 409
    finally:
        copy.stop()

    again = run_migration(config_path, server.url + "/hatrac", token)
    assert again.returncode == 0, again.stderr
    second = json.loads(again.stdout)
    assert second["versions"] == 0 and second["already_present"] == 6


def test_bad_source_and_credentials_are_clear(source, tmp_path):
    server, _ = source
    config_path = tmp_path / "hatrac_config.json"
    config_path.write_text(json.dumps(make_service(tmp_path)))
    wrong = run_migration(config_path, server.url + "/hatrac", "hatrac_not-a-token")
    assert wrong.returncode == 1
    assert "401" in json.loads(wrong.stdout)["problems"][0]["problem"]
    bad_url = run_migration(config_path, "ftp://example.org/hatrac", "x")
    assert bad_url.returncode == 2 and "http(s)" in bad_url.stderr
