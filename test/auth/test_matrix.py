"""The authorization matrix over a real server, on both databases.

Who: anonymous, the owner, a subtree-owner, holders of subtree-read,
subtree-create and subtree-update, a member through nested groups, and an
authenticated non-member. What: every protocol operation. Each cell is the
expected outcome: allowed (2xx), or denied (401 for anonymous, 403 for the
others). Everyone but the nested-group member authenticates with an API
token; the member logs in with a session cookie as DERIVA does.
"""

from __future__ import annotations

import time

import requests
from clients import LiveProtocolClient

NS = {"Content-Type": "application/x-hatrac-namespace"}
WHO = ["anonymous", "owner", "subtree_owner", "reader", "creator", "updater", "member", "outsider"]

# operation -> the principals allowed to do it (everyone else is denied)
EVERYTHING = {"owner", "subtree_owner"}
READERS = EVERYTHING | {"reader", "member"}
EXPECTED = {
    "list namespace": READERS,
    "create namespace": EVERYTHING | {"creator"},
    "create object": EVERYTHING | {"creator"},
    "update object": EVERYTHING | {"updater"},
    "read version": READERS,
    "read version metadata": READERS,
    "list versions": READERS,
    "read ACLs": EVERYTHING,
    "change ACL": EVERYTHING,
    "delete version": EVERYTHING,
    "delete object": EVERYTHING,
    "delete namespace": EVERYTHING,
}


def operations(client: LiveProtocolClient, base: str, who: str, versions: dict) -> dict:
    """Run every operation as ``who`` on resources set aside for it; status per operation."""
    user = None if who == "anonymous" else who
    mine = f"{base}/ns"
    return {
        "list namespace": client.get(mine, user=user),
        "create namespace": client.put(f"{mine}/new_ns_{who}", user=user, headers=NS),
        "create object": client.put(f"{mine}/new_obj_{who}", user=user, data=b"new"),
        "update object": client.put(f"{mine}/obj", user=user, data=who.encode()),
        "read version": client.get(f"{mine}/obj:{versions['obj']}", user=user),
        "read version metadata": client.get(f"{mine}/obj:{versions['obj']};metadata", user=user),
        "list versions": client.get(f"{mine}/obj;versions", user=user),
        "read ACLs": client.get(f"{mine}/obj;acl", user=user),
        "change ACL": client.put(f"{mine}/obj;acl/read/someone_{who}", user=user),
        "delete version": client.delete(f"{mine}/vdel_{who}:{versions['vdel_' + who]}", user=user),
        "delete object": client.delete(f"{mine}/odel_{who}", user=user),
        "delete namespace": client.delete(f"{mine}/nsdel_{who}", user=user),
    }


def test_authorization_matrix(server, accounts):
    url = server.url
    credentials = {}
    for who in WHO[1:]:
        accounts.add_user(who, "pw-" + who)
        if who != "member":
            _, token = accounts.issue_token(who)
            credentials[who] = lambda kwargs, token=token: kwargs["headers"].update(
                {"Authorization": f"Bearer {token}"}
            )
    # member belongs to g:inner, which belongs to g:outer, which holds subtree-read
    for group in ("inner", "middle", "outer"):
        accounts.add_group(group)
    accounts.change_membership("inner", "member", True)
    accounts.change_membership("middle", "g:inner", True)
    accounts.change_membership("outer", "g:middle", True)
    accounts.change_membership("inner", "g:outer", True)  # and a cycle, for good measure
    login = requests.Session()
    reply = login.post(url + "/authn/session", data={"username": "member", "password": "pw-member"})
    assert reply.status_code == 201
    cookie = login.cookies.get("webauthn")
    credentials["member"] = lambda kwargs: kwargs.update(cookies={"webauthn": cookie})
    client = LiveProtocolClient(url, credentials)

    top = f"/hatrac/matrix_{time.time_ns()}"
    assert client.mkdir(top, user="owner").status == 201
    base = top
    for access, role in (
        ("subtree-owner", "subtree_owner"),
        ("subtree-read", "reader"),
        ("subtree-read", "g:outer"),
        ("subtree-create", "creator"),
        ("subtree-update", "updater"),
    ):
        assert client.put(f"{top};acl/{access}/{role}", user="owner").status == 204
    assert client.mkdir(f"{base}/ns", user="owner").status == 201
    versions = {}
    reply = client.put(f"{base}/ns/obj", user="owner", data=b"v1")
    assert reply.status == 201
    versions["obj"] = reply.text.strip().rsplit(":", 1)[1]
    for who in WHO:
        reply = client.put(f"{base}/ns/vdel_{who}", user="owner", data=b"x")
        versions["vdel_" + who] = reply.text.strip().rsplit(":", 1)[1]
        assert client.put(f"{base}/ns/odel_{who}", user="owner", data=b"x").status == 201
        assert client.mkdir(f"{base}/ns/nsdel_{who}", user="owner").status == 201

    mismatches = []
    table = {}
    for who in WHO:
        results = operations(client, base, who, versions)
        for operation, reply in results.items():
            allowed = who in EXPECTED[operation]
            status = reply.status
            table[(who, operation)] = status
            if allowed:
                ok = 200 <= status < 300
            else:
                ok = status == (401 if who == "anonymous" else 403)
            if not ok:
                mismatches.append(f"{who} / {operation}: {status} {reply.text[:80]!r}")
    assert not mismatches, "\n".join(mismatches)
    assert all(status < 500 for status in table.values())
