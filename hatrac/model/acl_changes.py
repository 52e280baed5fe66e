"""Reading and changing ACLs (``;acl``): the owner-only operations on a resource's ACLs.

:class:`AccessControl` is mixed into the :class:`~hatrac.model.service.Hatrac`
model; the rules of what each ACL grants are the pure functions of
:mod:`.acl`.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Callable, Optional

from ..errors import BadRequest
from .acl import granted_roles, normalize_acls
from .client import Client
from .conditions import NO_CONDITIONS, Preconditions
from .directory import Transaction
from .resources import ACCESS_MODES, Name, ObjectVersion


@dataclass
class AclTarget:
    """A resource whose ACLs are being read or changed."""

    kind: str  # "namespace", "object" or "version"
    chain: list[Name]
    version: Optional[ObjectVersion] = None

    @property
    def acls(self) -> dict:
        source = self.version.acls if self.version is not None else self.chain[-1].acls
        return normalize_acls(self.kind, source)

    @property
    def etag(self) -> str:
        text = json.dumps(self.acls, sort_keys=True)
        return '"' + hashlib.md5(text.encode(), usedforsecurity=False).hexdigest() + '"'


class AccessControl:
    """The ;acl operations of the model (needs its resolve and authorization helpers)."""

    def _acl_target(
        self,
        tx: Transaction,
        client: Client,
        name: str,
        version: Optional[str],
        lock: Optional[str] = None,
    ) -> AclTarget:
        """The resource whose ACLs are read or changed, if the client owns it.

        Ownership is checked before anything about the resource's kind (its access
        modes) is said: a client that may not see the name hears nothing of it."""
        resolved = self._resolve(tx, name, lock)
        target = self._live(client, resolved)
        if version is None:
            self._require(client, "owner", resolved.chain, name, resolved=resolved)
            return AclTarget(target.kind, resolved.chain)
        found = self._live_version(tx, client, resolved, version, "owner")
        asked = f"{name}:{version}"
        self._require(client, "owner", resolved.chain, asked, found, resolved=resolved)
        return AclTarget("version", resolved.chain, found)

    @staticmethod
    def _check_access_mode(target: AclTarget, access: str) -> None:
        if access not in ACCESS_MODES[target.kind]:
            raise BadRequest(
                f"'{access}' is not an access mode of a {target.kind}; known: "
                + ", ".join(ACCESS_MODES[target.kind])
            )

    def get_acls(self, client: Client, name: str, version: Optional[str] = None) -> AclTarget:
        """The ACLs of a resource; reading them needs ownership."""

        return self.directory.run(lambda tx: self._acl_target(tx, client, name, version))

    def check_access_mode(self, target: AclTarget, access: str) -> None:
        self._check_access_mode(target, access)

    def change_acl(
        self,
        client: Client,
        name: str,
        version: Optional[str],
        access: str,
        change: Callable[[list[str]], list[str]],
        conditions: Preconditions = NO_CONDITIONS,
    ) -> AclTarget:
        """Apply ``change(list_of_roles) -> list_of_roles`` to one ACL, atomically.

        Refuses (400, as the DERIVA CLI reads it: the ACL "cannot be updated as
        requested") a change that would leave the resource with no owner.
        """
        self.firewall(client, "manage_acls")

        def work(tx: Transaction) -> AclTarget:
            lock = "share" if version is not None else "update"
            target = self._acl_target(tx, client, name, version, lock)
            self._check_access_mode(target, access)
            conditions.check(target.etag)
            acls = target.acls
            acls[access] = list(dict.fromkeys(change(list(acls[access]))))
            if target.version is not None:
                changed_version = ObjectVersion(**{**target.version.__dict__, "acls": acls})
                new_target = AclTarget(target.kind, target.chain, changed_version)
            else:
                resource = target.chain[-1]
                changed = Name(**{**resource.__dict__, "acls": acls})
                new_target = AclTarget(target.kind, [*target.chain[:-1], changed])
            if access.endswith("owner") and not granted_roles(
                "owner", new_target.chain, new_target.version
            ):
                raise BadRequest("This change would leave the resource without any owner.")
            stored = {mode: roles for mode, roles in acls.items() if roles}
            if target.version is not None:
                tx.set_version_acls(target.version.id, stored)
            else:
                tx.set_name_acls(target.chain[-1].id, stored)
            return new_target

        return self.directory.run(work, write=True)
