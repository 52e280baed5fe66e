"""Creating names and binding versions: PUT of a namespace or an object, and the
recording of durable bytes as a new version.

:class:`Creation` is mixed into the :class:`~hatrac.model.service.Hatrac`
model. Order of a write: authorize in a read transaction (fail fast, before a
byte is stored), stream the bytes into storage, then bind the version in a
write transaction that re-checks everything it depends on. If that
transaction fails, the stored bytes are deleted again; if the process dies in
between, the orphan sweep removes them. No reader can see a version before
its bytes are durable. Upload jobs (:mod:`.uploads`) and renames
(:mod:`.rename`) bind their versions through the same methods.
"""

from __future__ import annotations

import logging
import time
from typing import Callable, Iterable, Optional

from ..errors import BadRequest, Conflict, NotFound, access_denied
from ..urls import ROOT, parent_name, split_name
from .acl import allows
from .client import Client
from .conditions import NO_CONDITIONS, Preconditions
from .directory import Transaction
from .directory.sql import CommitOutcomeUnknown, RetryTransaction
from .ids import new_version_id
from .placing import placer, settle
from .resources import NAMESPACE, OBJECT, Listing, Name, ObjectVersion, Resolved

# the name these warnings were always logged under (the "logger" of a log line)
logger = logging.getLogger("hatrac.model.service")


def _creation_conflict(resolved: Resolved, kind: str) -> Optional[Conflict]:
    """Why ``resolved.name`` cannot be bound to a new ``kind`` whoever asks, if it cannot."""
    name = resolved.name
    target = resolved.target
    if target is not None:
        if target.deleted:
            return Conflict(f"The name {name} was deleted and cannot be bound again.")
        if kind == NAMESPACE or target.is_namespace:
            return Conflict(f"The name {name} is already bound to a {target.kind}.")
    blocker = resolved.blocker
    if blocker is not None:
        if blocker.deleted:
            return Conflict(f"The name {blocker.name} was deleted and cannot be bound again.")
        return Conflict(f"{blocker.name} is an object, so it cannot contain {name}.")
    return None


