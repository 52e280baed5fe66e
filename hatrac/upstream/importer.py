"""The in-place import: upstream's rows into our directory, its bytes left where they are.

Three streaming passes over upstream's database (read-only), each in batches
committed one at a time, each row ``ON CONFLICT DO NOTHING``:

1. names, parents first: every namespace and object, live or tombstone, with
   its ACLs (the root's ACLs replace ours);
2. versions in upstream's creation order (its serial id, the only record of
   it), keeping each version id byte for byte, its size, metadata and ACLs;
   tombstones stay tombstones; rename sources keep their forwarding record.
   The bytes of each live version are located in upstream's layout and
   checked (present, right size); ``copy`` also streams them into our own
   layout, hashing them, and ``hash`` records digests upstream never stored;
3. open upload jobs, listed (they are not carried over).

Running it again after an interruption finishes the job without duplicates;
running it after it finished changes nothing. Every problem is reported with
the row it concerns; the import goes on with the rest where that is safe.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Optional
from urllib.parse import quote

from ..model.directory import upstream as sql
from ..model.resources import NAMESPACE
from ..model.storage import Storage, StorageError
from ..model.storage.upstream import UpstreamLayoutStorage
from ..urls import MAX_VERSION_LENGTH
from . import rows
from .site import Site

if TYPE_CHECKING:
    from ..model.directory import Transaction

BATCH = 2000
MAX_DETAILS = 10000  # problems listed one by one; the rest are counted by kind


@dataclass
class Options:
    """How to import."""

    copy: bool = False  # stream bytes into our own layout (hashing them)
    hash: bool = False  # compute digests upstream did not store (reads every such version)
    drop_jobs: bool = False  # open upload jobs are dropped knowingly, not problems
    batch: int = BATCH


@dataclass
class Report:
    """What an import did and found."""

    generation: str = ""
    counts: dict = field(default_factory=dict)
    problems: list = field(default_factory=list)
    jobs: list = field(default_factory=list)
    notes: list = field(default_factory=list)

    problem_counts: dict = field(default_factory=dict)

    def add(self, kind: str, where: str, detail: str) -> None:
        """Record a problem; past MAX_DETAILS only counted (memory stays bounded)."""
        self.problem_counts[kind] = self.problem_counts.get(kind, 0) + 1
        if len(self.problems) < MAX_DETAILS:
            self.problems.append({"kind": kind, "where": where, "detail": detail})

    @property
    def problem_total(self) -> int:
        return sum(self.problem_counts.values())

    def count(self, key: str, amount: int = 1) -> None:
        self.counts[key] = self.counts.get(key, 0) + amount

    def as_dict(self) -> dict:
        return {
            "generation": self.generation,
            "counts": dict(sorted(self.counts.items())),
            "problems": self.problems,
            "problem_counts": dict(sorted(self.problem_counts.items())),
            "upload_jobs": self.jobs,
            "notes": self.notes,
        }

    def text(self) -> str:
        c = self.counts
        lines = [
            f"upstream schema: {self.generation}",
            f"names: {c.get('names', 0)} ({c.get('names_new', 0)} new, "
            f"{c.get('namespaces', 0)} namespaces, {c.get('objects', 0)} objects, "
            f"{c.get('name_tombstones', 0)} tombstones)",
            f"versions: {c.get('versions', 0)} ({c.get('versions_new', 0)} new, "
            f"{c.get('version_tombstones', 0)} tombstones, {c.get('renames', 0)} rename "
            f"forwarders, {c.get('unfinished_skipped', 0)} unfinished rows skipped)",
            f"bytes: {c.get('bytes', 0)} in place, {c.get('bytes_copied', 0)} copied, "
            f"{c.get('digests_computed', 0)} digests computed, "
            f"{c.get('versions_without_digests', 0)} versions without digests",
            f"upload jobs: {len(self.jobs)} open (not carried over)",
        ]
        lines += [f"note: {note}" for note in self.notes]
        lines += [f"PROBLEM {p['kind']} {p['where']}: {p['detail']}" for p in self.problems]
        if self.problem_total > len(self.problems):
            lines.append(f"... and {self.problem_total - len(self.problems)} more (counted above)")
        counted = ", ".join(f"{k}: {n}" for k, n in sorted(self.problem_counts.items()))
        lines.append(f"{self.problem_total} problem(s)" + (f" ({counted})" if counted else ""))
        return "\n".join(lines)


class Importer:
    """One import of an upstream site into our directory."""

    def __init__(
        self,
        site: Site,
        source: sql.UpstreamDatabase,
        directory: Any,
        ours: Optional[Storage],
        options: Options,
        progress: Optional[Callable[[str, int, int], None]] = None,
    ) -> None:
        self.site = site
        self.source = source
        self.directory = directory
        self.ours = ours
        self.options = options
        self.report = Report(notes=list(site.notes))
        self.progress = progress or (lambda what, rows, size: None)
        self.readers = [
            UpstreamLayoutStorage(
                backend.label,
                storage_path=backend.storage_path,
                buckets=backend.in_place_entry().get("upstream_s3"),
            )
            for backend in site.backends
        ]
        self.now = time.time()
        self.legacy_names = False  # some names need PathParser(legacy_names=True)

    def url(self, name: str, version: Optional[str] = None) -> str:
        path = self.site.service_prefix + ("/" if name == "/" else name)
        return path + (":" + quote(version, safe="-_.~") if version is not None else "")

    def run(self) -> Report:
        """All three passes; the report (``legacy_names`` tells what our config needs)."""
        self.report.generation, notes = self.source.generation()
        self.report.notes.extend(notes)
        self._check_buckets()
        self._names()
        self._versions()
        self._jobs()
        return self.report

    # -- S3 buckets -----------------------------------------------------------------
    def _check_buckets(self) -> None:
        for backend, reader in zip(self.site.backends, self.readers):
            for bucket in backend.buckets:
                if bucket.method != "pref/**/hname":
                    continue
                try:
                    status = reader.client(bucket.name).get_bucket_versioning(Bucket=bucket.name)
                    status = status.get("Status")
                except Exception as error:  # noqa: BLE001 - reported, never a crash
                    status = f"unknown ({error})"
                if status != "Enabled":
                    self.report.add(
                        "bucket-not-versioned",
                        f"s3://{bucket.name}",
                        f"versioning is {status or 'off'} but upstream's method "
                        "pref/**/hname reads each version by its S3 VersionId; versions "
                        "whose VersionId the bucket does not have are reported missing",
                    )

    # -- names ----------------------------------------------------------------------
    def _names(self) -> None:
        pending: list[tuple] = []
        depth = None
        for row in self.source.names():
            if pending and (row[4] != depth or len(pending) >= self.options.batch):
                self._flush_names(pending)
                pending = []
            depth = row[4]
            self.progress("names", 1, 0)
            prepared = self._name_row(row)
            if prepared is not None:
                pending.append(prepared)
        if pending:
            self._flush_names(pending)

    def _name_row(self, row: tuple) -> Optional[tuple]:
        uid, stored, subtype, deleted = row[0], row[1], row[2], bool(row[3])
        arrays = dict(zip(sql.NAME_ACL_COLUMNS, row[5:]))
        self.report.count("names")
        where = f"name {stored!r} (upstream id {uid})"
        kind = rows.KINDS.get(subtype)
        if kind is None:
            self.report.add("bad-row", where, f"subtype {subtype!r} is neither 0 nor 1; skipped")
            return None
        canonical, refused = rows.canonical_name(stored or "")
        if not canonical:
            self.report.add("bad-row", where, f"not imported: {refused}")
            return None
        if refused:
            if "empty segment" in refused:
                effect = "it is kept (it blocks reuse) but cannot be addressed over HTTP"
            else:
                self.legacy_names = True
                effect = "the written configuration sets legacy_names, which accepts it"
            self.report.add(
                "name-refused-by-our-urls",
                where,
                f"imported as {canonical!r}; our URL rules refuse {refused} by default: {effect}",
            )
        acls, problems = rows.acls(kind, arrays)
        for problem in problems:
            self.report.add("acl", where, problem)
        self.report.count("namespaces" if kind == NAMESPACE else "objects")
        if deleted:
            self.report.count("name_tombstones")
        if canonical == "/":
            if kind != NAMESPACE or deleted:
                self.report.add("bad-row", where, "the root is not a live namespace; kept ours")

            def root(tx: Transaction) -> None:
                sql.set_root_acls(tx, acls)
                found = sql.names_by_name(tx, ["/"])["/"]
                sql.map_upstream_names(tx, [(uid, found[0], stored)])

            self.directory.run(root, write=True)
            return None
        return (uid, stored, canonical, kind, json.dumps(acls), deleted)

    def _flush_names(self, batch: list[tuple]) -> None:
        def work(tx: Transaction) -> tuple[set[str], dict[str, tuple], dict[int, tuple[int, str]]]:
            values = [(r[2], rows.parent_of(r[2]), r[3], r[4], r[5], self.now) for r in batch]
            new = sql.insert_names(tx, values)
            found = sql.names_by_name(tx, [r[2] for r in batch])
            mapped = [(r[0], found[r[2]][0], r[1]) for r in batch if r[2] in found]
            sql.map_upstream_names(tx, mapped)
            return new, found, sql.upstream_mapping(tx, [r[0] for r in batch])

        new, found, mapping = self.directory.run(work, write=True)
        self.report.count("names_new", len(new))
        for uid, stored, canonical, kind, _acls, deleted in batch:
            where = f"name {stored!r} (upstream id {uid})"
            if canonical not in found:
                self.report.add(
                    "orphan-name",
                    where,
                    f"its parent {rows.parent_of(canonical)!r} is not a namespace here (upstream's "
                    "rows disagree with themselves); not imported, nor anything below it",
                )
            elif uid not in mapping:
                self.report.add(
                    "name-collision",
                    where,
                    f"spelled differently, it is the same name as another upstream row "
                    f"({canonical!r}); the first row was imported, this one and its versions not",
                )
            elif found[canonical][1] != kind or found[canonical][3] != deleted:
                self.report.add(
                    "name-differs",
                    where,
                    "already here with another kind or deletion state (changed since the "
                    "last import?); left as it is here",
                )

    # -- versions ---------------------------------------------------------------------
    def _versions(self) -> None:
        pending: list[tuple] = []
        for row in self.source.versions():
            pending.append(row)
            if len(pending) >= self.options.batch:
                self._flush_versions(pending)
                pending = []
        if pending:
            self._flush_versions(pending)

    def _flush_versions(self, batch: list[tuple]) -> None:
        mapping = self.directory.run(
            lambda tx: sql.upstream_mapping(tx, sorted({r[1] for r in batch if r[1] is not None}))
        )
        values = []
        for row in batch:
            self.progress("versions", 1, 0)
            prepared = self._version_row(row, mapping)
            if prepared is not None:
                values.append(prepared)
        new = self.directory.run(lambda tx: sql.insert_versions(tx, values), write=True)
        self.report.count("versions_new", new)

    def _version_row(self, row: tuple, mapping: dict) -> Optional[tuple]:
        vid, nameid, objname, version, nbytes, deleted = row[:6]
        owner, read, stored_metadata, stored_aux, legacy_type, legacy_md5 = row[6:]
        deleted = bool(deleted)
        where = f"version {objname!r}:{version!r} (upstream id {vid})"
        if version is None:
            if not deleted:
                self.report.add(
                    "bad-row", where, "live but without a version id (violates upstream's CHECK)"
                )
            self.report.count("unfinished_skipped")
            return None
        self.report.count("versions")
        if len(version.encode("utf-8")) > MAX_VERSION_LENGTH or any(
            ord(c) < 0x20 or ord(c) == 0x7F for c in version
        ):
            self.report.add(
                "version-refused-by-our-urls",
                where,
                "imported with its id, but our URL rules refuse the id (over "
                f"{MAX_VERSION_LENGTH} bytes or a control character), so it cannot be addressed",
            )
        if nameid not in mapping:
            self.report.add("orphan-version", where, "its object was not imported; skipped")
            return None
        name_id, name = mapping[nameid]
        metadata, problems = rows.metadata(stored_metadata, legacy_type, legacy_md5)
        aux, aux_problems = rows.aux(stored_aux)
        for problem in problems + aux_problems:
            self.report.add("metadata", where, problem)
        acls, acl_problems = rows.acls("version", {"owner": owner, "read": read})
        for problem in acl_problems:
            self.report.add("acl", where, problem)
        if nbytes is None or nbytes < 0:
            self.report.add("bad-row", where, f"nbytes is {nbytes!r}; the stored size is used")
        renamed = None
        if aux.get("rename_to"):
            target, refused = rows.canonical_name(aux["rename_to"][0])
            renamed = (target, aux["rename_to"][1])
            if refused or not target:
                self.report.add("rename", where, f"forwards to a name our URLs refuse: {refused}")
            self.report.count("renames")
        hname = aux.get("hname") or objname
        hversion = aux.get("hversion") or version
        candidates = self.site.address(hname, hversion, aux.get("version"))
        key, address_problem = candidates[0]
        size = nbytes if nbytes is not None and nbytes >= 0 else 0
        if deleted:
            self.report.count("version_tombstones")
        elif renamed is None:
            if aux.get("url"):
                self.report.add(
                    "bytes-elsewhere",
                    where,
                    f"upstream redirects to {aux['url']} (an online migration in progress); "
                    "its bytes are looked for locally",
                )
            if address_problem:
                self.report.add("bytes", where, address_problem)
            key, size, metadata = self._bytes(where, name, candidates, nbytes, size, metadata)
        if (
            not deleted
            and renamed is None
            and not (metadata.get("content-md5") and metadata.get("content-sha256"))
        ):
            self.report.count("versions_without_digests")
        return (
            name_id,
            version,
            size,
            key,
            metadata.get("content-type"),
            metadata.get("content-md5"),
            metadata.get("content-sha256"),
            metadata.get("content-disposition"),
            json.dumps(acls),
            self.now,
            deleted,
            renamed[0] if renamed else None,
            renamed[1] if renamed else None,
        )

    def _bytes(
        self,
        where: str,
        name: str,
        candidates: list[tuple[str, Optional[str]]],
        nbytes: Optional[int],
        size: int,
        metadata: dict,
    ) -> tuple[str, int, dict]:
        """Locate (and check, hash or copy) one live version's bytes."""
        holder = None
        key = candidates[0][0]
        for reader, (candidate, problem) in zip(self.readers, candidates):
            if problem:
                continue
            try:
                found = reader.stored_size(candidate)
            except (StorageError, ValueError) as error:
                self.report.add("bytes", where, f"cannot be checked: {error}")
                continue
            if found is not None:
                holder, key = reader, candidate
                break
        if holder is None:
            self.report.add("missing-bytes", where, f"no bytes at {key}")
            return key, size, metadata
        if nbytes is None or nbytes < 0:
            size = found
        elif found != nbytes:
            self.report.add(
                "size-mismatch", where, f"upstream recorded {nbytes} bytes, {found} are stored"
            )
        self.report.count("bytes", found)
        self.progress("versions", 0, found)
        if self.options.copy and self.ours is not None:
            return self._copy(where, name, holder, key, size, metadata)
        if self.options.hash and not (
            metadata.get("content-md5") and metadata.get("content-sha256")
        ):
            digests = holder.hash_stored(key, size)
            metadata, _ = self._digests(where, metadata, digests.md5_b64, digests.sha256_b64)
        return key, size, metadata

    def _digests(self, where: str, metadata: dict, md5: str, sha256: str) -> tuple[dict, bool]:
        """Fill absent digests; (metadata, whether a recorded one disagrees)."""
        metadata = dict(metadata)
        differ = False
        for field_name, computed in (("content-md5", md5), ("content-sha256", sha256)):
            if metadata.get(field_name) is None:
                metadata[field_name] = computed
                self.report.count("digests_computed")
            elif metadata[field_name] != computed:
                differ = True
                self.report.add(
                    "digest-mismatch",
                    where,
                    f"the stored bytes' {field_name} is {computed}, upstream recorded "
                    f"{metadata[field_name]}",
                )
        return metadata, differ

    def _copy(
        self,
        where: str,
        name: str,
        holder: UpstreamLayoutStorage,
        key: str,
        size: int,
        metadata: dict,
    ) -> tuple[str, int, dict]:
        """Stream one version into our layout, hashing it; the in-place key on failure."""
        fresh = "u" + hashlib.sha256(key.encode("utf-8")).hexdigest()[:40]
        target = self.ours.key_for(name, fresh)
        if self.ours.exists(target):
            return target, size, metadata  # copied by an earlier run
        body = holder.open(key, size)
        try:
            blocks = (
                body.chunks if body.file is None else iter(lambda: body.file.read(1 << 20), b"")
            )
            staged = self.ours.stage(target, blocks)
        finally:
            if body.close:
                body.close()
            elif body.file is not None:
                body.file.close()
        checked, differ = self._digests(
            where, metadata, staged.digests.md5_b64, staged.digests.sha256_b64
        )
        if staged.size != size or differ:
            self.ours.discard(staged)
            self.report.add("copy", where, "not copied: the bytes differ; left in place")
            return key, size, metadata
        self.ours.commit(staged)
        self.report.count("bytes_copied", staged.size)
        return target, size, checked

    # -- upload jobs ------------------------------------------------------------------
    def _jobs(self) -> None:
        for _jid, objname, job, nbytes, chunksize, owner, created, chunks in self.source.uploads():
            canonical, _ = rows.canonical_name(objname or "")
            url = self.url(canonical or str(objname)) + ";upload/" + quote(job, safe="-_.~")
            entry = {
                "url": url,
                "content_length": nbytes,
                "chunk_length": chunksize,
                "owner": list(owner or []),
                "created_on": created,
                "chunks_recorded": chunks,
            }
            self.report.jobs.append(entry)
            if not self.options.drop_jobs:
                self.report.add(
                    "open-upload-job",
                    url,
                    "not carried over; let its client finish it on upstream before the "
                    "import, or pass --drop-jobs to accept losing it",
                )
