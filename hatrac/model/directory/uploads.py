"""SQL of chunked upload jobs, version metadata changes and renames.

Functions here take a :class:`~hatrac.model.directory.sql.Transaction` and
run bound-parameter statements on it; the model decides, this module only
reads and writes rows. Tables (migration ``uploads-1`` in :mod:`.schema`):

* ``upload_jobs``: one row per open job (the target name, the owner, sizes,
  metadata given at creation, opaque backend state, the last activity time).
* ``upload_chunks``: one row per chunk whose bytes are durably stored.

A job row is deleted when the job is finalized (in the same transaction that
binds the version), cancelled or expired; its chunks go with it (ON DELETE
CASCADE). Jobs of deleted names are first marked ``cancelled`` inside the
deleting transaction, and their bytes are reclaimed by the sweep.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from ...urls import ROOT
from .sql import Transaction

OPEN = "open"
CANCELLED = "cancelled"

_JOB_COLUMNS = (
    "id, job, name, owner, chunk_length, content_length, content_type, content_md5, "
    "content_sha256, content_disposition, parents, storage_state, state, created, last_activity"
)


@dataclass
class JobRow:
    """An upload job as stored."""

    id: int
    job: str
    name: str
    owner: Optional[str]
    chunk_length: int
    content_length: int
    content_type: Optional[str]
    content_md5: Optional[str]
    content_sha256: Optional[str]
    content_disposition: Optional[str]
    parents: bool
    storage_state: str
    state: str
    created: float
    last_activity: float

    @property
    def chunk_count(self) -> int:
        """How many chunks make the whole object (0 for an empty one)."""
        return -(-self.content_length // self.chunk_length)

    def chunk_size(self, index: int) -> int:
        """The exact size chunk ``index`` must have."""
        return min(self.chunk_length, self.content_length - index * self.chunk_length)

    def metadata(self) -> dict:
        fields = {
            "content-type": self.content_type,
            "content-md5": self.content_md5,
            "content-sha256": self.content_sha256,
            "content-disposition": self.content_disposition,
        }
        return {key: value for key, value in fields.items() if value is not None}


def _job(row: tuple) -> JobRow:
    values = list(row)
    values[10] = bool(values[10])
    return JobRow(*values)


def create_job(
    tx: Transaction,
    job: str,
    name: str,
    owner: Optional[str],
    chunk_length: int,
    content_length: int,
    metadata: dict,
    parents: bool,
    storage_state: str,
    now: float,
) -> None:
    tx.execute(
        "INSERT INTO upload_jobs (job, name, owner, chunk_length, content_length, content_type, "
        "content_md5, content_sha256, content_disposition, parents, storage_state, state, "
        "created, last_activity) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
        (
            job,
            name,
            owner,
            chunk_length,
            content_length,
            metadata.get("content-type"),
            metadata.get("content-md5"),
            metadata.get("content-sha256"),
            metadata.get("content-disposition"),
            parents,
            storage_state,
            OPEN,
            now,
            now,
        ),
    )


def get_job(tx: Transaction, name: str, job: str) -> Optional[JobRow]:
    """An open job of ``name`` (cancelled jobs count as gone)."""
    row = tx.one(
        f"SELECT {_JOB_COLUMNS} FROM upload_jobs WHERE job = %s AND name = %s AND state = %s",
        (job, name, OPEN),
    )
    return _job(row) if row else None


def get_job_and_chunk(
    tx: Transaction, name: str, job: str, index: int
) -> tuple[Optional[JobRow], bool]:
    """:func:`get_job`, and whether chunk ``index`` of it is recorded: one statement."""
    row = tx.one(
        f"SELECT {_JOB_COLUMNS}, EXISTS (SELECT 1 FROM upload_chunks AS c "
        "WHERE c.job_id = upload_jobs.id AND c.chunk = %s) "
        "FROM upload_jobs WHERE job = %s AND name = %s AND state = %s",
        (index, job, name, OPEN),
    )
    if not row:
        return None, False
    return _job(row[:-1]), bool(row[-1])


def jobs_of(tx: Transaction, name: str, owner: Optional[str]) -> list[JobRow]:
    """The open jobs ``owner`` has on ``name``, oldest first."""
    rows = tx.all(
        f"SELECT {_JOB_COLUMNS} FROM upload_jobs WHERE name = %s AND owner = %s AND state = %s "
        "ORDER BY id",
        (name, owner, OPEN),
    )
    return [_job(row) for row in rows]


def touch_job(tx: Transaction, job_id: int, now: float) -> bool:
    """Record activity on an open job (locks its row); False when the job is gone."""
    row = tx.one(
        "UPDATE upload_jobs SET last_activity = %s WHERE id = %s AND state = %s RETURNING id",
        (now, job_id, OPEN),
    )
    return row is not None


def forget_chunk(tx: Transaction, job_id: int, index: int) -> None:
    """Mark a chunk as not (or no longer) validly stored, before it is (re)written."""
    tx.execute("DELETE FROM upload_chunks WHERE job_id = %s AND chunk = %s", (job_id, index))


def record_chunk(
    tx: Transaction,
    job_id: int,
    index: int,
    size: int,
    md5: str,
    sha256: str,
    state: str,
    now: float,
    refresh_after: Optional[float],
) -> bool:
    """Record a stored chunk of an open job; False when the job is gone.

    The job row is not updated for every chunk (a row rewritten thousands of
    times is slow on PostgreSQL): the foreign key locks it against deletion,
    and its activity time is refreshed only when older than ``refresh_after``
    (None: the caller knows it is not, and the statement is not sent).
    """
    try:
        row = tx.one(
            "INSERT INTO upload_chunks (job_id, chunk, size, md5, sha256, state) "
            "SELECT %s, %s, %s, %s, %s, %s WHERE EXISTS "
            "(SELECT 1 FROM upload_jobs WHERE id = %s AND state = %s) "
            "ON CONFLICT (job_id, chunk) DO UPDATE SET "
            "size = excluded.size, md5 = excluded.md5, sha256 = excluded.sha256, "
            "state = excluded.state RETURNING job_id",
            (job_id, index, size, md5, sha256, state, job_id, OPEN),
        )
    except Exception as error:  # the job was deleted after this statement's snapshot
        if "foreign key" in str(error).lower():
            return False
        raise
    if row is None:
        return False
    if refresh_after is not None:
        tx.execute(
            "UPDATE upload_jobs SET last_activity = %s WHERE id = %s AND last_activity < %s",
            (now, job_id, refresh_after),
        )
    return True


def chunk_numbers(tx: Transaction, job_id: int) -> list[int]:
    """The numbers of the job's recorded chunks (writes that completed), ascending."""
    rows = tx.all("SELECT chunk FROM upload_chunks WHERE job_id = %s ORDER BY chunk", (job_id,))
    return [int(row[0]) for row in rows]


