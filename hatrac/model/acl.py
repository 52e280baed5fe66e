"""Access control: which roles an ACL chain grants for an access mode.

Pure logic over :mod:`hatrac.model.resources`; no database, no Flask. These
are upstream Hatrac's rules (the table is in docs/acls.md):

* ``owner`` on a resource implies every right on that resource.
* ``subtree-X`` on a namespace grants ``X`` on that namespace and on every
  namespace, object and version beneath it.
* An object's own ACLs are about the object: ``read`` lets a role list its
  versions, ``owner`` and ``update`` manage it. They grant nothing on the
  versions' bytes or metadata.
* An object's ``subtree-owner`` and ``subtree-read`` apply to its versions
  only (not to the object: they give no versions listing).
* A version's own ``owner`` and ``read`` grant that version.
"""

from __future__ import annotations

from typing import Optional

from .client import Client
from .resources import ACCESS_MODES, Name, ObjectVersion

# a version with no ACL of its own: what a role may read through inheritance alone
_BARE_VERSION = ObjectVersion(id=0, name_id=0, name="", version="", size=0, storage_key="")


def granted_roles(
    access: str, chain: list[Name], version: Optional[ObjectVersion] = None
) -> set[str]:
    """The roles that hold ``access`` on the last element of ``chain`` (or on ``version``).

    ``chain`` runs from the root namespace down to the resource itself (for a
    version: down to its object).
    """
    own = version.acls if version is not None else chain[-1].acls
    roles = set(own.get("owner", ()))
    if access != "owner":
        roles.update(own.get(access, ()))
    for name in chain:
        # a namespace's subtree ACLs cover itself and everything beneath; an
        # object's cover only its versions
        if name.is_namespace or version is not None:
            roles.update(name.acls.get("subtree-owner", ()))
            if access != "owner":
                roles.update(name.acls.get("subtree-" + access, ()))
    return roles


def allows(
    client: Client, access: str, chain: list[Name], version: Optional[ObjectVersion] = None
) -> bool:
    """True when one of the client's roles holds ``access``."""
    return not client.roles.isdisjoint(granted_roles(access, chain, version))


def may_know_versions(client: Client, chain: list[Name]) -> bool:
    """Whether the client may learn which versions an object has: it may list them
    (``read`` on the object), or read every one of them through inheritance.

    Decides whether a missing version is a 404 (or a versionless object a 409)
    rather than a 401/403."""
    return allows(client, "read", chain) or allows(client, "read", chain, _BARE_VERSION)


def normalize_acls(kind: str, acls: dict) -> dict:
    """A full ACL set for a resource kind: every access mode, lists without duplicates."""
    return {mode: list(dict.fromkeys(acls.get(mode, ()))) for mode in ACCESS_MODES[kind]}
