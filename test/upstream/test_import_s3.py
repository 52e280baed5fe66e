"""``hatrac import-upstream`` of an S3 deployment in upstream's oldest schema generation.

The bytes are in a versioned moto bucket under upstream's default method
(one key per object, each Hatrac version an S3 version, its VersionId the
version id); the database has the 2015 shape (``content_type`` and hex
``content_md5`` columns, no ``metadata``, ``aux``, ``ancestors``). Our side
is SQLite here (the filesystem test covers PostgreSQL).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import uuid

import pytest
from clients import FlaskProtocolClient
from deployment import Deployment

import hatrac
from hatrac.upstream import Options, import_site, load_site

MIB = 1024 * 1024


@pytest.fixture(scope="module")
def s3_site(postgres, moto, tmp_path_factory):
    root = tmp_path_factory.mktemp("upstream-s3")
    bucket = moto.create_bucket(f"upstream-{os.getpid()}-{uuid.uuid4().hex[:6]}")
    d = Deployment(
        postgres,
        root,
        generation="2015",
        s3=moto,
        bucket=bucket,
        root_acls={"owner": ["admin"], "subtree-read": ["*"]},
    )
    d.namespace("/proj")
    d.namespace("/proj/deep")
    ids = [d.version("/proj/deep/obj", f"version {i}".encode()) for i in range(3)]
    d.delete_version("/proj/deep/obj", ids[0])
    d.version("/proj/zero", b"")
    d.version("/proj/large", os.urandom(6 * MIB + 3), digests=False)
    d.version("/proj/enc%20name", b"space in the name", content_type="text/plain")
    ours = tmp_path_factory.mktemp("ours-s3")
    report, config = import_site(
        load_site(d.config()), "sqlite:" + str(ours / "db.sqlite3"), str(ours / "data"), Options()
    )
    app = hatrac.create_app(config)
    app.testing = True
    yield {"deployment": d, "report": report, "config": config, "client": FlaskProtocolClient(app)}
    app.extensions["hatrac"].close()
    d.close()


def test_s3_import_reports_no_problem(s3_site):
    report = s3_site["report"]
    assert report.problems == [], report.text()
    assert report.generation.startswith("2015")
    assert report.counts["version_tombstones"] == 1


def test_every_s3_version_url_answers_as_upstream(s3_site):
    client = s3_site["client"]
    expected_all = s3_site["deployment"].expected
    assert len(expected_all) == 5
    for (name, version), expected in expected_all.items():
        assert version != "null" and len(version) > 10  # real S3 VersionIds
        url = "/hatrac" + name + ":" + version
        reply = client.get(url)
        assert reply.status == 200, (url, reply.text)
        assert reply.body == expected.body
        assert reply.headers["Content-Type"].split(";")[0] == expected.content_type
        if expected.content_md5:
            assert reply.headers["Content-MD5"] == expected.content_md5
        ranged = client.get(url, headers={"Range": "bytes=1-3"})
        if len(expected.body) > 3:
            assert ranged.status == 206 and ranged.body == expected.body[1:4]


def test_s3_current_versions_and_new_writes(s3_site):
    client = s3_site["client"]
    assert client.get("/hatrac/proj/deep/obj").body == b"version 2"
    # larger than inline_max_size, so that its bytes go to the bucket
    written = b"written after the switch " * 3000
    put = client.put("/hatrac/proj/new", user="alice", data=written)
    assert put.status == 201, put.text
    assert client.get("/hatrac/proj/new").body == written
    # ours go under a prefix of their own, never among upstream's keys
    keys = [
        k["Key"]
        for k in s3_site["deployment"]
        .s3.client()
        .list_objects_v2(Bucket=s3_site["deployment"].bucket)["Contents"]
    ]
    assert any(k.startswith("hatrac/hatrac-new/") for k in keys)
    assert "hatrac/proj/deep/obj" in keys


def test_s3_legacy_md5_column_is_decoded(s3_site):
    expected = next(e for (n, _), e in s3_site["deployment"].expected.items() if n == "/proj/zero")
    reply = s3_site["client"].get(f"/hatrac/proj/zero:{expected.version};metadata/content-md5")
    assert reply.status == 200
    assert base64.b64encode(hashlib.md5(b"").digest()).decode() in reply.text


def test_unversioned_bucket_is_reported(postgres, moto, tmp_path):
    bucket = moto.create_bucket(f"unversioned-{uuid.uuid4().hex[:6]}", versioned=False)
    d = Deployment(postgres, tmp_path, s3=moto, bucket=bucket)
    d.version("/plain", b"written while versioning was off")
    report, _ = import_site(
        load_site(d.config()), "sqlite:" + str(tmp_path / "db.sqlite3"), str(tmp_path / "data")
    )
    d.close()
    kinds = [p["kind"] for p in report.problems]
    assert "bucket-not-versioned" in kinds, json.dumps(report.problems)
    assert report.counts["versions"] == 1
