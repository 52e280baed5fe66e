"""Chunked upload jobs: large objects sent as fixed-size chunks, then finalized.

:class:`UploadJobs` is a part of the :class:`~hatrac.model.service.Hatrac`
model (a mixin: it relies on the model's authorization helpers and on
:meth:`~hatrac.model.service.Hatrac.bind_version`). The life of a job:

1. **create**: rights to make a new version of the name (create on the parent
   for a new object, update for an existing one) are checked, the backend
   prepares storage (a sparse file, an S3 multipart upload), then the job row
   is inserted; a new name is bound to an object with no version in the same
   transaction (as upstream), so deleting that object cancels the job.
2. **chunks**: each ``PUT JOB/N`` first forgets chunk N in the directory (so a
   chunk whose write fails or is interrupted is missing, never half-present),
   writes the bytes, then records the chunk. Idempotent, any order, in
   parallel; every step refreshes the job's last-activity time.
3. **finalize**: all chunks must be recorded; the backend assembles and hashes
   the bytes durably under a new storage key; checksums given at creation are
   verified (mismatch: 409, the job is kept so the client can resend chunks);
   the version is bound and the job row deleted in one transaction, which
   re-checks the client's rights. Then the job's own storage is released.
4. **cancel / expiry**: the job row is deleted first (a conditional delete,
   so concurrent sweepers never double-work), then its storage is released.

Jobs of a deleted object or namespace are marked cancelled in the deleting
transaction (:meth:`UploadJobs.cancel_jobs_of_names`) and reclaimed by the
sweep, which any worker runs at most once a minute, and ``hatrac gc-jobs``.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import threading
import time
from typing import Iterable, Iterator, Optional

from ..errors import (
    BadRequest,
    Conflict,
    NotFound,
    NotImplementedHere,
    ServiceUnavailable,
)
from ..urls import ROOT, split_name
from .acl import allows
from .client import Client
from .conditions import NO_CONDITIONS
from .directory import Transaction
from .directory import uploads as sql
from .directory.uploads import JobRow
from .ids import new_version_id
from .resources import Name, ObjectVersion
from .storage import ChunkReceipt

logger = logging.getLogger(__name__)

# Limits that keep a job's directory rows and storage sane.
MAX_CONTENT_LENGTH = 5 * 1024**4  # 5 TiB, the largest S3 object
MAX_CHUNKS = 1_000_000
# the largest chunk number the directory stores (a BIGINT); every job ends before it
LARGEST_CHUNK_NUMBER = 2**63 - 1
SWEEP_INTERVAL_SECS = 60.0
# a chunk start refreshes the job's activity time when it is older than this
ACTIVITY_GRANULARITY_SECS = 60.0
LOST_JOB_FILE_AGE_SECS = 3600.0

_sweep_lock = threading.Lock()


class UploadJobs:
    """Upload-job operations of the model (mixed into ``Hatrac``)."""

    _next_job_sweep = 0.0

    # -- helpers -----------------------------------------------------------------
    def _job_for(self, tx: Transaction, client: Client, name: str, job: str) -> JobRow:
        """The open job, if this client may use it (its creator; or anyone, for
        a job created anonymously, whose unguessable URL is the capability)."""
        return self._usable_job(sql.get_job(tx, name, job), client, name, job)

    @staticmethod
    def _usable_job(found: Optional[JobRow], client: Client, name: str, job: str) -> JobRow:
        """The job row just read, if it exists and this client may use it (else 404)."""
        if found is None:
            raise NotFound(
                f"The upload job {job} of {name} does not exist (finalized, cancelled "
                "or expired, or never made)."
            )
        if found.owner is not None and found.owner != client.identity:
            # someone else's job: as if it did not exist (job URLs are not listed)
            raise NotFound(f"The upload job {job} of {name} does not exist (for this client).")
        return found

    @staticmethod
    def check_job_sizes(chunk_length: int, content_length: int) -> None:
        if chunk_length < 1:
            raise BadRequest("chunk-length must be a positive number of bytes.")
        if content_length < 0:
            raise BadRequest("content-length must not be negative.")
        if content_length > MAX_CONTENT_LENGTH:
            raise BadRequest(
                f"content-length {content_length} exceeds the limit of {MAX_CONTENT_LENGTH} bytes."
            )
        if chunk_length > MAX_CONTENT_LENGTH:
            raise BadRequest(f"chunk-length {chunk_length} is larger than any object can be.")
        if -(-content_length // chunk_length) > MAX_CHUNKS:
            raise BadRequest(
                f"This job would need more than {MAX_CHUNKS} chunks; use a larger chunk-length."
            )

    # -- creating, reading ----------------------------------------------------
    def create_job(
        self,
        client: Client,
        name: str,
        chunk_length: int,
        content_length: int,
        metadata: dict,
        parents: bool = False,
    ) -> JobRow:
        """Open a job that will make a new version of ``name`` when finalized."""
        self.check_job_sizes(chunk_length, content_length)
        if name == ROOT:
            raise Conflict("The root is a namespace; upload jobs make objects.")
        self.firewall(client, "create")
        self.maybe_sweep_jobs()
        self.directory.run(
            lambda tx: self._check_new_version(tx, client, name, parents, NO_CONDITIONS)
        )
        job_key = new_version_id()
        try:
            state = self.storage.create_job(job_key, content_length, chunk_length)
        except NotImplementedError:
            raise NotImplementedHere(
                f"The {self.storage.name} storage backend does not support upload jobs."
            ) from None

        def work(tx: Transaction) -> JobRow:
            now = time.time()
            # the writers' lock on names: a namespace delete waits for this job, then cancels it
            resolved = self._check_new_version(tx, client, name, parents, NO_CONDITIONS, "share")
            # as upstream: a job on a new name binds the object (with no version yet), so
            # its ACLs can be set, a second job sees it, and deleting it cancels the job
            self._bind_object(tx, client, resolved, now)
            sql.create_job(
                tx,
                job_key,
                name,
                client.identity,
                chunk_length,
                content_length,
                metadata,
                parents,
                state,
                now,
            )
            found = sql.get_job(tx, name, job_key)
            assert found is not None
            return found

        try:
            return self.directory.run(work, write=True)
        except BaseException:
            self._release_job_storage(job_key, state)
            raise

    def get_job(self, client: Client, name: str, job: str) -> tuple[JobRow, list[int]]:
        """A job and the numbers of its stored chunks (ascending)."""

        def work(tx: Transaction) -> tuple[JobRow, list[int]]:
            found = self._job_for(tx, client, name, job)
            return found, sql.chunk_numbers(tx, found.id)

        return self.directory.run(work)

    def list_jobs(self, client: Client, name: str) -> list[JobRow]:
        """The client's own open jobs on the object ``name`` (none for anonymous clients).

        404 for a namespace (namespaces have no ;upload); none for a name not
        bound yet, also under namespaces not made yet (a job with ?parents makes
        them), to clients who may list the nearest namespace that exists (where
        they can see as much). An object's existence is only shown to clients
        who may list its namespace or make versions of it."""

        def work(tx: Transaction) -> list[JobRow]:
            resolved = self._resolve(tx, name)
            unbound = resolved.target is None or resolved.target.deleted
            # no object or deleted name on the way down: live namespaces, then new names
            open_way = resolved.blocker is None and bool(resolved.ancestors)
            if unbound and open_way and allows(client, "read", resolved.ancestors):
                return []  # no job has bound this name: none open (the web uploader asks)
            target = self._live(client, resolved, "object")
            if not target.is_object:
                namespace = NotFound(f"{name} is a namespace; namespaces have no ;upload.")
                raise self._hide(client, resolved, namespace)
            visible = allows(client, "read", resolved.ancestors)
            if not (visible or allows(client, "update", resolved.chain)):
                raise self._unseen(client, resolved)
            if client.identity is None:
                return []
            return sql.jobs_of(tx, name, client.identity)

        return self.directory.run(work)

    # -- chunks ------------------------------------------------------------------
    def put_chunk(
        self,
        client: Client,
        name: str,
        job: str,
        index: int,
        blocks: Iterable[bytes],
        declared_length: Optional[int],
        digests: Optional[dict] = None,
    ) -> ChunkReceipt:
        """Store chunk ``index`` of a job (idempotent)."""

        def check(tx: Transaction) -> tuple[JobRow, bool]:
            # the job and whether this chunk is recorded, in one round trip; a
            # number the database cannot hold is past every job's end (409 below)
            lookup = min(index, LARGEST_CHUNK_NUMBER)
            row, recorded = sql.get_job_and_chunk(tx, name, job, lookup)
            found = self._usable_job(row, client, name, job)
            if index >= found.chunk_count:
                raise Conflict(
                    f"Chunk {index} is past the end of this job, which has "
                    f"{found.chunk_count} chunk(s) (numbered from 0)."
                )
            expected = found.chunk_size(index)
            if declared_length is not None and declared_length != expected:
                raise BadRequest(
                    f"Chunk {index} must be exactly {expected} bytes; the request declares "
                    f"{declared_length}."
                )
            return found, recorded

        def start(tx: Transaction) -> None:
            # from here until it is recorded again, the chunk counts as missing
            sql.forget_chunk(tx, found.id, index)
            if not sql.touch_job(tx, found.id, time.time()):
                raise NotFound(f"The upload job {job} of {name} does not exist (any more).")

        # a write transaction only when there is something to forget, or to keep a
        # long-idle job from expiring under this chunk (first sends: one read)
        found, recorded = self.directory.run(check)
        # the job's activity time as of now (it only moves forward)
        active = found.last_activity
        if recorded or active < time.time() - ACTIVITY_GRANULARITY_SECS:
            active = time.time()
            self.directory.run(start, write=True, serializable=False)
        expected = found.chunk_size(index)
        claimed = {field: value for field, value in (digests or {}).items() if value is not None}
        # hash only what the client claims, and only when the backend does not hash
        # the chunk anyway (S3 spools and hashes every part): never twice
        hashing = _ChunkHashes(claimed) if claimed and not self.storage.hashes_chunks else None
        checked = _exact_blocks(blocks, expected, index, hashing)
        receipt = self.storage.write_chunk(
            found.job, found.storage_state, index, index * found.chunk_length, checked
        )
        if receipt.size != expected:
            raise BadRequest(f"Chunk {index} must be exactly {expected} bytes; got {receipt.size}.")
        if hashing is not None:
            receipt.md5_b64 = receipt.md5_b64 or hashing.b64("content-md5")
            receipt.sha256_b64 = receipt.sha256_b64 or hashing.b64("content-sha256")
        for field, actual in (
            ("content-md5", receipt.md5_b64),
            ("content-sha256", receipt.sha256_b64),
        ):
            if field in claimed and claimed[field] != actual:
                raise BadRequest(
                    f"The {field} of chunk {index} ({claimed[field]}) does not match the bytes "
                    f"received ({actual}); resend the chunk."
                )

        def finish(tx: Transaction) -> None:
            now = time.time()
            refresh_after = now - ACTIVITY_GRANULARITY_SECS
            recorded = sql.record_chunk(
                tx,
                found.id,
                index,
                receipt.size,
                receipt.md5_b64,
                receipt.sha256_b64,
                receipt.state,
                now,
                # one statement less per chunk while the job's activity is recent
                refresh_after if active < refresh_after else None,
            )
            if not recorded:
                raise NotFound(f"The upload job {job} was cancelled while the chunk was sent.")

        self.directory.run(finish, write=True, serializable=False)
        return receipt

    # -- finishing -----------------------------------------------------------------
    def finalize_job(self, client: Client, name: str, job: str) -> ObjectVersion:
        """Assemble a complete job into a new version of its object."""
        self.firewall(client, "create")

        def check(tx: Transaction) -> tuple[JobRow, list[tuple]]:
            found = self._job_for(tx, client, name, job)
            self._check_new_version(
                tx, client, found.name, found.parents, NO_CONDITIONS, first_by_job=True
            )
            stored = sql.chunks(tx, found.id)
            if len(stored) != found.chunk_count:
                if sql.get_job(tx, name, job) is None:  # a racing finalization won meanwhile
                    raise NotFound(
                        f"The upload job {job} of {name} was finalized (or cancelled) by "
                        "another request."
                    )
                have = {row[0] for row in stored}
                missing = [i for i in range(found.chunk_count) if i not in have]
                shown = ", ".join(str(i) for i in missing[:20])
                more = f" and {len(missing) - 20} more" if len(missing) > 20 else ""
                raise Conflict(
                    f"The upload job is missing {len(missing)} chunk(s): {shown}{more}; "
                    "send them, then finalize again."
                )
            return found, stored

        found, stored = self.directory.run(check)
        receipts = [
            ChunkReceipt(row[0], row[1], row[2] or "", row[3] or "", row[4] or "") for row in stored
        ]
        version = new_version_id()
        key = self.storage.key_for(found.name, version)
        digests = self.storage.finalize_job(
            found.job, found.storage_state, found.content_length, receipts, key
        )
        if digests.size != found.content_length:
            self._reclaim([key])
            raise Conflict("The job's assembled bytes do not have its content-length.")
        for field, actual in (
            ("content-md5", digests.md5_b64),
            ("content-sha256", digests.sha256_b64),
        ):
            claimed = found.metadata().get(field)
            if claimed is not None and claimed != actual:
                self._reclaim([key])
                raise Conflict(
                    f"The {field} given when the job was created ({claimed}) does not match the "
                    f"assembled bytes ({actual}); no version was made. The job is kept: resend "
                    "the wrong chunks and finalize again, or cancel it."
                )
        metadata = found.metadata()
        metadata["content-md5"] = digests.md5_b64
        metadata["content-sha256"] = digests.sha256_b64

        def consume_job(tx: Transaction) -> None:
            if not sql.delete_job(tx, found.id):
                raise NotFound(f"The upload job {job} was finalized or cancelled meanwhile.")

        created = self.bind_version(
            client,
            found.name,
            version,
            found.content_length,
            key,
            metadata,
            found.parents,
            NO_CONDITIONS,
            also=consume_job,
            first_by_job=True,
        )
        self._release_job_storage(found.job, found.storage_state)
        return created

    def cancel_job(self, client: Client, name: str, job: str) -> None:
        """Forget a job and its partial bytes."""

        def work(tx: Transaction) -> JobRow:
            found = self._job_for(tx, client, name, job)
            sql.delete_job(tx, found.id)
            return found

        found = self.directory.run(work, write=True)
        self._release_job_storage(found.job, found.storage_state)

    def _release_job_storage(self, job_key: str, state: str) -> None:
        try:
            self.storage.cancel_job(job_key, state)
        except Exception:  # the lost-job sweep of 'hatrac gc-jobs' gets it later
            logger.exception("could not release the storage of upload job %s", job_key)

    # -- deletion hook and expiry ---------------------------------------------------
    def cancel_jobs_of_names(self, tx: Transaction, names: list[Name]) -> None:
        """Inside a deleting transaction: cancel the jobs of these names and beneath.

        Only the topmost names need a statement each: a namespace's range covers
        every job beneath it, including jobs of names not bound yet (?parents).
        """
        listed = {n.name for n in names}
        for entry in names:
            if any(a in listed for a in split_name(entry.name)[:-1]):
                continue  # covered by an ancestor's range
            sql.cancel_jobs_under(tx, entry.name, entry.is_namespace)
        type(self)._next_job_sweep = 0.0  # reclaim their storage soon

    def sweep_jobs(self, now: Optional[float] = None, limit: int = 1000) -> list[str]:
        """Remove cancelled jobs and jobs idle past ``upload_job_expiry_secs``.

        Safe to run in any number of workers at once: each job is claimed by a
        conditional delete that only one transaction can win, and a chunk
        arriving refreshes the activity time under the same row lock.
        """
        now = time.time() if now is None else now
        idle_before = now - self.config.upload_job_expiry_secs
        candidates = self.directory.run(lambda tx: sql.expired_jobs(tx, idle_before, limit))
        removed = []
        for job_id, job_key, state in candidates:
            won = self.directory.run(
                lambda tx, job_id=job_id: sql.claim_expired_job(tx, job_id, idle_before),
                write=True,
                serializable=False,
            )
            if won:
                self._release_job_storage(job_key, state)
                removed.append(job_key)
        return removed

    def find_lost_job_storage(self, now: Optional[float] = None) -> list[str]:
        """Job storage whose row is gone (a crash between the two steps)."""
        lister = getattr(self.storage, "job_keys", None)
        if lister is None:
            return []
        now = time.time() if now is None else now
        on_disk = lister(now - LOST_JOB_FILE_AGE_SECS)
        if not on_disk:
            return []
        known = self.directory.run(sql.all_job_keys)
        return [key for key in on_disk if key not in known]

    def sweep_lost_job_storage(self, now: Optional[float] = None) -> list[str]:
        """Release what :meth:`find_lost_job_storage` finds."""
        lost = self.find_lost_job_storage(now)
        for key in lost:
            self._release_job_storage(key, "")
        return lost

    def maybe_sweep_jobs(self) -> None:
        """The opportunistic sweep: at most once a minute per process, never failing."""
        now = time.monotonic()
        with _sweep_lock:
            if now < type(self)._next_job_sweep:
                return
            type(self)._next_job_sweep = now + SWEEP_INTERVAL_SECS
        try:
            self.sweep_jobs(limit=100)
        except ServiceUnavailable as error:  # the database or storage is down: no bug
            logger.warning("the upload-job sweep will run again later: %s", error.message)
        except Exception:
            logger.exception("the upload-job sweep failed; it will run again later")


class _ChunkHashes:
    """The digests a client claimed for a chunk (MD5, SHA-256 or both), computed as
    its blocks pass; a digest not claimed is not computed."""

    _KINDS = {"content-md5": hashlib.md5, "content-sha256": hashlib.sha256}

    def __init__(self, claimed: dict) -> None:
        self._hashes = {field: self._KINDS[field]() for field in claimed if field in self._KINDS}

    def update(self, block: bytes) -> None:
        for digest in self._hashes.values():
            digest.update(block)

    def b64(self, field: str) -> str:
        """The base64 digest of ``field``, or "" when it was not claimed."""
        digest = self._hashes.get(field)
        return base64.b64encode(digest.digest()).decode("ascii") if digest else ""


def _exact_blocks(
    blocks: Iterable[bytes], expected: int, index: int, digests: Optional[_ChunkHashes]
) -> Iterator[bytes]:
    """Pass blocks through, refusing more than ``expected`` bytes, hashing on request."""
    total = 0
    for block in blocks:
        total += len(block)
        if total > expected:
            raise BadRequest(f"Chunk {index} must be exactly {expected} bytes; got more.")
        if digests is not None:
            digests.update(block)
        yield block
    if total != expected:
        raise BadRequest(f"Chunk {index} must be exactly {expected} bytes; got {total}.")
