"""Parsing raw request paths: syntax characters, encodings and bad input."""

from __future__ import annotations

import pytest

from hatrac.errors import BadRequest
from hatrac.urls import PathParser, canonical_name, parent_name, resource_url, split_name

parser = PathParser("A-Za-z0-9_.~-", 255, 4096)


def test_root():
    for raw in ("", "/"):
        parsed = parser.parse(raw)
        assert parsed.is_root and parsed.name == "/"


def test_names_versions_and_subresources():
    parsed = parser.parse("/a/b:V1;acl/read/%2A")
    assert parsed.segments == ("a", "b")
    assert parsed.version == "V1"
    assert parsed.subresource == "acl"
    assert parsed.arguments == ("read", "*")
    assert parser.parse("/a;versions").subresource == "versions"
    assert parser.parse("/a;acl/").trailing_slash
    upload = parser.parse("/a/b;upload/JOB/12")
    assert upload.arguments == ("JOB", "12")


def test_encoded_syntax_characters_are_data():
    parsed = parser.parse("/a%2Fb/c%3Ad%3Be")
    assert parsed.segments == ("a/b", "c:d;e")
    assert parsed.version is None and parsed.subresource is None
    assert parsed.name == "/a%2Fb/c%3Ad%3Be"
    assert parser.parse("/a%2fb").name == "/a%2Fb"  # canonical form upper-cases escapes


def test_utf8_and_tolerated_characters():
    parsed = parser.parse("/%C3%A9t%C3%A9/file(1)+x")
    assert parsed.segments == ("été", "file(1)+x")
    assert parsed.name == "/%C3%A9t%C3%A9/file%281%29%2Bx"


@pytest.mark.parametrize(
    "raw",
    [
        "/a//b",
        "/.",
        "/a/..",
        "/a/%2E%2E",
        "/a/%2e",
        "/a/%FF",
        "/a/%C3",
        "/a/%00",
        "/a/%0A",
        "/a/%7F",
        "/a:b/c",
        "/a:b:c",
        "/a:",
        "/a b",
        '/a"b',
        "/a;bogus",
        "/a;upload//1",
        "/a/%G1",
    ],
)
def test_bad_paths_are_400(raw):
    with pytest.raises(BadRequest):
        parser.parse(raw)


def test_one_trailing_slash_is_tolerated():
    assert parser.parse("/a/b/").name == "/a/b"
    assert parser.parse("/a/;acl").name == "/a"


def test_roles_may_carry_bare_slashes():
    parsed = parser.parse("/a;acl/read/https://auth.example.org/g")
    assert parsed.arguments == ("read", "https://auth.example.org/g")


def test_length_limits():
    short = PathParser("A-Za-z0-9_.~-", 10, 30)
    short.parse("/" + "a" * 10)
    with pytest.raises(BadRequest):
        short.parse("/" + "a" * 11)
    with pytest.raises(BadRequest):
        short.parse("/" + "/".join(["aaaaaaaaa"] * 4))
    # limits count decoded characters
    short.parse("/" + "%C3%A9" * 10)


def test_name_helpers():
    assert canonical_name(()) == "/"
    assert split_name("/a/b") == ["/", "/a", "/a/b"]
    assert parent_name("/a/b") == "/a"
    assert parent_name("/a") == "/"
    assert resource_url("/hatrac", "/", None) == "/hatrac/"
    assert resource_url("/hatrac", "/a%2Fb", "V") == "/hatrac/a%2Fb:V"


# -- version ids issued elsewhere (imported from upstream Hatrac) ------------------
UPSTREAM_IDS = [
    "FYAMZWT2U2ACLY6Z4F5AQK4JKE",  # upstream's filesystem ids: RFC 4648 base32 (I, L, O, U)
    "ILOUILOUILOUILOUILOUILOU22",
    "3HL4kqtJlcpXroDTDmJ.rmSFXd3dIbrHY",  # AWS S3 VersionIds
    "3/L4kqtJlcpXroDTDmJ+rmSFXd3dIbrHY+MTRCxf3vjVBH40Nr8X8gdRQBpUMLUo",
    "null",  # objects written while bucket versioning was off
    "8f3c1a9e-5b7d-4e2f-9a61-0c4b8d2e7f13",  # MinIO: UUIDs
    "01HZX3K9Q8W7E6R5T4Y3U2I1O0",  # ours look like this (Crockford base32)
]


