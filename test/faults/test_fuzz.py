"""A seeded fuzz of paths, headers and JSON bodies (issue 13): a few thousand
requests, in process, on SQLite and filesystem storage. Any 5xx fails the
test and prints the seed; ``HATRAC_FUZZ_SEED`` replays one run. The one
exception is 501 for what docs/protocol.md lists as not implemented (several
byte ranges, ``Range`` on a namespace), which is a protocol answer."""

from __future__ import annotations

import json
import os
import random

import pytest
from clients import FlaskProtocolClient

import hatrac

REQUESTS = int(os.environ.get("HATRAC_FUZZ_REQUESTS", 3000))
SEGMENTS = [
    "a",
    "b",
    "ns",
    "obj",
    "%2F",
    "%2Fx",
    "x%2F",
    "%2f%2F",
    "%00",
    "%ZZ",
    "%",
    "..",
    ".",
    "",
    "%C3%A9",
    "%FF",
    "%E2%80%AE",
    "a%20b",
    "~",
    "x" * 300,
    "%3B",
    "%3A",
    "%25",
    "*",
    "é",
]
SUFFIXES = [
    "",
    ";acl",
    ";acl/read",
    ";acl/owner/alice",
    ";acl/bogus",
    ";versions",
    ";metadata",
    ";metadata/content-type",
    ";metadata/content-md5",
    ";upload",
    ";upload/01J",
    ";upload/x/0",
    ";nope",
    ":",
    ":01J",
    ":%2F",
    ";",
    ";acl/read/%2F",
    "?parents=true",
    "?x=%ZZ",
]
METHODS = ["GET", "HEAD", "PUT", "POST", "DELETE", "GET", "PUT"]
HEADER_VALUES = {
    "Content-Type": [
        "application/x-hatrac-namespace",
        "application/json",
        "text/plain",
        "",
        'a/b; c="',
        "\x7f",
    ],
    "Content-MD5": ["", "zz", "AAAAAAAAAAAAAAAAAAAAAA==", "0" * 32, "===="],
    "Content-SHA256": ["", "xyz", "A" * 43 + "="],
    "If-Match": ["*", '"x"', 'W/"x"', "garbage", '"' * 5],
    "If-None-Match": ["*", '"x"', ""],
    "Range": ["bytes=0-0", "bytes=-1", "bytes=5-1", "bytes=", "items=1-2", "bytes=0-0,2-3,x"],
    "Content-Disposition": ["filename*=UTF-8''a.txt", "attachment", "filename*=x''%ZZ", ";;;"],
    "Accept": ["application/json", "text/html", "*/*", "image/png", "application/problem+json"],
    "X-Request-Id": ["abc", "x" * 100, "\u00e9"],
}


def _json_value(rng: random.Random, depth: int = 0):
    kind = rng.randrange(8 if depth < 4 else 5)
    if kind == 0:
        return rng.choice([None, True, False])
    if kind == 1:
        return rng.choice([0, -1, 1, 2**63, 1.5, 10**30, 5 * 1024**4 + 1])
    if kind == 2:
        return rng.choice(["", "x", "*", "alice", "/hatrac/ns/obj", "\x00", "é" * 10])
    if kind in (3, 4):
        return rng.choice(["chunk-length", "content-length", "command", "rename_from"])
    if kind in (5, 6):
        keys = [
            "chunk-length",
            "content-length",
            "content-type",
            "content-md5",
            "command",
            "source_name",
            "source_versions",
            "copy_acls",
            "expires_in",
            "username",
        ]
        return {rng.choice(keys): _json_value(rng, depth + 1) for _ in range(rng.randrange(4))}
    return [_json_value(rng, depth + 1) for _ in range(rng.randrange(4))]


def _body(rng: random.Random) -> bytes:
    kind = rng.randrange(6)
    if kind == 0:
        return b""
    if kind == 1:
        return os.urandom(rng.randrange(1, 64))
    if kind == 2:
        depth = rng.choice([2, 40, 3000])
        return b"[" * depth + b"]" * depth
    return json.dumps(_json_value(rng)).encode()


@pytest.fixture
def app(tmp_path):
    application = hatrac.create_app(
        {
            "data_directory": str(tmp_path / "data"),
            "root_acls": {"owner": ["admin"], "create": ["*"], "read": ["*"]},
            "access_log": False,
        }
    )
    application.testing = True
    yield application
    application.extensions["hatrac"].close()


def test_fuzz_never_answers_5xx(app):
    seed = int(os.environ.get("HATRAC_FUZZ_SEED") or random.SystemRandom().randrange(10**9))
    rng = random.Random(seed)
    client = FlaskProtocolClient(app)
    client.put(
        "/hatrac/ns", user="alice", headers={"Content-Type": "application/x-hatrac-namespace"}
    )
    client.put("/hatrac/ns/obj", user="alice", data=b"hello")
    failures = []
    for number in range(REQUESTS):
        path = "/hatrac/" + "/".join(rng.choice(SEGMENTS) for _ in range(rng.randrange(1, 4)))
        path += rng.choice(SUFFIXES)
        method = rng.choice(METHODS)
        headers = {
            name: rng.choice(values)
            for name, values in HEADER_VALUES.items()
            if rng.random() < 0.25
        }
        user = rng.choice([None, "alice", "admin", "mallory"])
        body = _body(rng) if method in ("PUT", "POST") else None
        try:
            reply = client.request(method, path, user=user, headers=headers, data=body)
        except Exception as error:  # the test client refused to build it: not our server
            if isinstance(error, (ValueError, UnicodeError, TypeError)):
                continue
            raise
        if reply.status >= 500 and not (reply.status == 501 and "Range" in headers):
            failures.append(
                (
                    number,
                    method,
                    path,
                    headers,
                    body[:80] if body else body,
                    reply.status,
                    reply.text[:200],
                )
            )
    assert not failures, f"seed {seed}: {len(failures)} 5xx, first: {failures[:3]}"
    print(f"fuzz seed {seed}: {REQUESTS} requests, no 5xx")
