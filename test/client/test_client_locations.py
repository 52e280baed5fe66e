"""How hatrac-client reads remote paths (no server needed)."""

from __future__ import annotations

import pytest

from hatrac.client.locations import (
    from_url,
    join_url,
    parse_location,
    relative_name,
    rename_source_name,
)
from hatrac.client.trees import safe_local_parts

REMOTES = {"lab": "https://data.example.org/hatrac"}


def test_remote_paths_are_text_encoded_by_the_client():
    found = parse_location("lab:/ns/a b/100%/é.txt", REMOTES)
    assert found.origin == "https://data.example.org"
    assert found.path == "/hatrac/ns/a%20b/100%25/%C3%A9.txt" and found.version is None
    assert found.basename == "é.txt"
    assert parse_location("lab:", REMOTES).path == "/hatrac"
    assert parse_location("lab:ns/obj:01ABC", REMOTES).resource == "/hatrac/ns/obj:01ABC"
    assert parse_location("lab:/ns/", REMOTES).trailing_slash
    assert parse_location("other:/x", REMOTES) is None  # not a remote: a local path
    assert parse_location("./lab:/x", REMOTES) is None


def test_urls_are_taken_as_encoded():
    found = from_url("http://127.0.0.1:8080/hatrac/ns/a%3Ab:01XYZ")
    assert found.path == "/hatrac/ns/a%3Ab" and found.version == "01XYZ"
    assert found.basename == "a:b"
    assert found.child("x/y").path == "/hatrac/ns/a%3Ab/x%2Fy"
    with pytest.raises(ValueError):
        from_url("ftp://host/x")
    assert join_url("http://h/hatrac", "/a/b").url == "http://h/hatrac/a/b"


def test_remote_names_that_cannot_be_local_files_are_refused():
    root = from_url("http://h/hatrac/ns")
    assert relative_name(root, "/hatrac/ns/a/b%20c") == ["a", "b c"]
    for bad in (["a", ".."], ["a/b"], ["."], ["x\0y"]):
        with pytest.raises(Exception, match="cannot be a local file name"):
            safe_local_parts(bad)


def test_rename_source_is_the_name_after_the_usual_prefix():
    # as DERIVA's rename_obj: /hatrac comes off once, any other path goes whole
    assert rename_source_name("/hatrac/ns/obj") == "/ns/obj"
    assert rename_source_name("/hatrac/hatrac/obj") == "/hatrac/obj"
    assert rename_source_name("/files/ns/obj") == "/files/ns/obj"
    assert rename_source_name("/hatracx/obj") == "/hatracx/obj"


def test_retry_after_is_read_only_as_ascii_seconds():
    from hatrac.client.http import retry_after_seconds

    assert retry_after_seconds("3") == 3.0
    assert retry_after_seconds(" 120 ") == 120.0
    # an HTTP date, a digit that is not ASCII (a latin-1 '\xb2' header byte), junk:
    # the client's own backoff, never a crash
    for value in (None, "", "Wed, 21 Oct 2015 07:28:00 GMT", "\u00b2", "1.5", "-1", "x"):
        assert retry_after_seconds(value) is None


def test_a_503_s_retry_after_sets_the_wait():
    import requests

    from hatrac.client.http import Connection

    connection = Connection("http://127.0.0.1:9", retry_wait=0.001, max_retry_wait=30)
    busy = requests.Response()
    busy.status_code = 503  # a Response whose truth value is False
    busy.headers["Retry-After"] = "7"
    assert connection.retry_delay(0, busy) == 7.0
    busy.headers["Retry-After"] = "600"
    assert connection.retry_delay(0, busy) == 30  # capped
    assert connection.retry_delay(0, None) < 1  # a broken connection: the backoff alone
    connection.close()
