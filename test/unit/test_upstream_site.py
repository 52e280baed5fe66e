"""Upstream's configuration and row encodings, read as upstream's releases wrote them."""

from __future__ import annotations

import base64
import hashlib
import json

import pytest

from hatrac.upstream import rows
from hatrac.upstream.site import SiteError, load_site

S3 = {"aws_access_key_id": "k", "aws_secret_access_key": "s"}


def s3_site(buckets: dict, **extra):
    return load_site(
        {
            "database_dsn": "dbname=x",
            "storage_backend": "amazons3",
            "s3_config": {"buckets": buckets, **extra},
        }
    )


def test_firewall_and_read_only_keep_their_effective_values():
    site = load_site({"database_dsn": "d", "firewall_acls": {"manage_acl": ["admins"]}})
    assert site.firewall == {
        "create": ["*"],
        "delete": ["*"],
        "manage_acls": ["admins"],
        "manage_metadata": ["*"],
    }
    read_only = load_site({"database_dsn": "d", "read_only": True})
    assert all(roles == [] for roles in read_only.firewall.values()) and read_only.read_only
    # the spelling of upstream's docs, which its code never reads, changes nothing
    ignored = load_site({"database_dsn": "d", "firewall_acls": {"manage_acls": ["x"]}})
    assert ignored.firewall["manage_acls"] == ["*"] and ignored.notes


def test_filesystem_address():
    site = load_site({"database_dsn": "d", "storage_path": "/var/www/hatrac"})
    key, problem = site.address("/lab/caf%C3%A9", "FYAMZWT2U2ACLY6Z4F5AQK4JKE", None)[0]
    assert key == "@up0/lab/caf%C3%A9:FYAMZWT2U2ACLY6Z4F5AQK4JKE" and problem is None
    assert site.address("/a/../b", "V", None)[0][1]  # never outside storage_path


def test_s3_bucket_tree_deepest_prefix_and_methods():
    site = s3_site(
        {
            "": {"bucket_name": "all", "session_config": S3},
            "lab": {"bucket_name": "lab", "bucket_path_prefix": "", "unquote_object_keys": True},
            "lab/raw": {"bucket_name": "raw", "hatrac_s3_method": "pref/**/hname:hver"},
        }
    )
    assert site.address("/other/x", "VID", None)[0][0] == "@up0/all/VID/hatrac/other/x"
    assert site.address("/lab/caf%C3%A9", "VID", None)[0][0] == "@up0/lab/VID/lab/café"
    assert site.address("/lab/raw/x", "HVER", None)[0][0] == "@up0/raw//hatrac/lab/raw/x:HVER"
    # aux.version (hatrac-migrate) is the VersionId to read
    assert site.address("/other/x", "VID", "S3V")[0][0] == "@up0/all/S3V/hatrac/other/x"
    # S3 VersionIds are escaped in the key
    assert site.address("/other/x", "a/b+c", None)[0][0] == "@up0/all/a%2Fb%2Bc/hatrac/other/x"


def test_legacy_s3_shapes():
    old = load_site({"database_dsn": "d", "storage_backend": "amazons3", "s3_bucket": "b"})
    assert old.address("/a/b", "V", None)[0][0] == "@up0/b/V/hatrac/a/b"
    legacy = s3_site(
        {"/lab": {"bucket_name": "lab"}, "/": {"bucket_name": "rest"}}, legacy_mapping=True
    )
    assert legacy.address("/lab/deep/x", "V", None)[0][0].startswith("@up0/lab/")
    assert legacy.address("/other/x", "V", None)[0][0].startswith("@up0/rest/")


def test_our_s3_config_writes_beside_upstream_keys():
    site = s3_site({"": {"bucket_name": "b", "presigned_url_threshold": 1000}})
    ours = site.our_config("dbname=ours", "/d", "/d/storage", "hatrac-new")
    first = ours["overlay_backends"][0]["s3_config"]["buckets"]["/"]
    assert first["bucket_path_prefix"] == "hatrac/hatrac-new"
    assert first["presigned_url_threshold"] == 1001  # upstream: above; ours: from
    assert ours["overlay_backends"][1]["upstream_s3"]["b"]["presigned_url_threshold"] == 1000


@pytest.mark.parametrize(
    "config",
    [
        {"storage_backend": "amazons3", "database_dsn": "d"},
        {"storage_backend": "overlay", "database_dsn": "d"},
        {"storage_backend": "tape", "database_dsn": "d"},
        {"firewall_acls": {"create": "everyone"}, "database_dsn": "d"},
        {},
    ],
)
def test_unusable_configs_are_refused_with_a_reason(config):
    with pytest.raises(SiteError):
        load_site(config)


def test_canonical_names():
    assert rows.canonical_name("/a/caf%c3%a9") == ("/a/caf%C3%A9", None)
    assert rows.canonical_name("/a/paren(1)") == ("/a/paren%281%29", None)
    assert rows.canonical_name("/a/slash%2Fin") == ("/a/slash%2Fin", None)
    name, reason = rows.canonical_name("/a/%ff")
    assert name == "/a/%FF" and "not UTF-8" in reason
    assert rows.canonical_name("/a/%2e%2e")[0] == "/a/%2E%2E"
    assert rows.canonical_name("no-slash")[0] == ""


def test_metadata_decoding():
    md5 = hashlib.md5(b"x")
    fields, problems = rows.metadata(
        json.dumps({"content-type": "text/plain", "content-md5": md5.hexdigest(), "x": 1}),
        None,
        None,
    )
    assert fields == {
        "content-type": "text/plain",
        "content-md5": base64.b64encode(md5.digest()).decode(),
    }
    assert len(problems) == 1 and "'x'" in problems[0]
    legacy, _ = rows.metadata(None, "text/csv", md5.hexdigest())
    assert legacy["content-type"] == "text/csv" and legacy["content-md5"]
    assert rows.metadata('{"content-sha256": "abc"}', None, None)[0] == {}
