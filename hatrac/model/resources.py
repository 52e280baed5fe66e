"""The resources of the Hatrac model, as plain data.

A name is bound once, forever, as a :class:`Namespace` or an :class:`HObject`
(an object: a container of versions); each upload makes an immutable
:class:`ObjectVersion`. The directory returns these; the model decides with
them; the REST layer renders them. None of them talks to a database.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from functools import cached_property
from typing import Iterable, Optional

NAMESPACE = "namespace"
OBJECT = "object"

# The access modes each kind of resource has ACLs for, in display order.
ACCESS_MODES = {
    NAMESPACE: (
        "owner",
        "create",
        "read",
        "subtree-owner",
        "subtree-create",
        "subtree-update",
        "subtree-read",
    ),
    OBJECT: ("owner", "update", "read", "subtree-owner", "subtree-read"),
    "version": ("owner", "read"),
}


@dataclass
class Name:
    """A bound name: a namespace or an object (``kind``), live or deleted."""

    id: int
    name: str
    kind: str
    acls: dict = field(default_factory=dict)
    deleted: bool = False
    created: float = 0.0

    @property
    def is_namespace(self) -> bool:
        return self.kind == NAMESPACE

    @property
    def is_object(self) -> bool:
        return self.kind == OBJECT


@dataclass
class ObjectVersion:
    """One immutable version of an object: its bytes' location and metadata.

    ``id`` and ``name_id`` (row ids) are None in the version a PUT returns when
    its statement also committed (Transaction.finish)."""

    id: Optional[int]
    name_id: Optional[int]
    name: str
    version: str
    size: int
    storage_key: str
    content_type: Optional[str] = None
    content_md5: Optional[str] = None
    content_sha256: Optional[str] = None
    content_disposition: Optional[str] = None
    acls: dict = field(default_factory=dict)
    created: float = 0.0
    deleted: bool = False
    # set when this version was renamed away: the name and version it now has
    renamed_to: Optional[tuple[str, str]] = None
    # the bytes of an inline version, when the query that found it fetched them
    inline: Optional[bytes] = field(default=None, repr=False, compare=False)

    @property
    def etag(self) -> str:
        """A strong ETag, stable for the life of the version."""
        return f'"{self.version}"'

    def metadata(self) -> dict:
        """The metadata fields of the protocol's ;metadata resource."""
        fields = {
            "content-type": self.content_type,
            "content-md5": self.content_md5,
            "content-sha256": self.content_sha256,
            "content-disposition": self.content_disposition,
        }
        return {key: value for key, value in fields.items() if value is not None}


@dataclass
class Resolved:
    """A name looked up with everything needed to authorize on it.

    ``ancestors`` holds the live namespaces from the root down to the parent
    (missing ones are absent); ``target`` is the name itself when bound.
    """

    name: str
    ancestors: list[Name]
    target: Optional[Name]
    # the first name on the way down that is not a live namespace (an object
    # or a tombstone), when one stops the chain before the parent
    blocker: Optional[Name] = None

    @property
    def chain(self) -> list[Name]:
        """Ancestors and the target itself, root first (the target must exist)."""
        assert self.target is not None
        return [*self.ancestors, self.target]

    @property
    def parent(self) -> Optional[Name]:
        """The nearest existing ancestor namespace."""
        return self.ancestors[-1] if self.ancestors else None


@dataclass
class Listing:
    """A namespace and the names of its live children, sorted."""

    namespace: Name
    children: list[str]

    @cached_property
    def etag(self) -> str:
        # a name never changes kind, so the names alone identify the listing
        return _members_etag(self.namespace.name, self.children)


@dataclass
class VersionList:
    """An object and its live versions, newest first (renamed-away ones included)."""

    object: Name
    versions: list[ObjectVersion]

    @cached_property
    def etag(self) -> str:
        return _members_etag(self.object.name, (v.version for v in self.versions))


def _members_etag(owner: str, members: Iterable[str]) -> str:
    """The ETag of a listing: its owner's name and its members, in order."""
    digest = hashlib.md5(usedforsecurity=False)
    digest.update(owner.encode())
    listed = list(members)
    # each member preceded by a NUL: joined in one call, not a string per member
    digest.update(("\0" + "\0".join(listed) if listed else "").encode())
    return f'"{digest.hexdigest()}"'
