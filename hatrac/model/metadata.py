"""Metadata of versions: the ``;metadata`` sub-resource, as model operations.

Fields are ``content-type`` and ``content-disposition`` (mutable by the
version's owner) and ``content-md5`` and ``content-sha256`` (may be added when
missing, after checking them against the stored bytes; never changed or
removed once set). :class:`VersionMetadata` is mixed into the
:class:`~hatrac.model.service.Hatrac` model. Values arrive already validated
by the REST layer (digests as canonical base64).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from typing import Optional

from ..errors import Conflict, NotFound
from .client import Client
from .conditions import NO_CONDITIONS, Preconditions
from .directory import Transaction
from .resources import ObjectVersion

MUTABLE_FIELDS = ("content-type", "content-disposition")
DIGEST_FIELDS = ("content-md5", "content-sha256")
METADATA_FIELDS = MUTABLE_FIELDS + DIGEST_FIELDS
_ATTRIBUTE = {field: field.replace("-", "_") for field in METADATA_FIELDS}


DIGEST_SIZES = {"content-md5": 16, "content-sha256": 32}
_HEX = re.compile(r"[0-9A-Fa-f]+")


def canonical_digest(field: str, value: str) -> Optional[str]:
    """A digest (``content-md5``/``content-sha256``) given as base64 or hex, as canonical
    base64; None when it is neither, or of the wrong length."""
    size = DIGEST_SIZES[field]
    value = value.strip()
    if len(value) == 2 * size and _HEX.fullmatch(value):
        raw = bytes.fromhex(value)
    else:
        try:
            raw = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            return None
    if len(raw) != size:
        return None
    return base64.b64encode(raw).decode("ascii")


def metadata_etag(version: ObjectVersion) -> str:
    """A strong ETag of a version's metadata (changes whenever a field does)."""
    text = json.dumps([version.version, version.metadata()], sort_keys=True)
    return '"' + hashlib.md5(text.encode(), usedforsecurity=False).hexdigest() + '"'


def field_value(version: ObjectVersion, field: str) -> Optional[str]:
    return getattr(version, _ATTRIBUTE[field])


class VersionMetadata:
    """Reading and changing version metadata (mixed into ``Hatrac``)."""

    def read_metadata(
        self, client: Client, name: str, version: Optional[str] = None
    ) -> ObjectVersion:
        """The version (the current one when ``version`` is None), readable by the client;
        a renamed-away version answers with the metadata of the version it became."""
        return self.get_version(client, name, version, follow=True)[1]

    def _metadata_target(
        self, tx: Transaction, client: Client, name: str, version: Optional[str]
    ) -> ObjectVersion:
        resolved = self._resolve(tx, name)
        target = self._live(client, resolved, "object")
        if not target.is_object:
            namespace = Conflict(f"{name} is a namespace; only versions have metadata.")
            raise self._hide(client, resolved, namespace)
        _, found = self._readable_version(tx, client, resolved, version)
        # the client may read this version: its id is no secret to it
        asked = f"{name}:{found.version}"
        self._require(client, "owner", resolved.chain, asked, found, resolved=resolved)
        if found.renamed_to is not None:
            new_name, new_version = found.renamed_to
            raise Conflict(
                f"This version was renamed to {new_name}:{new_version}; change it there."
            )
        return found

    def change_metadata(
        self,
        client: Client,
        name: str,
        version: Optional[str],
        field: str,
        value: Optional[str],
        conditions: Preconditions = NO_CONDITIONS,
    ) -> ObjectVersion:
        """Set (``value``) or remove (None) one field; returns the changed version."""
        if field not in METADATA_FIELDS:
            raise NotFound(
                f"{field!r} is not a metadata field; known: {', '.join(METADATA_FIELDS)}."
            )
        self.firewall(client, "manage_metadata")

        def locate(tx: Transaction) -> ObjectVersion:
            found = self._metadata_target(tx, client, name, version)
            conditions.check(metadata_etag(found))
            return found

        found = self.directory.run(locate)
        if field in DIGEST_FIELDS:
            if value is None:
                raise Conflict(f"{field} describes the stored bytes; it cannot be removed.")
            existing = field_value(found, field)
            if existing is not None:
                if existing != value:
                    raise Conflict(f"{field} is already {existing}; it can never change.")
                return found
            # outside any transaction: this reads the whole object
            digests = self.storage.hash_stored(found.storage_key, found.size)
            actual = digests.md5_b64 if field == "content-md5" else digests.sha256_b64
            if actual != value:
                raise Conflict(f"{field} {value} does not match the stored bytes ({actual}).")

        def write(tx: Transaction) -> ObjectVersion:
            current = tx.version_by_id(found.id)
            if current is None or current.deleted:
                raise NotFound(f"The version {name}:{found.version} was deleted meanwhile.")
            # re-check in the writing transaction: rights and conditions may have changed
            again = self._metadata_target(tx, client, name, found.version)
            conditions.check(metadata_etag(again))
            if field in DIGEST_FIELDS:
                existing = field_value(again, field)
                if existing is not None and existing != value:
                    raise Conflict(f"{field} is already {existing}; it can never change.")
            tx.set_version_metadata(found.id, field, value)
            setattr(again, _ATTRIBUTE[field], value)
            return again

        return self.directory.run(write, write=True)
