"""Import modes and layouts: --copy, --hash, upstream overlay chains, S3 hname:hver.

Small deployments, one per test, into SQLite (fast); what the larger modules
do not cover.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import uuid

from clients import FlaskProtocolClient
from deployment import Deployment

import hatrac
from hatrac.cli import main
from hatrac.upstream import Options, import_site, load_site

OPEN = {"owner": ["admin"], "subtree-read": ["*"]}


def _b64(digest) -> str:
    return base64.b64encode(digest).decode()


def _serve(config):
    app = hatrac.create_app(config)
    app.testing = True
    return app, FlaskProtocolClient(app)


def test_copy_moves_bytes_into_our_layout(postgres, tmp_path):
    d = Deployment(postgres, tmp_path, root_acls=OPEN)
    kept = d.version("/a", b"copied and hashed", digests=False)
    bad = d.version("/b", b"recorded digest is wrong")
    d.sql(
        "UPDATE hatrac.version SET metadata = metadata || %s WHERE version = %s",
        (json.dumps({"content-md5": "0" * 32}), bad),
    )
    report, config = import_site(
        load_site(d.config()),
        "sqlite:" + str(tmp_path / "db.sqlite3"),
        str(tmp_path / "data"),
        options=Options(copy=True),
    )
    d.close()
    assert report.counts["bytes_copied"] == len(b"copied and hashed")
    kinds = [p["kind"] for p in report.problems]
    assert kinds == ["digest-mismatch", "copy"], report.text()
    # upstream's file can go: the copied version is served from ours
    upstream_file = d.path_of("/a", kept)
    upstream_file.unlink()
    app, client = _serve(config)
    try:
        reply = client.get(f"/hatrac/a:{kept}")
        assert reply.status == 200 and reply.body == b"copied and hashed"
        assert reply.headers["Content-MD5"] == _b64(hashlib.md5(b"copied and hashed").digest())
        left = client.get(f"/hatrac/b:{bad}")  # not copied: still read in place
        assert left.status == 200 and left.body == b"recorded digest is wrong"
    finally:
        app.extensions["hatrac"].close()
    # a second run copies nothing again
    upstream_file.write_bytes(b"copied and hashed")
    again, _ = import_site(
        load_site(d.config()),
        "sqlite:" + str(tmp_path / "db.sqlite3"),
        str(tmp_path / "data"),
        options=Options(copy=True),
    )
    assert again.counts.get("bytes_copied", 0) == 0
    assert again.counts["versions_new"] == 0


def test_hash_records_missing_digests_and_deletes_leave_upstream_bytes(postgres, tmp_path):
    d = Deployment(postgres, tmp_path, root_acls={"owner": ["admin"]})
    d.namespace("/ns")
    version = d.version("/ns/x", b"no digests upstream", digests=False)
    report, config = import_site(
        load_site(d.config()),
        "sqlite:" + str(tmp_path / "db.sqlite3"),
        str(tmp_path / "data"),
        options=Options(hash=True),
    )
    d.close()
    assert report.counts["digests_computed"] == 2 and not report.problems
    app, client = _serve(config)
    try:
        reply = client.get(f"/hatrac/ns/x:{version};metadata/content-sha256", user="alice")
        assert _b64(hashlib.sha256(b"no digests upstream").digest()) in reply.text
        deleted = client.delete(f"/hatrac/ns/x:{version}", user="alice")
        assert deleted.status == 204, deleted.text
        assert client.get(f"/hatrac/ns/x:{version}", user="alice").status == 404
    finally:
        app.extensions["hatrac"].close()
    # upstream's file stays, so a rollback still finds it
    assert d.path_of("/ns/x", version).read_bytes() == b"no digests upstream"


def test_upstream_overlay_chain(postgres, tmp_path):
    d = Deployment(postgres, tmp_path, root_acls=OPEN)
    version = d.version("/in-second", b"only the second backend has me")
    first = tmp_path / "first-backend"
    first.mkdir()
    upstream = d.config(
        storage_backend="overlay",
        overlay_backends=[
            {"storage_backend": "filesystem", "storage_path": str(first)},
            {"storage_backend": "filesystem", "storage_path": str(d.storage_path)},
        ],
    )
    report, config = import_site(
        load_site(upstream), "sqlite:" + str(tmp_path / "db.sqlite3"), str(tmp_path / "data")
    )
    d.close()
    assert not report.problems, report.text()
    labels = [entry.get("label") for entry in config["overlay_backends"]]
    assert labels == [None, "up0", "up1"]
    app, client = _serve(config)
    try:
        assert client.get(f"/hatrac/in-second:{version}").body == b"only the second backend has me"
    finally:
        app.extensions["hatrac"].close()


def test_s3_one_key_per_version_and_verify(postgres, moto, tmp_path, capsys):
    bucket = moto.create_bucket(f"hver-{os.getpid()}-{uuid.uuid4().hex[:6]}")
    d = Deployment(
        postgres, tmp_path, s3=moto, bucket=bucket, method="pref/**/hname:hver", root_acls=OPEN
    )
    versions = [d.version("/obj", f"body {i}".encode()) for i in range(2)]
    report, config = import_site(
        load_site(d.config()), "sqlite:" + str(tmp_path / "db.sqlite3"), str(tmp_path / "data")
    )
    assert not report.problems, report.text()
    app, client = _serve(config)
    try:
        for number, version in enumerate(versions):
            assert len(version) == 26  # upstream's base32 ids, not S3 VersionIds
            assert client.get(f"/hatrac/obj:{version}").body == f"body {number}".encode()
    finally:
        app.extensions["hatrac"].close()
    path = tmp_path / "ours.json"
    path.write_text(json.dumps(config))
    assert main(["--config", str(path), "verify", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["checked"] == 2
    # bytes changed behind our back are found
    moto.client().put_object(Bucket=bucket, Key=f"hatrac/obj:{versions[0]}", Body=b"tampered")
    assert main(["--config", str(path), "verify", "--json"]) == 1
    found = json.loads(capsys.readouterr().out)["problems"]
    d.close()
    assert [p["problem"] for p in found] == ["different"]


def _order(path) -> list:
    import sqlite3

    with sqlite3.connect(path) as connection:
        return connection.execute(
            "SELECT n.name, v.version, v.size, v.deleted FROM versions v "
            "JOIN names n ON n.id = v.name_id ORDER BY v.id"
        ).fetchall()


def test_an_interrupted_import_finishes_on_the_next_run(postgres, tmp_path, monkeypatch):
    from hatrac.model.directory.upstream import UpstreamDatabase

    d = Deployment(postgres, tmp_path, root_acls=OPEN)
    for number in range(9):
        d.version(f"/o{number % 3}", f"body {number}".encode())
    d.delete_version("/o1", next(v for (n, v) in d.expected if n == "/o1"))
    site = load_site(d.config())
    original = UpstreamDatabase.versions

    def dies_midway(self):
        for count, row in enumerate(original(self)):
            if count == 5:
                raise ConnectionError("upstream's database went away")
            yield row

    monkeypatch.setattr(UpstreamDatabase, "versions", dies_midway)
    interrupted = tmp_path / "interrupted.sqlite3"
    try:
        import_site(site, f"sqlite:{interrupted}", str(tmp_path / "a"), options=Options(batch=2))
    except ConnectionError:
        pass
    else:
        raise AssertionError("the import should have been interrupted")
    assert 0 < len(_order(interrupted)) < 9
    monkeypatch.setattr(UpstreamDatabase, "versions", original)
    report, _ = import_site(
        site, f"sqlite:{interrupted}", str(tmp_path / "a"), options=Options(batch=2)
    )
    clean = tmp_path / "clean.sqlite3"
    import_site(site, f"sqlite:{clean}", str(tmp_path / "b"))
    d.close()
    assert 0 < report.counts["versions_new"] < 9
    assert _order(interrupted) == _order(clean)  # same rows, same creation order
    assert len(_order(clean)) == 9
