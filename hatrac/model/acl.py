"""Access control: which roles an ACL chain grants for an access mode.

Pure logic over :mod:`hatrac.model.resources`; no database, no Flask.

Rules (see docs/acls.md):

* ``owner`` on a resource implies every right on it.
* ``subtree-X`` on a namespace or object grants ``X`` on that resource and on
  everything beneath it (namespaces, objects, versions).
* An object's ``owner`` and ``read`` also govern its versions, so a new
  version is readable per its object's ACLs; a version's own ``owner`` and
  ``read`` add to that.
"""

from __future__ import annotations

from typing import Optional

from .client import Client
from .resources import ACCESS_MODES, Name, ObjectVersion


def granted_roles(
    access: str, chain: list[Name], version: Optional[ObjectVersion] = None
) -> set[str]:
    """The roles that hold ``access`` on the last element of ``chain`` (or on ``version``).

    ``chain`` runs from the root namespace down to the resource itself.
    """
    target = chain[-1]
    roles = set(target.acls.get("owner", ()))
    if access != "owner":
        roles.update(target.acls.get(access, ()))
    for name in chain:
        roles.update(name.acls.get("subtree-owner", ()))
        if access != "owner":
            roles.update(name.acls.get("subtree-" + access, ()))
    if version is not None:
        roles.update(version.acls.get("owner", ()))
        if access != "owner":
            roles.update(version.acls.get(access, ()))
    return roles


def allows(
    client: Client, access: str, chain: list[Name], version: Optional[ObjectVersion] = None
) -> bool:
    """True when one of the client's roles holds ``access``."""
    return not client.roles.isdisjoint(granted_roles(access, chain, version))


def normalize_acls(kind: str, acls: dict) -> dict:
    """A full ACL set for a resource kind: every access mode, lists without duplicates."""
    return {mode: list(dict.fromkeys(acls.get(mode, ()))) for mode in ACCESS_MODES[kind]}
