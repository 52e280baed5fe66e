"""Rename (``rename_from``): new versions under a new name, sharing the old bytes.

Metadata only: no byte moves. Each renamed version becomes a version of the
target name with the same id (as upstream; a new one only when the target
has or had that id), storage key, size and metadata; the old
version becomes a *forwarder* (``renamed_to``). As upstream, a forwarder stays
a version of its object: it is listed in ``;versions`` and can be the current
version, and reading it (or the object, while it is current) follows the
renames to the last one. Repeating a rename that was done answers with no new
version (204). Bytes are reclaimed only when no live, non-forwarder version
refers to them (see ``Transaction.storage_key_in_use``), so deleting the
source only drops forwarders, and deleting the target frees the bytes and
leaves the forwarders answering 409.
:class:`Renames` is mixed into the :class:`~hatrac.model.service.Hatrac` model.
"""

from __future__ import annotations

import time
from typing import Optional

from ..errors import BadRequest, Conflict
from .client import Client
from .conditions import NO_CONDITIONS
from .directory import Transaction
from .directory import uploads as sql
from .ids import new_version_id
from .resources import ObjectVersion

# a chain of renames longer than this is refused rather than followed
MAX_RENAME_HOPS = 64


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
                missing = Conflict(f"The rename source {source_name} is not an existing object.")
                raise self._hide(client, source, missing)
            self._require(client, "owner", source.chain, source_name, resolved=source)
            # versions this very rename moved already: a repeated request skips them
            done = 0
            if versions is None:
                old = [tx.version_by_id(i) for i in sql.all_versions_oldest_first(tx, found.id)]
                if not old:
                    done = len(sql.forwarders_to(tx, found.id, target_name))
            else:
                old = []
                for wanted in dict.fromkeys(versions):
                    version = tx.get_version(found.id, wanted)
                    if version is not None and not version.deleted and version.renamed_to:
                        if version.renamed_to[0] == target_name:
                            done += 1
                            continue
                    if version is None or version.deleted or version.renamed_to is not None:
                        raise Conflict(
                            f"The version {source_name}:{wanted} does not exist (or was "
                            "renamed elsewhere); nothing was renamed."
                        )
                    old.append(version)
                old.sort(key=lambda v: v.id)
            if not old and not done:
                raise Conflict(f"The object {source_name} has no version to rename.")
            resolved = self._check_new_version(
                tx, client, target_name, parents, NO_CONDITIONS, lock="share"
            )
            if not old:
                return []  # the same rename again: nothing to do (idempotent)
            acls = dict(found.acls) if copy_acls else None
            target = self._bind_object(tx, client, resolved, now, acls)
            created = []
            for version in old:
                # as upstream, the version keeps its id under the new name (the same
                # bytes), unless the target has or had a version of that id
                new_id = version.version
                if tx.get_version(target.id, new_id) is not None:
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

    def _follow(self, tx: Transaction, version: ObjectVersion) -> ObjectVersion:
        """The live version at the end of a chain of renames; 409 when it is gone."""
        for _ in range(MAX_RENAME_HOPS):
            if version.renamed_to is None:
                return version
            new_name, new_version = version.renamed_to
            target = tx.get_name(new_name)
            found = None
            if target is not None and not target.deleted and target.is_object:
                found = tx.get_version(target.id, new_version)
            if found is None or found.deleted:
                raise Conflict(
                    f"This version was renamed to {new_name}:{new_version}, which has since "
                    "been deleted; its bytes are gone."
                )
            version = found
        raise Conflict(f"This version was renamed more than {MAX_RENAME_HOPS} times in a row.")
