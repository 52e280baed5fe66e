"""Defect 6 of issue 13: a segment that is or starts with an encoded "/" is
data (a name of its own) or a 400, never a redirect to another name."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize("backends", [("sqlite", "filesystem")], indirect=True)
@pytest.mark.parametrize(
    "raw", ["/hatrac/%2Ftop", "/hatrac/%2F", "/hatrac/%2F%2Fx", "/hatrac/a/%2Fb"]
)
def test_leading_encoded_slash_is_never_redirected(client, raw):
    for method in ("GET", "PUT", "DELETE", "HEAD"):
        reply = client.request(method, raw, data=b"x" if method == "PUT" else None)
        assert reply.status not in (301, 302, 307, 308), (method, raw, reply.headers)
        assert reply.status < 500
    # a PUT that succeeds binds the name as sent, encoded slash included
    made = client.put(raw, data=b"payload")
    if made.status == 201:
        assert made.headers["Location"].split(":")[0] == raw
        assert client.get(raw).body == b"payload"
        assert client.get(raw.replace("%2F", "", 1)).status == 404
    else:
        assert made.status in (400, 401, 403, 404, 409), made.text