class Creation:
    """New namespaces, objects and versions, authorized per client."""

    def _creation_point(self, client: Client, resolved: Resolved, parents: bool, kind: str) -> Name:
        """Check that ``resolved.name`` can be created; returns the namespace to create in.

        A name that is bound, deleted or beneath an object is a 409 for a client
        that may see it or create where it would be made; any other client gets
        the refusal a new name gets, which tells nothing of what is there."""
        name = resolved.name
        conflict = _creation_conflict(resolved, kind)
        if conflict is not None:
            if not self._may_learn_conflicts(client, resolved):
                raise self._unseen(client, resolved)
            raise conflict
        missing_parents = len(split_name(name)) - 1 - len(resolved.ancestors)
        if missing_parents and not parents:
            missing = NotFound(
                f"The parent namespace {parent_name(name)} does not exist "
                "(add ?parents=true to create it)."
            )
            raise self._hide(client, resolved, missing)
        parent = resolved.ancestors[-1]
        self._require(client, "create", resolved.ancestors, parent.name, resolved=resolved)
        return parent

    def _may_learn_conflicts(self, client: Client, resolved: Resolved) -> bool:
        """Whether a creation's 409 may tell this client what is bound: it may see the
        name, or create where the name would be made (and so learn it by trying)."""
        if self._sees(client, resolved):
            return True
        return allows(client, "create", resolved.ancestors)

    def _make_parents(
        self, tx: Transaction, client: Client, resolved: Resolved, now: float
    ) -> Name:
        """Create the missing namespaces above ``resolved.name``; returns the parent."""
        parent = resolved.ancestors[-1]
        wanted = split_name(resolved.name)[len(resolved.ancestors) : -1]
        for name in wanted:
            created = tx.create_name(name, parent.id, NAMESPACE, self._creator_acls(client), now)
            if created is None:
                # bound concurrently: start over and look again
                raise RetryTransaction()
            parent = created
        return parent

    def _bind_object(
        self,
        tx: Transaction,
        client: Client,
        resolved: Resolved,
        now: float,
        acls: Optional[dict] = None,
    ) -> Name:
        """The object ``resolved`` names, bound now (with missing parents) if it is new.

        The caller has checked, in this transaction, that it may be created."""
        target = resolved.target
        if target is not None and not target.deleted:
            return target
        parent = self._make_parents(tx, client, resolved, now)
        acls = self._creator_acls(client) if acls is None else acls
        created = tx.create_name(resolved.name, parent.id, OBJECT, acls, now)
        if created is None:
            raise RetryTransaction()  # bound concurrently: look again
        return created

    @staticmethod
    def _creator_acls(client: Client) -> dict:
        return {"owner": [client.identity]} if client.identity is not None else {}

    def create_namespace(
        self,
        client: Client,
        name: str,
        parents: bool = False,
        conditions: Preconditions = NO_CONDITIONS,
    ) -> Name:
        """A new namespace (and its missing parents with ``parents``).

        ``conditions`` are checked as for an object PUT: against the name's
        current state (412 before the 409 of a bound name), and for a new name
        after the rights to create it (``If-Match`` then fails)."""
        if name == ROOT:
            # bound since the service was deployed: a conflict for every client, as upstream
            if conditions.present:
                self.directory.run(
                    lambda tx: self._bound_conditions(
                        tx, client, self._resolve(tx, ROOT), conditions
                    )
                )
            raise Conflict("The root namespace always exists.")
        self.firewall(client, "create")

        def work(tx: Transaction) -> Name:
            now = time.time()
            resolved = self._resolve(tx, name, lock="share")
            if conditions.present:
                self._bound_conditions(tx, client, resolved, conditions)
            self._creation_point(client, resolved, parents, NAMESPACE)
            conditions.check(None)
            parent = self._make_parents(tx, client, resolved, now)
            created = tx.create_name(name, parent.id, NAMESPACE, self._creator_acls(client), now)
            if created is None:
                raise RetryTransaction()
            return created

        return self.directory.run(work, write=True)

    def _bound_conditions(
        self, tx: Transaction, client: Client, resolved: Resolved, conditions: Preconditions
    ) -> None:
        """The conditions of a namespace PUT on a live name: against its listing's
        ETag for a client that may list it, else against its existence alone; a
        client that may not learn that it exists hears what a new name tells it."""
        target = resolved.target
        if target is None or target.deleted:
            return  # a new name (or a tombstone, whose 409 comes first): checked later
        if not self._may_learn_conflicts(client, resolved):
            raise self._unseen(client, resolved)
        if target.is_namespace and allows(client, "read", resolved.chain):
            conditions.check(Listing(target, tx.children(target.id)).etag)
        else:
            conditions.check_exists(True)

    def check_put_object(
        self,
        client: Client,
        name: str,
        parents: bool = False,
        conditions: Preconditions = NO_CONDITIONS,
    ) -> None:
        """Everything a PUT needs to be allowed, checked before any byte is stored."""
        if name == ROOT:
            raise Conflict("The root is a namespace.")
        self.firewall(client, "create")
        self.directory.run(
            lambda tx: self._check_new_version(tx, client, name, parents, conditions)
        )

    def _check_new_version(
        self,
        tx: Transaction,
        client: Client,
        name: str,
        parents: bool,
        conditions: Preconditions,
        lock: Optional[str] = None,
        first_by_job: bool = False,
    ) -> Resolved:
        """Authorize a new version of ``name`` (update, or create for a new name).

        ``first_by_job``: the finalization of an upload job, whose creation bound
        the object; while the object has no version, the job's creator needs only
        what a PUT of the new name needs (create on its namespace), so that an
        anonymous drop box takes large uploads as it takes small ones.
        """
        resolved = self._resolve(tx, name, lock)
        target = resolved.target
        if target is not None and target.is_object and not target.deleted:
            if (
                first_by_job
                and not allows(client, "update", resolved.chain)
                and tx.current_version(target.id) is None
            ):
                self._require(
                    client, "create", resolved.ancestors, parent_name(name), resolved=resolved
                )
            else:
                self._require(client, "update", resolved.chain, name, resolved=resolved)
            if conditions.present:
                current = tx.current_version(target.id)
                conditions.check(current.etag if current else None)
        else:
            self._creation_point(client, resolved, parents, OBJECT)
            conditions.check(None)
        return resolved

    def put_object(
        self,
        client: Client,
        name: str,
        blocks: Iterable[bytes],
        metadata: dict,
        parents: bool = False,
        conditions: Preconditions = NO_CONDITIONS,
        version_id: Optional[str] = None,
        length: Optional[int] = None,
        body_sent: bool = False,
    ) -> ObjectVersion:
        """Store a body as a new version of ``name`` (creating the object if needed).

        ``metadata`` holds content-type/-disposition and any client digests
        (base64), which must match the bytes received. ``version_id`` (for
        migrations, clients with a ``version_import_roles`` role only) binds
        the version under that id instead of a new one: 409 if the object
        has or had a version of that id.

        ``length`` is the declared length of the body, and ``body_sent`` says the
        client sends it without waiting to be told to (no ``Expect: 100-continue``).
        A body that small enough to be kept inline (see storage/inline.py) is then
        read before anything is checked, and the version is authorized and bound
        in one write transaction, with its bytes; errors are the same, in the same
        order (authorization first), as when it is checked before the body is read.
        """
        if version_id is not None:
            self.require_version_import(client)
        inline = (
            body_sent
            and length is not None
            and length <= self.storage.inline_max_size
            and name != ROOT
        )
        if inline:
            self.firewall(client, "create")  # costs no round trip
            options = {"inline": True}
        else:
            self.check_put_object(client, name, parents, conditions)
            options = {}
        key = new_version_id()
        version = version_id or key
        try:
            staged = self.storage.stage(self.storage.key_for(name, key), blocks, **options)
        except Exception:
            if inline:  # a refused client hears that first, as on the other path
                self.check_put_object(client, name, parents, conditions)
            raise
        try:
            verify_digests(metadata, staged.digests.md5_b64, staged.digests.sha256_b64)
        except BaseException:
            self.storage.discard(staged)
            if inline:
                self.check_put_object(client, name, parents, conditions)
            raise
        metadata = dict(metadata)
        metadata["content-md5"] = staged.digests.md5_b64
        metadata["content-sha256"] = staged.digests.sha256_b64
        placed = None
        if staged.inline is None:
            # the bytes are made durable under their key (rename, directory fsync)
            # while the version is recorded; the COMMIT waits for them
            placed = placer().submit(self.storage.commit, staged).result
        return self.bind_version(
            client,
            name,
            version,
            staged.size,
            staged.key,
            metadata,
            parents,
            conditions,
            given_id=version_id is not None,
            inline=staged.inline,
            before_commit=placed,
        )

    def require_version_import(self, client: Client) -> None:
        """Only clients with a ``version_import_roles`` role may choose a version id."""
        roles = self.config.version_import_roles
        if client.roles.isdisjoint(roles):
            raise access_denied(
                client.identity,
                "Creating a version with a given id is reserved to the roles in the "
                "service's version_import_roles setting (used by migrations).",
            )

    def bind_version(
        self,
        client: Client,
        name: str,
        version: str,
        size: int,
        storage_key: str,
        metadata: dict,
        parents: bool = False,
        conditions: Preconditions = NO_CONDITIONS,
        also: Optional[Callable[[Transaction], None]] = None,
        given_id: bool = False,
        inline: Optional[bytes] = None,
        first_by_job: bool = False,
        before_commit: Optional[Callable[[], object]] = None,
    ) -> ObjectVersion:
        """Record durable bytes as a new version; deletes the bytes if that fails.

        ``also(tx)`` runs in the same transaction (an upload job is consumed there).
        ``given_id``: the version id came from the client, so it may be taken.
        ``inline``: the bytes themselves, stored with the version (then nothing
        outside the transaction needs reclaiming if it fails).
        ``first_by_job``: see :meth:`_check_new_version`. ``before_commit()``
        runs last in the transaction: it waits for the bytes to be durable (and
        raises if they could not be made so), so no version commits before them.
        """

        def work(tx: Transaction) -> ObjectVersion:
            now = time.time()
            # a conditional PUT holds the object row until commit, so that two of
            # them cannot both pass the same If-Match
            lock = "update" if conditions.present else "share"
            resolved = self._check_new_version(
                tx, client, name, parents, conditions, lock, first_by_job
            )
            existed = resolved.target is not None and not resolved.target.deleted
            acls = self._creator_acls(client)
            # nothing else to do before COMMIT: it may travel with the version's INSERT
            last = before_commit is None and also is None
            if not existed and also is None:
                # a new object: its name and first version in one statement
                parent = self._make_parents(tx, client, resolved, now)
                made = tx.create_object_version(
                    name, parent.id, acls, version, size, storage_key, metadata, acls, now,
                    inline, last,
                )  # fmt: skip
                if made is None:
                    raise RetryTransaction()  # bound concurrently: look again
            else:
                target = self._bind_object(tx, client, resolved, now)
                if existed and given_id and tx.get_version(target.id, version) is not None:
                    raise Conflict(
                        f"The object {name} has or had a version {version}; version ids are "
                        "never reused."
                    )
                if also is not None:
                    also(tx)
                made = tx.create_version(
                    target.id, version, size, storage_key, metadata, acls, now, inline, last,
                    name=target.name,
                )  # fmt: skip
            if before_commit is not None:
                before_commit()
            return made

        stored = [] if inline is not None else [storage_key]  # bytes outside the transaction

        try:
            # READ COMMITTED with the names-table lock above: binding versions in one
            # namespace concurrently must not fail on SERIALIZABLE's predicate locks
            return self.directory.run(work, write=True, serializable=False)
        except CommitOutcomeUnknown:
            # the connection broke during COMMIT: look whether the version exists
            # (then the client gets its 201), else it was not made (503, bytes
            # reclaimed); if the database cannot even say, keep the bytes (503):
            # the orphan sweep removes them if no version refers to them
            try:
                made = self.directory.run(lambda tx: self._bound_version(tx, name, version))
            except Exception:
                logger.warning("outcome of binding version %s of %s unknown", version, name)
                raise CommitOutcomeUnknown(
                    "The database connection broke while the version was being recorded; it "
                    f"may or may not exist. GET {name};versions to check before retrying."
                ) from None
            if made is not None:
                return made
            self._reclaim(stored)
            raise
        except BaseException:
            settle(before_commit)  # no reclaiming while the bytes are still being placed
            self._reclaim(stored)
            raise

    @staticmethod
    def _bound_version(tx: Transaction, name: str, version: str) -> Optional[ObjectVersion]:
        """Version ``version`` of object ``name``, if it was committed."""
        found = tx.get_name(name)
        if found is None or found.deleted:
            return None
        return tx.get_version(found.id, version)


def verify_digests(metadata: dict, md5_b64: str, sha256_b64: str) -> None:
    """400 when a digest the client sent does not describe the bytes received."""
    for field, actual in (("content-md5", md5_b64), ("content-sha256", sha256_b64)):
        claimed = metadata.get(field)
        if claimed is not None and claimed != actual:
            header = "Content-MD5" if field == "content-md5" else "Content-SHA256"
            raise BadRequest(
                f"The {header} sent ({claimed}) does not match the body received ({actual}); "
                "nothing was stored."
            )
