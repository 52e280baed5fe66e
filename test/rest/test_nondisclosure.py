"""Non-disclosure: a client that may not see a name learns nothing of it.

Without read rights on the nearest namespace that exists above a name (or on
the name itself), a client must get one answer (the same status, the same
words) for every request about it, whether the name is bound or not, a
namespace or an object, deleted, under an object, or with or without
versions; and never a version id it may not read. Clients that may see the
name keep their precise answers (404, 409, "is a namespace").
"""

from __future__ import annotations

import json
from urllib.parse import quote

import pytest

NS = {"Content-Type": "application/x-hatrac-namespace"}
PROBLEM = {"Accept": "application/problem+json"}
JOB = {"chunk-length": 10, "content-length": 5}
# requests refused for what they are, whatever the name: the same 400 everywhere
MALFORMED = {"PUT bad digest"}
# an upload job nobody made (job URLs are capabilities, never listed): 404 everywhere
NO_JOB = {"GET job", "PUT chunk", "POST job", "DELETE job"}

# what is at each name under the private namespace
STATES = [
    "obj",  # an object with a version
    "empty",  # an object bound by an upload job: no version yet
    "sub",  # a namespace
    "gone",  # a deleted object: a tombstone
    "missing",  # nothing
    "obj/below",  # beneath an object
    "gone/below",  # beneath a tombstone
    "missing/below",  # beneath nothing
    "sub/missing",  # nothing, in a namespace that exists
]


def requests_about(source: str):
    """(label, method, path template, keyword arguments) of every request about a
    name ``{n}``; ``{v}`` is the id of the version of ``obj``; ``source`` is an
    object the asking client owns (a rename source)."""

    def rename(source_name: str) -> dict:
        return {"json": {"command": "rename_from", "source_name": source_name}}

    return [
        ("GET", "GET", "{n}", {}),
        ("HEAD", "HEAD", "{n}", {}),
        ("GET html", "GET", "{n}", {"headers": {"Accept": "text/html"}}),
        ("GET range", "GET", "{n}", {"headers": {"Range": "bytes=0-1"}}),
        ("GET version", "GET", "{n}:{v}", {}),
        ("GET other version", "GET", "{n}:01ARZ3NDEKTSV4RRFFQ69G5FAV", {}),
        ("HEAD version", "HEAD", "{n}:{v}", {}),
        ("GET versions", "GET", "{n};versions", {}),
        ("GET versions html", "GET", "{n};versions", {"headers": {"Accept": "text/html"}}),
        ("GET acl", "GET", "{n};acl", {}),
        ("GET acl mode", "GET", "{n};acl/update", {}),
        ("GET acl role", "GET", "{n};acl/owner/alice", {}),
        ("GET version acl", "GET", "{n}:{v};acl", {}),
        ("PUT acl mode", "PUT", "{n};acl/update", {"json": ["bob"]}),
        ("PUT acl role", "PUT", "{n};acl/subtree-update/bob", {}),
        ("DELETE acl", "DELETE", "{n};acl/read", {}),
        ("DELETE version acl", "DELETE", "{n}:{v};acl/read/bob", {}),
        ("GET metadata", "GET", "{n};metadata", {}),
        ("GET metadata field", "GET", "{n};metadata/content-type", {}),
        ("GET version metadata", "GET", "{n}:{v};metadata", {}),
        ("PUT metadata", "PUT", "{n};metadata/content-type", {"data": b"text/plain"}),
        ("DELETE metadata", "DELETE", "{n}:{v};metadata/content-disposition", {}),
        ("PUT object", "PUT", "{n}", {"data": b"bytes"}),
        ("PUT object parents", "PUT", "{n}?parents=true", {"data": b"bytes"}),
        (
            "PUT object 100-continue",
            "PUT",
            "{n}",
            {"data": b"b", "headers": {"Expect": "100-continue"}},
        ),
        (
            "PUT object If-None-Match",
            "PUT",
            "{n}",
            {"data": b"b", "headers": {"If-None-Match": "*"}},
        ),
        ("PUT object If-Match", "PUT", "{n}", {"data": b"b", "headers": {"If-Match": "*"}}),
        ("PUT bad digest", "PUT", "{n}", {"data": b"b", "headers": {"Content-MD5": "AAAA"}}),
        ("PUT namespace", "PUT", "{n}", {"headers": NS}),
        ("PUT namespace parents", "PUT", "{n}?parents=true", {"headers": NS}),
        ("PUT namespace If-None-Match", "PUT", "{n}", {"headers": {**NS, "If-None-Match": "*"}}),
        ("PUT namespace If-Match", "PUT", "{n}", {"headers": {**NS, "If-Match": "*"}}),
        ("PUT namespace bad digest", "PUT", "{n}", {"headers": {**NS, "Content-MD5": "AAAA"}}),
        ("DELETE", "DELETE", "{n}", {}),
        ("DELETE If-Match", "DELETE", "{n}", {"headers": {"If-Match": '"x"'}}),
        ("DELETE version", "DELETE", "{n}:{v}", {}),
        ("POST upload", "POST", "{n};upload", {"json": JOB}),
        ("POST upload parents", "POST", "{n};upload?parents=true", {"json": JOB}),
        ("GET upload", "GET", "{n};upload", {}),
        ("GET job", "GET", "{n};upload/01ARZ3NDEKTSV4RRFFQ69G5FAV", {}),
        ("PUT chunk", "PUT", "{n};upload/01ARZ3NDEKTSV4RRFFQ69G5FAV/0", {"data": b"12345"}),
        ("POST job", "POST", "{n};upload/01ARZ3NDEKTSV4RRFFQ69G5FAV", {}),
        ("DELETE job", "DELETE", "{n};upload/01ARZ3NDEKTSV4RRFFQ69G5FAV", {}),
        ("rename to it", "POST", "{n}", rename(source)),
        ("rename to it parents", "POST", "{n}?parents=true", rename(source)),
        ("rename from it", "POST", "{source}-renamed", rename("{n}")),
    ]


