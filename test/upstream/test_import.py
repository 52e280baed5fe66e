"""``hatrac import-upstream`` on a filesystem deployment: every URL answers as before.

One upstream deployment (real PostgreSQL, upstream's file layout) holds
nested namespaces, several versions per object, deleted versions, objects
and namespaces, subtree and version ACLs, a rename, percent-encoded names,
zero-byte and multi-MiB versions, versions without digests, an unfinished
version row, an open upload job and a version whose file was removed. It is
imported once per module (PostgreSQL as our database) and then checked
request by request against what upstream answers.
"""

from __future__ import annotations

import json
import os
import uuid

import pytest
from clients import FlaskProtocolClient
from deployment import Deployment

import hatrac
from hatrac.cli import main
from hatrac.upstream import Options, import_site, load_site

ROOT_ACLS = {"owner": ["admin"], "create": ["alice"]}
# role sets of the clients asking, as (user, groups)
CLIENTS = {
    "alice": ("alice", ()),
    "carol": ("carol", ("labgroup",)),
    "bob": ("bob", ()),
    "anonymous": (None, ()),
    "dave": ("dave", ()),
}
MIB = 1024 * 1024


def build(deployment: Deployment) -> dict:
    """The corpus; returns facts the tests need."""
    d = deployment
    d.namespace("/lab", read=["*"], subtree_read=["labgroup"])
    d.namespace("/lab/run1")
    facts = {"data": [d.version("/lab/run1/data.csv", f"v{i}\n".encode()) for i in range(3)]}
    d.delete_version("/lab/run1/data.csv", facts["data"][1])
    d.sql(
        "UPDATE hatrac.version SET read = %s WHERE version = %s",
        (["bob"], facts["data"][2]),
    )
    d.expected[("/lab/run1/data.csv", facts["data"][2])].readers = {"bob"}
    d.unfinished_version("/lab/run1/data.csv")
    d.version("/lab/empty", b"", content_type=None)
    d.version("/lab/big", os.urandom(3 * MIB + 1), digests=False)
    d.namespace("/lab/enc")
    d.version("/lab/enc/caf%C3%A9", b"accent", content_type="text/plain")
    d.version("/lab/enc/slash%2Finside", b"slash")
    d.namespace("/lab/enc/%E2%9C%93")
    d.version("/lab/enc/%E2%9C%93/x%2By", b"plus")
    d.version("/lab/enc/paren(1)", b"bare parenthesis")
    d.namespace("/pub", subtree_read=["*"])
    d.version("/pub/open", b"for everyone", content_type="text/csv")
    d.version(
        "/pub/named",
        b"a,b\n",
        content_type="text/csv",
        extra_metadata={"content-disposition": "filename*=UTF-8''report%20final.csv"},
    )
    d.version(
        "/pub/odd-role", b"odd", read=["https://auth.globus.org/ab12-cd34", "role with space"]
    )
    d.version("/lab/gone", b"deleted object")
    d.delete_name("/lab/gone")
    d.namespace("/lab/oldns")
    d.version("/lab/oldns/inner", b"in a deleted namespace")
    d.delete_name("/lab/oldns")
    d.version("/lab/old", b"first")
    d.version("/lab/old", b"second")
    facts["renamed"] = d.rename("/lab/old", "/lab/new")
    facts["job"] = d.upload_job("/lab/pending", 10 * MIB, 5 * MIB)
    facts["lost"] = d.version("/lab/lost", b"this file will be removed")
    d.path_of("/lab/lost", facts["lost"]).unlink()
    d.expected.pop(("/lab/lost", facts["lost"]))
    return facts


@pytest.fixture(scope="module")
def site(postgres, tmp_path_factory):
    root = tmp_path_factory.mktemp("upstream")
    deployment = Deployment(postgres, root, root_acls=ROOT_ACLS)
    facts = build(deployment)
    ours = tmp_path_factory.mktemp("ours")
    dsn = postgres.new_schema(f"imp_{os.getpid()}_{uuid.uuid4().hex[:8]}")
    config_path = ours / "hatrac_config.json"
    upstream_path = root / "hatrac_config.json"
    upstream_path.write_text(json.dumps(deployment.config()))
    before = _snapshot(deployment)
    report, config = import_site(
        load_site(upstream_path),
        dsn,
        str(ours / "data"),
        options=Options(drop_jobs=False),
        config_out=str(config_path),
    )
    assert _snapshot(deployment) == before  # upstream's database and bytes untouched
    app = hatrac.create_app(config)
    app.testing = True
    yield {
        "deployment": deployment,
        "facts": facts,
        "report": report,
        "config": config,
        "config_path": config_path,
        "upstream_path": upstream_path,
        "dsn": dsn,
        "client": FlaskProtocolClient(app),
        "ours": ours,
    }
    app.extensions["hatrac"].close()
    deployment.close()


