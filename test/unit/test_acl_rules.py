"""The ACL rules as pure logic."""

from __future__ import annotations

from hatrac.model.acl import allows, granted_roles
from hatrac.model.client import ANONYMOUS, Client
from hatrac.model.resources import Name, ObjectVersion


def name(path, kind="namespace", **acls):
    return Name(
        id=hash(path), name=path, kind=kind, acls={k.replace("_", "-"): v for k, v in acls.items()}
    )


def version(**acls):
    return ObjectVersion(
        id=1, name_id=1, name="/a/o", version="V", size=0, storage_key="V", acls=acls
    )


def test_owner_implies_everything():
    chain = [name("/"), name("/a", owner=["alice"])]
    alice = Client("alice")
    for access in ("read", "create", "owner"):
        assert allows(alice, access, chain)


def test_subtree_rights_flow_down():
    chain = [name("/", subtree_read=["bob"]), name("/a"), name("/a/o", kind="object")]
    assert allows(Client("bob"), "read", chain)
    assert not allows(Client("bob"), "update", chain)
    assert allows(Client("bob"), "read", chain, version())


def test_object_acls_are_about_the_object():
    chain = [
        name("/"),
        name("/a/o", kind="object", read=["carol"], owner=["olga"], subtree_read=["sam"]),
    ]
    # object read and owner: the versions listing and the object, not the versions
    assert allows(Client("carol"), "read", chain)
    assert not allows(Client("carol"), "read", chain, version())
    assert allows(Client("olga"), "owner", chain)
    assert not allows(Client("olga"), "read", chain, version())
    assert not allows(Client("olga"), "owner", chain, version())
    # object subtree-read: every version, but not the listing
    assert allows(Client("sam"), "read", chain, version())
    assert not allows(Client("sam"), "read", chain)
    assert allows(Client("vic"), "read", chain, version(read=["vic"]))


def test_star_and_groups():
    chain = [
        name("/", read=["*"]),
    ]
    assert allows(ANONYMOUS, "read", chain)
    chain = [name("/", read=["lab"])]
    assert allows(Client("x", frozenset({"lab"})), "read", chain)
    assert not allows(Client("x"), "read", chain)


def test_granted_roles_for_owner_ignore_other_modes():
    chain = [name("/", subtree_read=["r"]), name("/a", owner=["o"], read=["r2"])]
    assert granted_roles("owner", chain) == {"o"}