@pytest.fixture
def private(client, ns) -> dict:
    """A namespace of alice's that nobody else may list, holding every state."""
    base = ns + "/private"
    assert client.mkdir(base).status == 201
    made = client.put(base + "/obj", user="alice", data=b"secret")
    assert made.status == 201
    version = made.headers["Location"].rsplit(":", 1)[1]
    assert client.post(base + "/empty;upload", user="alice", json=JOB).status == 201
    assert client.mkdir(base + "/sub").status == 201
    assert client.put(base + "/gone", user="alice", data=b"x").status == 201
    assert client.delete(base + "/gone", user="alice").status == 204
    # a source that any client owns, for renames (anonymous clients own nothing else)
    assert client.mkdir(ns + "/public").status == 201
    assert client.put(ns + "/public;acl/subtree-owner/%2A", user="alice").status == 204
    assert client.put(ns + "/public/src", user="alice", data=b"src").status == 201
    return {"base": base, "version": version, "source": ns + "/public/src"}


def answer(client, user, method, path, kwargs) -> tuple:
    """What a client can tell from an answer: status, headers that name things, words."""
    headers = {**PROBLEM, **kwargs.get("headers", {})}
    reply = client.request(method, path, user=user, **{**kwargs, "headers": headers})
    named = {key: reply.headers.get(key) for key in ("Location", "Content-Location", "ETag")}
    words = reply.text
    if reply.body and reply.headers.get("Content-Type", "").startswith("application/problem"):
        words = json.loads(reply.body)["detail"]
    # pages quote the request id, which differs from request to request
    words = words.replace(reply.headers.get("X-Request-Id", "?"), "REQUEST")
    return reply.status, named, words


def unnamed(text: str, name: str) -> str:
    """``text`` with the name asked for (in every spelling an answer has) left out."""
    for spelling in (name, name[len("/hatrac") :]):
        text = text.replace(quote(spelling, safe=""), "NAME").replace(spelling, "NAME")
    return text


@pytest.mark.parametrize("user", [None, "bob"], ids=["anonymous", "no-rights"])
def test_unseen_names_all_answer_alike(client, private, user):
    base, version = private["base"], private["version"]
    refused = 401 if user is None else 403
    for label, method, template, kwargs in requests_about(private["source"]):
        answers = {}
        for state in STATES:
            name = f"{base}/{state}"
            path = template.format(n=name, v=version, source=private["source"])
            sent = kwargs
            if "json" in kwargs and "source_name" in kwargs["json"]:
                # as DERIVA and upstream send it: the name after the prefix /hatrac
                source_name = kwargs["json"]["source_name"].format(n=name)
                source_name = source_name.removeprefix("/hatrac")
                sent = {**kwargs, "json": {**kwargs["json"], "source_name": source_name}}
            status, named, words = answer(client, user, method, path, sent)
            assert version not in str(named) + words, (label, state, named, words)
            # the name asked for is the only thing an answer may tell
            answers[state] = unnamed(str((status, named, words)), name)
        first = answers[STATES[0]]
        expected = (f"({refused},", "(303,")
        if label in MALFORMED or label in NO_JOB:
            expected = "(400," if label in MALFORMED else "(404,"
        assert first.startswith(expected), (label, first)
        differing = {state: got for state, got in answers.items() if got != first}
        assert not differing, (label, first, differing)
    # nothing was changed by all that
    assert client.get(f"{base}/obj", user="alice").body == b"secret"
    assert client.get(base, user="alice").json() == [f"{base}/{n}" for n in ("empty", "obj", "sub")]