def chunks(tx: Transaction, job_id: int) -> list[tuple]:
    """``(index, size, md5, sha256, state)`` of every stored chunk, in order."""
    return tx.all(
        "SELECT chunk, size, md5, sha256, state FROM upload_chunks WHERE job_id = %s "
        "ORDER BY chunk",
        (job_id,),
    )


def delete_job(tx: Transaction, job_id: int) -> bool:
    """Remove a job and its chunks; False when it was already gone."""
    tx.execute("DELETE FROM upload_chunks WHERE job_id = %s", (job_id,))
    row = tx.one("DELETE FROM upload_jobs WHERE id = %s RETURNING id", (job_id,))
    return row is not None


def cancel_jobs_under(tx: Transaction, name: str, subtree: bool) -> None:
    """Mark the jobs of ``name`` (and, for a namespace, of every name beneath it) cancelled."""
    tx.execute(
        "UPDATE upload_jobs SET state = %s, last_activity = %s WHERE name = %s",
        (CANCELLED, 0.0, name),
    )
    if subtree:
        low = "/" if name == ROOT else name + "/"
        high = "0" if name == ROOT else name + "0"  # '0' sorts right after '/'
        tx.execute(
            "UPDATE upload_jobs SET state = %s, last_activity = %s WHERE name >= %s AND name < %s",
            (CANCELLED, 0.0, low, high),
        )


def expired_jobs(tx: Transaction, idle_before: float, limit: int) -> list[tuple]:
    """``(id, job, storage_state)`` of cancelled jobs and jobs idle since ``idle_before``."""
    return tx.all(
        "SELECT id, job, storage_state FROM upload_jobs WHERE state = %s OR last_activity < %s "
        "ORDER BY last_activity LIMIT %s",
        (CANCELLED, idle_before, limit),
    )


def claim_expired_job(tx: Transaction, job_id: int, idle_before: float) -> bool:
    """Delete a job if it is still cancelled or idle: exactly one sweeper wins it."""
    tx.execute(
        "DELETE FROM upload_chunks WHERE job_id IN (SELECT id FROM upload_jobs WHERE id = %s "
        "AND (state = %s OR last_activity < %s))",
        (job_id, CANCELLED, idle_before),
    )
    row = tx.one(
        "DELETE FROM upload_jobs WHERE id = %s AND (state = %s OR last_activity < %s) RETURNING id",
        (job_id, CANCELLED, idle_before),
    )
    return row is not None


def all_job_keys(tx: Transaction) -> set[str]:
    """Ids of every job row (for sweeping job storage that lost its row)."""
    return {row[0] for row in tx.all("SELECT job FROM upload_jobs")}


# -- renames -------------------------------------------------------------------
def forward_version(tx: Transaction, version_id: int, new_name: str, new_version: str) -> None:
    """Turn a version into a forwarder to its new name and version."""
    tx.execute(
        "UPDATE versions SET renamed_to_name = %s, renamed_to_version = %s WHERE id = %s",
        (new_name, new_version, version_id),
    )


def forwarders_to(tx: Transaction, name_id: int, new_name: str) -> list[int]:
    """Ids of the live versions of an object that were renamed to ``new_name``."""
    rows = tx.all(
        "SELECT id FROM versions WHERE name_id = %s AND NOT deleted AND renamed_to_name = %s",
        (name_id, new_name),
    )
    return [row[0] for row in rows]


def all_versions_oldest_first(tx: Transaction, name_id: int) -> list[int]:
    """Ids of the live, non-forwarded versions of an object, oldest first."""
    rows = tx.all(
        "SELECT id FROM versions WHERE name_id = %s AND NOT deleted "
        "AND renamed_to_name IS NULL ORDER BY id",
        (name_id,),
    )
    return [row[0] for row in rows]