@pytest.mark.parametrize("version", UPSTREAM_IDS)
def test_any_upstream_version_id_round_trips(version):
    url = resource_url("/hatrac", "/ns/obj", version)
    assert url.startswith("/hatrac/ns/obj:")
    parsed = parser.parse(url[len("/hatrac") :])
    assert parsed.version == version
    assert parsed.name == "/ns/obj"
    # also with a sub-resource after it
    assert parser.parse(url[len("/hatrac") :] + ";metadata/content-type").version == version


def test_version_ids_escape_their_syntax_characters():
    assert resource_url("/hatrac", "/o", "a/b+c:d") == "/hatrac/o:a%2Fb%2Bc%3Ad"
    assert parser.parse("/o:a%2Fb%2Bc%3Ad").version == "a/b+c:d"


def test_version_ids_may_be_longer_than_a_name_segment():
    short = PathParser("A-Za-z0-9_.~-", 10, 30)
    long_id = "v" * 1024  # AWS documents up to 1,024 bytes
    assert short.parse("/o:" + long_id).version == long_id
    with pytest.raises(BadRequest):
        short.parse("/o:" + "v" * 1025)
    with pytest.raises(BadRequest):
        short.parse("/o:" + "%C3%A9" * 513)  # the limit counts UTF-8 bytes


@pytest.mark.parametrize("raw", ["/o:a%00b", "/o:%FF", "/o:a b", "/o:", "/o:a:b", "/o:a%0Ab"])
def test_bad_version_ids_are_400(raw):
    with pytest.raises(BadRequest):
        parser.parse(raw)


def test_new_version_ids_stay_ours():
    from hatrac.model.ids import new_version_id

    crockford = set("0123456789ABCDEFGHJKMNPQRSTVWXYZ")
    ids = [new_version_id() for _ in range(50)]
    assert all(len(v) == 26 and set(v) <= crockford for v in ids)
    assert len(set(ids)) == 50


def test_version_id_digits_are_the_value_most_significant_first():
    import random

    from hatrac.model.ids import encode_id

    def by_hand(value):  # one digit of five bits at a time, least significant first
        digits = []
        for _ in range(26):
            digits.append("0123456789ABCDEFGHJKMNPQRSTVWXYZ"[value & 31])
            value >>= 5
        return "".join(reversed(digits))

    values = [0, 1, 31, 32, 2**80 - 1, 2**127, 2**128 - 1]
    values += [random.getrandbits(128) for _ in range(200)]
    for value in values:
        assert encode_id(value) == by_hand(value)
    # the time in the first ten digits: ids of later milliseconds sort after
    assert encode_id(5 << 80) < encode_id((6 << 80) - 1) < encode_id(6 << 80)


def test_plain_segments_parse_as_escaped_ones_do():
    # a segment with nothing escaped takes a shortcut; its result is the same
    for raw, spelled in (("abc", "ab%63"), ("A-b_c.d~e", "A%2Db_c.d%7Ee"), ("x.y", "x%2Ey")):
        assert parser.parse("/ns/" + raw).name == parser.parse("/ns/" + spelled).name
    for raw in ("/ns/.", "/ns/..", "/ns/./o"):
        with pytest.raises(BadRequest):
            parser.parse(raw)


def test_legacy_names_accept_what_upstream_stored():
    legacy = PathParser("A-Za-z0-9_.~-", 255, 4096, legacy_names=True)
    assert legacy.parse("/a/%FF").name == "/a/%FF"
    assert legacy.parse("/a/%2e%2E/b").name == "/a/%2E%2E/b"
    assert legacy.parse("/a/%01x").name == "/a/%01x"
    assert legacy.parse("/a/caf%c3%a9").name == "/a/caf%C3%A9"
    for raw in ("/a/..", "/a/.", "/a//b"):
        with pytest.raises(BadRequest):
            legacy.parse(raw)
    with pytest.raises(BadRequest):
        parser.parse("/a/%FF")  # off by default


def test_parse_remembers_good_paths_and_never_bad_ones():
    parser = PathParser("A-Za-z0-9_.~-", 256, 4096)
    first = parser.parse("/ns/obj:VERSION1")
    assert parser.parse("/ns/obj:VERSION1") is first  # immutable, parsed once
    for _ in range(2):  # a refused path is refused every time
        with pytest.raises(BadRequest):
            parser.parse("/ns//obj")
    long_path = "/" + "/".join(["a" * 100] * 6)
    assert parser.parse(long_path).name == long_path  # too long to keep: parsed anew
