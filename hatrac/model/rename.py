"""Rename (``rename_from``): new versions under a new name, sharing the old bytes.

Metadata only: no byte moves. Each renamed version gets a new version id under
the target name, with the same storage key, size and metadata; the old
version becomes a *forwarder* (``renamed_to``) that no longer counts as a
version of its object (not current, not listed) but still answers GET with
the location of its new name. Bytes are reclaimed only when no live,
non-forwarder version refers to them (see ``Transaction.storage_key_in_use``),
so deleting the source only drops forwarders, and deleting the target frees
the bytes and leaves the forwarders answering 409.
:class:`Renames` is mixed into the :class:`~hatrac.model.service.Hatrac` model.
"""

from __future__ import annotations

import time
from typing import Optional

from ..errors import BadRequest, Conflict, access_denied
from .acl import allows
from .client import Client
from .conditions import NO_CONDITIONS
from .directory import Transaction
from .directory import uploads as sql
from .ids import new_version_id
from .resources import OBJECT, ObjectVersion


class Renames:
    """The rename operation and forwarder lookups (mixed into ``Hatrac``)."""

    def rename_from(
        self,
        client: Client,
        target_name: str,
        source_name: str,
        versions: Optional[list[str]] = None,
        copy_acls: bool = False,
        parents: bool = False,
    ) -> list[ObjectVersion]:
        """Give versions of ``source_name`` (all live ones by default) to ``target_name``.

        Needs ownership of the source object and create (new object) or update
        (existing object) rights on the target. Returns the new versions,
        oldest first, so the newest renamed version is the target's current one.
        """
        if target_name == source_name:
            raise BadRequest("An object cannot be renamed to itself.")
        self.firewall(client, "create")

        def work(tx: Transaction) -> list[ObjectVersion]:
            now = time.time()
            source = self._resolve(tx, source_name, lock="share")
            found = source.target
            if found is None or found.deleted or not found.is_object:
                if source.ancestors and allows(client, "read", source.ancestors):
                    raise Conflict(f"The rename source {source_name} is not an existing object.")
                raise access_denied(client.identity, f"Access to {source_name} is not granted.")
            self._require(client, "owner", source.chain, source_name)
            if versions is None:
                old = [tx.version_by_id(i) for i in sql.all_versions_oldest_first(tx, found.id)]
            else:
                old = []
                for wanted in dict.fromkeys(versions):
                    version = tx.get_version(found.id, wanted)
                    if version is None or version.deleted or version.renamed_to is not None:
                        raise Conflict(
                            f"The version {source_name}:{wanted} does not exist (or was "
                            "already renamed); nothing was renamed."
                        )
                    old.append(version)
                old.sort(key=lambda v: v.id)
            if not old:
                raise Conflict(f"The object {source_name} has no version to rename.")
            resolved = self._check_new_version(
                tx, client, target_name, parents, NO_CONDITIONS, lock="share"
            )
            target = resolved.target
            if target is None or target.deleted:
                parent = self._make_parents(tx, client, resolved, now)
                acls = dict(found.acls) if copy_acls else self._creator_acls(client)
                target = tx.create_name(target_name, parent.id, OBJECT, acls, now)
                if target is None:
                    raise self._retry()
            created = []
            for version in old:
                new_id = new_version_id()
                acls = dict(version.acls) if copy_acls else self._creator_acls(client)
                created.append(
                    tx.create_version(
                        target.id,
                        new_id,
                        version.size,
                        version.storage_key,
                        version.metadata(),
                        acls,
                        now,
                    )
                )
                sql.forward_version(tx, version.id, target_name, new_id)
            return created

        return self.directory.run(work, write=True)

    @staticmethod
    def _retry() -> Exception:
        from .directory.sql import RetryTransaction

        return RetryTransaction()

    def forwarded_to(self, version: ObjectVersion) -> ObjectVersion:
        """The live version a forwarder points at; 409 when it was deleted since."""
        assert version.renamed_to is not None
        new_name, new_version = version.renamed_to

        def work(tx: Transaction) -> ObjectVersion:
            target = tx.get_name(new_name)
            found = None
            if target is not None and not target.deleted and target.is_object:
                found = tx.get_version(target.id, new_version)
            if found is None or found.deleted:
                raise Conflict(
                    f"This version was renamed to {new_name}:{new_version}, which has since "
                    "been deleted; its bytes are gone."
                )
            return found

        return self.directory.run(work)