def test_clients_that_see_the_name_keep_their_answers(client, private):
    """carol may list the private namespace (not read what is in it): she is told
    what is there, as before; the id of a version she may not read is still hers
    to learn only by reading it."""
    base, version = private["base"], private["version"]
    assert client.put(base + ";acl/read/carol", user="alice").status == 204

    def status(method, path, **kwargs):
        return client.request(method, path, user="carol", **kwargs).status

    assert status("GET", base + "/missing") == 404
    assert status("GET", base + "/missing/below") == 404
    assert status("PUT", base + "/missing/below", data=b"x") == 404
    assert status("PUT", base + "/sub", data=b"x") == 409
    assert status("PUT", base + "/sub", headers=NS) == 409
    assert status("PUT", base + "/obj/below?parents=true", data=b"x") == 409
    assert status("PUT", base + "/gone", headers=NS) == 409
    assert status("GET", base + f"/sub:{version}") == 404
    assert status("GET", base + "/sub;versions") == 404
    assert status("GET", base + "/sub;metadata") == 409
    assert status("GET", base + "/sub;upload") == 404
    assert (
        status(
            "POST",
            base + "/x",
            json={"command": "rename_from", "source_name": base.removeprefix("/hatrac") + "/sub"},
        )
        == 409
    )
    # refused without a version id, in the same words whether there is a version or not
    for path in (base + "/obj", base + "/obj;metadata"):
        reply = client.get(path, user="carol", headers=PROBLEM)
        assert reply.status == 403 and version not in reply.text, reply.text
    obj = client.get(base + "/obj", user="carol", headers=PROBLEM).json()["detail"]
    empty = client.get(base + "/empty", user="carol", headers=PROBLEM).json()["detail"]
    assert obj.replace("/obj", "/NAME") == empty.replace("/empty", "/NAME")
    # and the owner's answers are what they were
    assert client.put(base + "/sub", user="alice", data=b"x").status == 409
    assert client.get(base + "/missing", user="alice").status == 404
    assert client.get(base + "/empty", user="alice").status == 409
    assert client.put(base + "/obj;acl/create/bob", user="alice").status == 400
    assert client.get(base + "/obj", user="alice").headers["Content-Location"].endswith(version)


def test_creators_learn_what_blocks_their_creation(client, private):
    """A client that may create in a namespace (but not list it) hears the 409s of the
    names there, as it would learn them by creating; nothing of names elsewhere."""
    base = private["base"]
    assert client.put(base + ";acl/create/dave", user="alice").status == 204
    assert client.put(base + "/sub", user="dave", headers=NS).status == 409
    assert client.put(base + "/sub", user="dave", data=b"x").status == 409
    assert client.put(base + "/gone", user="dave", data=b"x").status == 409
    assert client.put(base + "/obj/below?parents=true", user="dave", data=b"x").status == 409
    # beneath a namespace dave may not create in: refused, whatever is there
    existing = client.put(base + "/sub/missing", user="dave", headers={**NS, **PROBLEM})
    missing = client.put(base + "/missing/below", user="dave", headers={**NS, **PROBLEM})
    assert existing.status == missing.status == 403


def test_a_drop_box_is_known_to_those_who_may_write_into_it(client, private):
    """A right granted on the name itself tells the client it exists (here create in a
    namespace it may not list: a drop box). Its PUT of the name hears the 409 of a
    bound name, which hatrac-client's put -r takes as "there"."""
    base = private["base"]
    assert client.put(base + "/sub;acl/create/erin", user="alice").status == 204
    assert client.put(base + "/sub", user="erin", headers=NS).status == 409
    assert client.put(base + "/sub/dropped", user="erin", data=b"x").status == 201
    # what erin may not write into stays unseen
    assert client.put(base + "/gone", user="erin", headers={**NS, **PROBLEM}).status == 403
    assert client.put(base + "/empty", user="erin", headers={**NS, **PROBLEM}).status == 403
