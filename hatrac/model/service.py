"""The Hatrac model: every protocol operation, authorized, over directory and storage.

:class:`Hatrac` is what the REST layer calls. Each method takes the client
context and plain values (names, streams of blocks, metadata), checks the
firewall and the resource ACLs, and drives the directory (names and policy,
in transactions) and the storage backend (bytes). It never imports Flask and
never builds a response.

This module holds the class, its authorization helpers and the reads; the
other operations are mixed in, one module per family: :mod:`.creation`
(PUT, and binding versions: the order of a write is described there),
:mod:`.uploads`, :mod:`.metadata`, :mod:`.rename`, :mod:`.browse`,
:mod:`.acl_changes` and :mod:`.deletion`.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Iterable, Optional, Union

from ..errors import Conflict, HatracError, NotFound, access_denied
from ..urls import split_name
from .acl import allows, may_know_versions
from .acl_changes import AccessControl
from .browse import Browsing
from .client import Client
from .creation import Creation
from .deletion import Deletion
from .directory import Directory, Transaction
from .directory.inline import InlineBytes
from .metadata import VersionMetadata
from .rename import Renames
from .resources import Listing, Name, ObjectVersion, Resolved, VersionList
from .storage import Storage
from .uploads import UploadJobs

if TYPE_CHECKING:
    from ..config import Config

logger = logging.getLogger(__name__)

_UNKNOWN = object()  # "not looked up yet" (None means "looked up: there is none")


class Hatrac(Creation, UploadJobs, VersionMetadata, Renames, Browsing, AccessControl, Deletion):
    """The service model: names, versions and ACLs, authorized per client."""

    def __init__(self, config: Config, directory: Directory, storage: Storage) -> None:
        self.config = config
        self.directory = directory
        self.storage = storage
        use_table = getattr(storage, "use_table", None)
        if use_table is not None:  # small versions kept inline (storage/inline.py)
            use_table(InlineBytes(directory))

    # -- authorization helpers ----------------------------------------------
    def firewall(self, client: Client, access: str) -> None:
        """Service-wide firewall ACLs (create, delete, manage_acls, manage_metadata)."""
        roles = self.config.firewall(access)
        if "*" in roles:  # everyone (checked without asking who the client is)
            return
        if client.roles.isdisjoint(roles):
            raise access_denied(
                client.identity, f"This service does not allow '{access}' for this client."
            )

    def _sees(self, client: Client, resolved: Resolved) -> bool:
        """Whether the client may learn what is bound at the name resolved (anything,
        and of which kind): it may list the nearest namespace above it that exists,
        or read the name itself (list the namespace, or the object's versions), or
        write into it (create in the namespace, as in a drop box it may not list;
        update the object): whoever granted that right told it the name exists."""
        if not resolved.ancestors:
            return True  # the root: everyone knows it exists
        if allows(client, "read", resolved.ancestors):
            return True
        target = resolved.target
        if target is None or target.deleted:
            return False
        writes = "create" if target.is_namespace else "update"
        return allows(client, "read", resolved.chain) or allows(client, writes, resolved.chain)

    def _unseen(self, client: Client, resolved: Resolved) -> HatracError:
        """The refusal of a client that may not see the name: the same answer (401 or
        403 by the client, one wording) whatever is bound there, if anything."""
        return access_denied(client.identity, f"Access to {resolved.name} is not granted.")

    def _hide(self, client: Client, resolved: Resolved, error: HatracError) -> HatracError:
        """``error``, which tells something of what the name is, for a client that may
        see the name; for any other, the refusal that tells nothing."""
        return error if self._sees(client, resolved) else self._unseen(client, resolved)

    def _require(
        self,
        client: Client,
        access: str,
        chain: list[Name],
        what: str,
        version: Optional[ObjectVersion] = None,
        *,
        resolved: Optional[Resolved] = None,
    ) -> None:
        """401/403 unless the client holds ``access``; worded by the right missing for a
        client that may see ``resolved`` (when given), else as :meth:`_unseen`."""
        if allows(client, access, chain, version):
            return
        denied = access_denied(client.identity, f"Access '{access}' on {what} is not granted.")
        raise denied if resolved is None else self._hide(client, resolved, denied)

    def _require_version_knowledge(
        self, client: Client, resolved: Resolved, access: str, what: str
    ) -> None:
        """Before saying a version is missing: the client may know the object's versions.

        Refused, it hears what it hears of a version that exists but is not its
        to ``access``: the same status and words."""
        if not may_know_versions(client, resolved.chain):
            denied = access_denied(client.identity, f"Access '{access}' on {what} is not granted.")
            raise self._hide(client, resolved, denied)

    def _missing(self, client: Client, resolved: Resolved, what: str = "resource") -> Exception:
        """404, unless the client may not see the name: then the 401/403 of
        :meth:`_unseen`, which a name that exists but is not the client's gets too."""
        return self._hide(client, resolved, NotFound(f"The {what} {resolved.name} does not exist."))

    def _resolve(self, tx: Transaction, name: str, lock: Optional[str] = None) -> Resolved:
        """The name with its ancestors; writers pass a ``lock`` (see Transaction.resolve)."""
        return tx.resolve(name, split_name(name), lock)

    def _live(self, client: Client, resolved: Resolved, what: str = "resource") -> Name:
        target = resolved.target
        if target is None or target.deleted:
            raise self._missing(client, resolved, what)
        return target

    def _live_version(
        self, tx: Transaction, client: Client, resolved: Resolved, version: str, access: str
    ) -> ObjectVersion:
        """A live version of the (live) name resolved, or a 404 that reveals no more than
        the client may know (refused as for a version it may not ``access``)."""
        name = resolved.name
        if not resolved.target.is_object:
            namespace = NotFound(f"{name} is a namespace; namespaces have no versions.")
            raise self._hide(client, resolved, namespace)
        found = tx.get_version(resolved.target.id, version)
        if found is None or found.deleted:
            self._require_version_knowledge(client, resolved, access, f"{name}:{version}")
            raise NotFound(f"The version {name}:{version} does not exist.")
        return found

    # -- reading ---------------------------------------------------------------
    def resolve(self, name: str) -> Resolved:
        return self.directory.run(lambda tx: self._resolve(tx, name))

    def read_name(self, client: Client, name: str) -> Union[Listing, tuple[Name, ObjectVersion]]:
        """GET of a bare name in one transaction: a :class:`Listing` for a namespace,
        or ``(object, current version)`` for an object."""

        def work(tx: Transaction) -> Union[Listing, tuple[Name, ObjectVersion]]:
            resolved, current = tx.resolve_current(name, split_name(name))
            target = self._live(client, resolved)
            if target.is_namespace:
                self._require(client, "read", resolved.chain, name, resolved=resolved)
                return Listing(target, tx.children(target.id))
            return self._readable_version(tx, client, resolved, None, current, follow=True)

        return self.directory.run(work)

    def get_version(
        self,
        client: Client,
        name: str,
        version: Optional[str] = None,
        follow: Optional[bool] = None,
    ) -> tuple[Name, ObjectVersion]:
        """The current (or a given) version of an object, readable by the client.

        With ``follow`` (the default for the current version), a version that was
        renamed away is replaced by the version it became (through every rename),
        whose ``name`` then differs from ``name``."""
        follow = version is None if follow is None else follow

        def work(tx: Transaction) -> tuple[Name, ObjectVersion]:
            resolved = self._resolve(tx, name)
            target = self._live(client, resolved, "object")
            if not target.is_object:
                if version is not None:
                    error = NotFound(f"{name} is a namespace; namespaces have no versions.")
                else:
                    error = Conflict(f"{name} is a namespace, not an object.")
                raise self._hide(client, resolved, error)
            return self._readable_version(tx, client, resolved, version, follow=follow)

        return self.directory.run(work)

    def _readable_version(
        self,
        tx: Transaction,
        client: Client,
        resolved: Resolved,
        version: Optional[str],
        current: Union[ObjectVersion, None, object] = _UNKNOWN,
        follow: bool = False,
    ) -> tuple[Name, ObjectVersion]:
        """The version wanted (``None``: the current one, which the caller may have
        looked up already and passes as ``current``) if the client may read it.

        Rights are those on the version asked for; ``follow`` then replaces a
        renamed-away version by the one it became (the same bytes)."""
        target = resolved.target
        assert target is not None
        name = resolved.name
        # refusals name what was asked for: never the id of a current version the
        # client may not read, and the same words whether that version exists or not
        asked = name if version is None else f"{name}:{version}"
        if version is None:
            found = tx.current_version(target.id) if current is _UNKNOWN else current
            if found is None:
                self._require_version_knowledge(client, resolved, "read", asked)
                raise Conflict(f"The object {name} has no current version.")
        else:
            found = tx.get_version(target.id, version)
            if found is None or found.deleted:
                self._require_version_knowledge(client, resolved, "read", asked)
                raise NotFound(f"The version {name}:{version} does not exist.")
        self._require(client, "read", resolved.chain, asked, found, resolved=resolved)
        if follow and found.renamed_to is not None:
            found = self._follow(tx, found)
        return target, found

    def list_versions(self, client: Client, name: str) -> VersionList:
        def work(tx: Transaction) -> VersionList:
            resolved = self._resolve(tx, name)
            target = self._live(client, resolved, "object")
            if not target.is_object:
                namespace = NotFound(f"{name} is a namespace; namespaces have no ;versions.")
                raise self._hide(client, resolved, namespace)
            self._require(client, "read", resolved.chain, name, resolved=resolved)
            return VersionList(target, tx.versions(target.id))

        return self.directory.run(work)

    # -- reclaiming bytes (after a failed write, or a delete) ------------------
    def _reclaim(self, keys: Iterable[str]) -> None:
        """Delete stored bytes no live version refers to any more (best effort)."""
        for key in keys:
            try:
                in_use = self.directory.run(lambda tx, key=key: tx.storage_key_in_use(key))
                if not in_use:
                    self.storage.delete(key)
            except Exception as error:  # the orphan sweep ('hatrac gc') will get it
                logger.warning("could not reclaim storage key %s yet: %s", key, error)
