"""Who is asking: the per-request client context that ACLs are matched against."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional


@dataclass(frozen=True)
class Client:
    """An identity (None for anonymous) and its attributes (groups).

    ``roles`` is what an ACL entry may name: the identity, every attribute,
    and ``*`` (everyone, anonymous included).
    """

    identity: Optional[str] = None
    attributes: frozenset = field(default_factory=frozenset)
    display_name: Optional[str] = None

    @property
    def roles(self) -> frozenset:
        roles = set(self.attributes) | {"*"}
        if self.identity is not None:
            roles.add(self.identity)
        return frozenset(roles)

    @property
    def is_anonymous(self) -> bool:
        return self.identity is None


ANONYMOUS = Client()
