"""Copy a subtree of a running server into this service's database and storage.

Names are created in walk order (parents first) with the source's ACLs as
they are; each visible version is streamed into storage (hashed in the same
pass, checked against the source's digests and length) and bound under its
**original version id**, oldest first, so the newest stays current. Writes go
straight to the directory: the migration runs as the admin, so nobody is
added as owner, and nothing is authorized against our own ACLs.

Resumable and idempotent: a name that exists here with the same kind gets the
source's ACLs again; a version that exists here with the same size and MD5
is skipped. Anything else that disagrees is a problem in the report, and the
copy goes on with the rest.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from threading import Lock
from typing import TYPE_CHECKING, Callable, Iterable, Iterator, Optional

from ..model.ids import new_version_id
from ..model.metadata import canonical_digest
from ..model.resources import NAMESPACE, OBJECT
from ..model.service import Hatrac
from ..urls import ROOT, parent_name
from .source import RemoteServer, SourceError, SourceVersion

if TYPE_CHECKING:
    from ..model.directory import Transaction

LIMITATIONS = (
    "deleted names and versions are not visible through the REST API: the copy has no "
    "tombstones, so their names could be bound again here (import the database instead "
    "where you can)",
    "renamed-away versions are copied as ordinary versions with the bytes they serve",
)


@dataclass
class Report:
    """What a migration did and what it could not do."""

    namespaces: int = 0
    objects: int = 0
    versions: int = 0
    bytes: int = 0
    already_present: int = 0
    problems: list = field(default_factory=list)
    lock: Lock = field(default_factory=Lock, repr=False)

    def add(self, **counts: int) -> None:
        with self.lock:
            for key, value in counts.items():
                setattr(self, key, getattr(self, key) + value)

    def problem(self, where: str, what: str) -> None:
        with self.lock:
            self.problems.append({"name": where, "problem": what})

    def as_dict(self) -> dict:
        return {
            "namespaces": self.namespaces,
            "objects": self.objects,
            "versions": self.versions,
            "bytes": self.bytes,
            "already_present": self.already_present,
            "problems": list(self.problems),
            "limitations": list(LIMITATIONS),
        }


def base64_digest(field: str, value: Optional[str]) -> Optional[str]:
    """A stored digest as base64, whether the source gave base64 or hex; None if absent."""
    if not value:
        return None
    canonical = canonical_digest(field, value)
    if canonical is None:
        raise ValueError(f"the stored {field} {value!r} is neither hex nor base64 of a digest")
    return canonical


class Migration:
    """One copy from a :class:`RemoteServer` into a local :class:`Hatrac` service."""

    def __init__(
        self,
        source: RemoteServer,
        service: Hatrac,
        jobs: int = 4,
        dry_run: bool = False,
        progress: Optional[Callable[[int], None]] = None,
    ) -> None:
        self.source = source
        self.service = service
        self.directory = service.directory
        self.storage = service.storage
        self.jobs = max(1, jobs)
        self.dry_run = dry_run
        self.progress = progress or (lambda nbytes: None)
        self.report = Report()
        self.planned: set[str] = set()  # namespaces a dry run would have created

    # -- the walk ----------------------------------------------------------------
    def run(self, start: str = ROOT) -> Report:
        with ThreadPoolExecutor(self.jobs) as pool:
            pending = []
            stack = [start]
            while stack:
                name = stack.pop()
                try:
                    kind, acls = self.source.acls(name)
                except SourceError as error:
                    self.report.problem(name, str(error))
                    continue
                if kind == NAMESPACE:
                    if self._bind(name, NAMESPACE, acls):
                        try:
                            stack.extend(reversed(self.source.children(name)))
                        except SourceError as error:
                            self.report.problem(name, str(error))
                elif self._bind(name, OBJECT, acls):
                    pending.append(pool.submit(self._copy_object, name))
            for future in pending:
                future.result()
        return self.report

    def _bind(self, name: str, kind: str, acls: dict) -> bool:
        """Make ``name`` exist here as ``kind`` with ``acls``; False if it cannot."""
        if name == ROOT:
            if not self.dry_run:
                self.directory.run(lambda tx: self._set_name_acls(tx, ROOT, acls), write=True)
            return True

        def work(tx: Transaction) -> Optional[str]:
            existing = tx.get_name(name)
            if existing is None:
                if self.dry_run:
                    if parent_name(name) in self.planned or tx.get_name(parent_name(name)):
                        self.planned.add(name)
                        return None
                    return "its parent namespace is missing here"
                parent = tx.get_name(parent_name(name))
                if parent is None or parent.deleted or parent.kind != NAMESPACE:
                    return "its parent namespace is missing here"
                tx.create_name(name, parent.id, kind, acls, time.time())
                return None
            if existing.deleted:
                return "the name is a tombstone here: it can never be bound again"
            if existing.kind != kind:
                return f"the name is a {existing.kind} here and a {kind} on the source"
            if not self.dry_run:
                tx.set_name_acls(existing.id, acls)
            return None

        refused = self.directory.run(work, write=not self.dry_run)
        if refused:
            self.report.problem(name, refused)
            return False
        self.report.add(**{"namespaces" if kind == NAMESPACE else "objects": 1})
        return True

    @staticmethod
    def _set_name_acls(tx: Transaction, name: str, acls: dict) -> None:
        found = tx.get_name(name)
        if acls.get("owner") or acls.get("subtree-owner"):
            tx.set_name_acls(found.id, acls)

    # -- versions ----------------------------------------------------------------
    def _copy_object(self, name: str) -> None:
        try:
            versions = self.source.versions(name)
        except SourceError as error:
            self.report.problem(name, str(error))
            return
        for version in versions:  # oldest first: the newest ends up current
            try:
                self._copy_version(self.source.describe(name, version))
            except (SourceError, ValueError) as error:
                self.report.problem(f"{name}:{version}", str(error))

    def _copy_version(self, found: SourceVersion) -> None:
        md5 = base64_digest("content-md5", found.metadata.get("content-md5"))
        sha256 = base64_digest("content-sha256", found.metadata.get("content-sha256"))
        existing = self.directory.run(
            lambda tx: (
                tx.get_version(tx.get_name(found.name).id, found.version)
                if tx.get_name(found.name)
                else None
            )
        )
        if existing is not None:
            if existing.deleted:
                raise ValueError("this version id is retired here (deleted): not copied")
            if existing.size != found.size or (md5 and existing.content_md5 != md5):
                raise ValueError("a different version with this id exists here: not copied")
            if not self.dry_run:
                self.directory.run(
                    lambda tx: tx.set_version_acls(existing.id, found.acls), write=True
                )
            self.report.add(already_present=1)
            return
        if self.dry_run:
            self.report.add(versions=1, bytes=found.size)
            return
        staged = self.storage.stage(
            self.storage.key_for(found.name, new_version_id()),
            self._counted(self.source.content(found.name, found.version)),
        )
        try:
            if staged.size != found.size:
                raise ValueError(f"received {staged.size} bytes, the source announced {found.size}")
            for label, wanted, got in (
                ("MD5", md5, staged.digests.md5_b64),
                ("SHA-256", sha256, staged.digests.sha256_b64),
            ):
                if wanted and wanted != got:
                    raise ValueError(f"the bytes' {label} differs from the source's stored one")
            self.storage.commit(staged)
        except BaseException:
            self.storage.discard(staged)
            raise
        metadata = {
            key: found.metadata[key]
            for key in ("content-type", "content-disposition")
            if isinstance(found.metadata.get(key), str)
        }
        metadata["content-md5"] = staged.digests.md5_b64
        metadata["content-sha256"] = staged.digests.sha256_b64

        def bind(tx: Transaction) -> None:
            target = tx.get_name(found.name)
            tx.create_version(
                target.id,
                found.version,
                staged.size,
                staged.key,
                metadata,
                found.acls,
                found.created or time.time(),
            )

        try:
            self.directory.run(bind, write=True)
        except BaseException:
            self.storage.delete(staged.key)
            raise
        self.report.add(versions=1, bytes=staged.size)

    def _counted(self, blocks: Iterable[bytes]) -> Iterator[bytes]:
        for block in blocks:
            self.progress(len(block))
            yield block
