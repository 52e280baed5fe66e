"""Deleting names and versions: the owner-only operations that make tombstones.

:class:`Deletion` is mixed into the :class:`~hatrac.model.service.Hatrac`
model. A deleted name is a tombstone (never bound again); the bytes of what
was deleted are reclaimed after the transaction commits.
"""

from __future__ import annotations

from typing import Optional

from ..errors import Conflict
from ..urls import ROOT, split_name
from .client import Client
from .conditions import NO_CONDITIONS, Preconditions
from .directory import Transaction
from .resources import Listing, Name


class Deletion:
    """``DELETE`` of a namespace (with its subtree), an object or one version."""

    def delete_name(
        self, client: Client, name: str, conditions: Preconditions = NO_CONDITIONS
    ) -> None:
        """Delete a namespace (with its whole subtree) or an object (all its versions)."""
        if name == ROOT:
            raise Conflict("The root namespace cannot be deleted.")
        self.firewall(client, "delete")

        def work(tx: Transaction) -> list[str]:
            # the delete lock waits for every writer in flight; at READ COMMITTED
            # every later statement then sees all that they committed
            resolved = self._resolve(tx, name, lock="delete")
            target = self._live(client, resolved)
            self._require(client, "owner", resolved.chain, name, resolved=resolved)
            if target.is_namespace:
                descendants = tx.descendants(name)
                if conditions.present:
                    conditions.check(Listing(target, tx.children(target.id)).etag)
            else:
                descendants = []
                if conditions.present:
                    current = tx.current_version(target.id)
                    conditions.check(current.etag if current else None)
            by_name = {n.name: n for n in [*resolved.chain, *descendants]}
            for child in descendants:
                chain = [by_name[n] for n in split_name(child.name) if n in by_name]
                self._require(client, "owner", chain, child.name)
            # as upstream: owning an object is enough to delete it with all its versions
            objects = [n for n in [target, *descendants] if n.is_object]
            versions = tx.live_versions_of([n.id for n in objects])
            self.before_delete_names(tx, [target, *descendants])
            tx.delete_names([target.id, *(n.id for n in descendants)])
            return [v.storage_key for v in versions if v.renamed_to is None]

        keys = self.directory.run(work, write=True, serializable=False)
        self._reclaim(keys)

    def before_delete_names(self, tx: Transaction, names: list[Name]) -> None:
        """Hook for features attached to names (upload jobs) to clean up with them."""
        self.cancel_jobs_of_names(tx, names)

    def delete_version(
        self,
        client: Client,
        name: str,
        version: str,
        conditions: Preconditions = NO_CONDITIONS,
    ) -> None:
        self.firewall(client, "delete")

        def work(tx: Transaction) -> Optional[str]:
            resolved = self._resolve(tx, name, lock="share")
            self._live(client, resolved, "object")
            found = self._live_version(tx, client, resolved, version, "owner")
            asked = f"{name}:{version}"
            self._require(client, "owner", resolved.chain, asked, found, resolved=resolved)
            conditions.check(found.etag)
            tx.delete_version(found.id)
            return found.storage_key if found.renamed_to is None else None

        key = self.directory.run(work, write=True)
        if key is not None:
            self._reclaim([key])
