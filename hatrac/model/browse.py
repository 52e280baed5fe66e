"""What the web interface's pages show: a page of a namespace's children, an object's
versions, and what the client may do there.

:class:`Browsing` is mixed into the :class:`~hatrac.model.service.Hatrac`
model. Each method authorizes like the protocol operation it mirrors (read
on the namespace or object) and answers in one read transaction; the rights
it reports only decide which controls a page offers (the server checks
every change again).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from ..errors import BadRequest, Conflict
from ..urls import ROOT, quote_segment
from .acl import allows
from .client import Client
from .directory import Transaction
from .directory.browse import SORTS, Child, children_page
from .resources import ACCESS_MODES, Name, ObjectVersion

PAGE_LIMIT_MAX = 5000


@dataclass
class Rights:
    """Which changes the client may make on a resource (for showing controls)."""

    owner: bool = False
    create: bool = False
    update: bool = False


@dataclass
class InheritedAcl:
    """An ACL entry that applies to a resource because an ancestor grants it."""

    source: str  # the ancestor's name
    access: str  # the ancestor's access mode, e.g. "subtree-read" (granting "read" here)
    role: str


@dataclass
class NamespacePage:
    """A namespace, one page of its children, and whether more follow."""

    namespace: Name
    chain: list[Name]
    children: list[Child]
    more: bool
    rights: Rights
    inherited: list[InheritedAcl] = field(default_factory=list)


@dataclass
class ObjectPage:
    """An object, its live versions (newest first) and the client's rights on it."""

    object: Name
    chain: list[Name]
    versions: list[ObjectVersion]
    rights: Rights
    inherited: list[InheritedAcl] = field(default_factory=list)


def rights_of(client: Client, chain: list[Name]) -> Rights:
    return Rights(
        owner=allows(client, "owner", chain),
        create=chain[-1].is_namespace and allows(client, "create", chain),
        update=chain[-1].is_object and allows(client, "update", chain),
    )


def inherited_acls(chain: list[Name]) -> list[InheritedAcl]:
    """Entries the ancestors' ``subtree-*`` ACLs give the last name of ``chain``."""
    target = chain[-1]
    found = []
    for ancestor in chain[:-1]:
        for mode, roles in sorted(ancestor.acls.items()):
            if not mode.startswith("subtree-"):
                continue
            if mode[len("subtree-") :] not in ACCESS_MODES[target.kind]:
                continue
            found.extend(InheritedAcl(ancestor.name, mode, role) for role in roles)
    return found


class Browsing:
    """Listing pages and object pages for the web interface (mixed into ``Hatrac``)."""

    def browse_namespace(
        self,
        client: Client,
        name: str,
        after: str = "",
        limit: int = 500,
        contains: Optional[str] = None,
        sort: str = "name",
        descending: bool = False,
        offset: int = 0,
    ) -> Optional[NamespacePage]:
        """Up to ``limit`` children of ``name`` in the order ``sort`` (one of
        :data:`SORTS`): by name, those after the child name ``after``; by another
        key, from position ``offset``. None when ``name`` is an object (whose GET
        is its bytes, authorized elsewhere)."""
        limit = max(1, min(limit, PAGE_LIMIT_MAX))
        if sort not in SORTS:
            raise BadRequest(f"sort must be one of {', '.join(SORTS)}.")

        def work(tx: Transaction) -> Optional[NamespacePage]:
            resolved = self._resolve(tx, name)
            target = self._live(client, resolved)
            if not target.is_namespace:
                return None
            self._require(client, "read", resolved.chain, name, resolved=resolved)
            start = 2 if name == ROOT else len(name) + 2
            pattern = quote_segment(contains) if contains else None
            rows = children_page(
                tx, target.id, after, limit + 1, pattern, start, sort, descending, offset
            )
            rights = rights_of(client, resolved.chain)
            inherited = inherited_acls(resolved.chain) if rights.owner else []
            return NamespacePage(
                target, resolved.chain, rows[:limit], len(rows) > limit, rights, inherited
            )

        return self.directory.run(work)

    def object_page(self, client: Client, name: str) -> ObjectPage:
        """An object's live versions that the client may read, with its rights."""

        def work(tx: Transaction) -> ObjectPage:
            resolved = self._resolve(tx, name)
            target = self._live(client, resolved, "object")
            if not target.is_object:
                namespace = Conflict(f"{name} is a namespace; only objects have versions.")
                raise self._hide(client, resolved, namespace)
            self._require(client, "read", resolved.chain, name, resolved=resolved)
            chain = resolved.chain
            versions = [v for v in tx.versions(target.id) if allows(client, "read", chain, v)]
            rights = rights_of(client, chain)
            inherited = inherited_acls(chain) if rights.owner else []
            return ObjectPage(target, chain, versions, rights, inherited)

        return self.directory.run(work)