def _snapshot(deployment: Deployment) -> tuple:
    tables = tuple(
        tuple(map(repr, deployment.sql(f"SELECT * FROM hatrac.{t} ORDER BY 1")))
        for t in ("name", "version", "upload")
    )
    files = sorted(
        (str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in deployment.storage_path.rglob("*")
    )
    return tables, tuple(files)


def _ask(client, method, url, who, **kwargs):
    user, groups = CLIENTS[who]
    return client.request(method, url, user=user, groups=groups, **kwargs)


def _may_read(expected, who) -> bool:
    """Upstream's rule for reading a version, for this corpus's ACLs."""
    user, groups = CLIENTS[who]
    roles = {"*"} | ({user} if user else set()) | set(groups)
    if "alice" in roles:  # owner of every version
        return True
    if expected.name.startswith("/pub/"):
        return True  # subtree-read * on /pub
    if expected.name.startswith("/lab/") and "labgroup" in roles:
        return True
    return bool(roles & expected.readers)


def test_report(site):
    report = site["report"]
    kinds = sorted((p["kind"], p["where"]) for p in report.problems)
    assert [k for k, _ in kinds] == ["missing-bytes", "open-upload-job"], kinds
    assert "/lab/lost" in dict(kinds)["missing-bytes"]
    counts = report.counts
    assert counts["unfinished_skipped"] == 1
    assert counts["renames"] == 2
    assert counts["versions_without_digests"] >= 1  # /lab/big
    assert counts["name_tombstones"] == 3  # /lab/gone, /lab/oldns, /lab/oldns/inner
    assert report.jobs and report.jobs[0]["url"].endswith(";upload/" + site["facts"]["job"])
    assert report.jobs[0]["content_length"] == 10 * MIB
    assert "PROBLEM open-upload-job" in report.text()


def test_every_version_url_answers_as_upstream(site):
    client = site["client"]
    checked = 0
    for (name, version), expected in site["deployment"].expected.items():
        if name in site["deployment"].renamed_away:
            continue  # forwarders: test_renamed_versions_forward
        url = site["config"]["service_prefix"] + name + ":" + version
        for who in CLIENTS:
            reply = _ask(client, "GET", url, who)
            if not _may_read(expected, who):
                assert reply.status in (401, 403), (url, who, reply.status)
                continue
            assert reply.status == 200, (url, who, reply.status, reply.text)
            assert reply.body == expected.body, url
            assert reply.headers["Content-Type"].split(";")[0] == (
                expected.content_type or "application/octet-stream"
            )
            if expected.content_md5:
                assert reply.headers["Content-MD5"] == expected.content_md5
            if expected.content_disposition:
                assert reply.headers["Content-Disposition"] == expected.content_disposition
            checked += 1
        head = _ask(client, "HEAD", url, "alice")
        assert int(head.headers["Content-Length"]) == len(expected.body)
    assert checked > 30


def test_objects_answer_their_current_version(site):
    client = site["client"]
    current = {}
    for (name, _version), expected in site["deployment"].expected.items():
        current[name] = expected  # insertion order = upstream's serial order
    for name, expected in current.items():
        if name in site["deployment"].renamed_away:
            continue  # what the old object name answers is issue 11 item 2's
        reply = _ask(client, "GET", "/hatrac" + name, "alice")
        assert reply.status == 200, (name, reply.text)
        assert reply.body == expected.body, name


def test_listings_and_bare_spellings(site):
    client = site["client"]
    listing = _ask(client, "GET", "/hatrac/lab/enc", "alice", headers={"Accept": "text/uri-list"})
    assert listing.status == 200
    names = set(listing.text.split())
    assert "/hatrac/lab/enc/caf%C3%A9" in names
    assert "/hatrac/lab/enc/slash%2Finside" in names
    assert "/hatrac/lab/enc/paren%281%29" in names  # our canonical spelling
    # the spelling upstream stored still resolves
    assert _ask(client, "GET", "/hatrac/lab/enc/paren(1)", "alice").body == b"bare parenthesis"
    versions = _ask(
        client,
        "GET",
        "/hatrac/lab/run1/data.csv;versions",
        "alice",
        headers={"Accept": "text/uri-list"},
    )
    data = site["facts"]["data"]
    listed = versions.text.split()
    assert f"/hatrac/lab/run1/data.csv:{data[0]}" in listed
    assert f"/hatrac/lab/run1/data.csv:{data[1]}" not in listed  # deleted


def test_tombstones_stay_and_names_are_never_reused(site):
    client = site["client"]
    data = site["facts"]["data"]
    assert _ask(client, "GET", f"/hatrac/lab/run1/data.csv:{data[1]}", "alice").status == 404
    for name in ("/hatrac/lab/gone", "/hatrac/lab/oldns", "/hatrac/lab/oldns/inner"):
        assert _ask(client, "GET", name, "alice").status == 404, name
    again = _ask(client, "PUT", "/hatrac/lab/gone", "alice", data=b"reuse?")
    assert again.status == 409, again.text
    ns = _ask(
        client,
        "PUT",
        "/hatrac/lab/oldns",
        "alice",
        headers={"Content-Type": "application/x-hatrac-namespace"},
    )
    assert ns.status == 409


def test_renamed_versions_forward(site):
    client = site["client"]
    deployment = site["deployment"]
    for version in site["facts"]["renamed"]:
        reply = _ask(client, "GET", f"/hatrac/lab/old:{version}", "alice")
        body = deployment.expected[("/lab/new", version)].body
        if reply.status == 200:
            assert reply.body == body
        else:
            assert reply.status in (301, 302, 303, 307), reply.status
            assert reply.headers["Location"].endswith(f"/hatrac/lab/new:{version}")
        assert _ask(client, "GET", f"/hatrac/lab/new:{version}", "alice").body == body


def test_upstream_acls_and_firewall_carried_over(site):
    client = site["client"]
    acl = _ask(client, "GET", "/hatrac/lab;acl", "alice")
    assert acl.json()["subtree-read"] == ["labgroup"]
    odd = _ask(client, "GET", "/hatrac/pub/odd-role;acl", "alice")
    assert acl.status == 200 and odd.status == 200
    version = site["deployment"].expected
    key = next(k for k in version if k[0] == "/pub/odd-role")
    roles = _ask(client, "GET", f"/hatrac/pub/odd-role:{key[1]};acl/read", "alice").json()
    assert roles == ["https://auth.globus.org/ab12-cd34", "role with space"]
    assert site["config"]["firewall_acls"]["manage_acls"] == ["*"]
    # new versions go to our own layout, beside upstream's tree
    put = _ask(client, "PUT", "/hatrac/lab/fresh", "alice", data=b"new bytes")
    assert put.status == 201, put.text
    assert _ask(client, "GET", "/hatrac/lab/fresh", "alice").body == b"new bytes"


def _rows(site) -> tuple:
    import psycopg2

    with psycopg2.connect(site["dsn"]) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT id, name, kind, acls, deleted FROM names ORDER BY id")
        names = cursor.fetchall()
        cursor.execute(
            "SELECT id, name_id, version, size, storage_key, content_md5, content_sha256, "
            "deleted, renamed_to_name FROM versions ORDER BY id"
        )
        return names, cursor.fetchall()


def test_running_it_again_changes_nothing(site, capsys):
    before = _rows(site)
    code = main(
        [
            "import-upstream",
            str(site["upstream_path"]),
            "--database-dsn",
            site["dsn"],
            "--data-directory",
            str(site["ours"] / "data"),
            "--json",
        ]
    )
    report = json.loads(capsys.readouterr().out)
    assert code == 1  # the same problems are reported again
    assert report["counts"]["names_new"] == 0 and report["counts"]["versions_new"] == 0
    assert _rows(site) == before


def test_cli_writes_a_config_that_loads(site, tmp_path, capsys):
    from hatrac.config import load_config

    written = tmp_path / "ours.json"
    code = main(
        [
            "import-upstream",
            str(site["upstream_path"]),
            "--database-dsn",
            site["dsn"],
            "--data-directory",
            str(site["ours"] / "data"),
            "--write-config",
            str(written),
            "--webauthn2-session-url",
            "https://localhost/authn/session",
        ]
    )
    out = capsys.readouterr().out
    assert code == 1 and "PROBLEM missing-bytes" in out and str(written) in out
    config = load_config(written)
    assert config.authn_providers == ["webauthn2"]
    assert config.storage_backend == "overlay" and config.service_prefix == "/hatrac"


def test_dry_run_writes_nothing(site, postgres, tmp_path, capsys):
    code = main(["import-upstream", str(site["upstream_path"]), "--dry-run", "--json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 1 and report["dry_run"]
    assert report["counts"]["versions_new"] == site["report"].counts["versions_new"]
    assert not (tmp_path / "hatrac_data").exists()


def test_verify_rehashes_every_imported_version(site, capsys):
    config = site["config_path"]
    assert main(["--config", str(config), "verify", "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert [p["problem"] for p in report["problems"]] == ["missing"]
    assert "/hatrac/lab/lost:" in report["problems"][0]["url"]
    deployment = site["deployment"]
    kept = [k for k in deployment.expected if k[0] not in deployment.renamed_away]
    assert report["checked"] >= len(kept) + 1  # and /lab/lost (missing); forwarders are not
    verified = {p["url"] for p in report["problems"]}
    assert len(verified) == 1
    # digests upstream never stored are computed from the bytes and recorded
    assert main(["--config", str(config), "verify", "--fill-digests", "--json"]) == 1
    filled = json.loads(capsys.readouterr().out)
    assert filled["digests_filled"] >= 1
    big = next(k for k in site["deployment"].expected if k[0] == "/lab/big")
    reply = _ask(site["client"], "GET", f"/hatrac/lab/big:{big[1]}", "alice")
    import base64
    import hashlib

    expected = site["deployment"].expected[big].body
    assert reply.headers["Content-MD5"] == base64.b64encode(hashlib.md5(expected).digest()).decode()
