"""Builds an upstream-format Hatrac deployment, as upstream's service would leave it.

Written from the facts in ../shared/UPSTREAM-DEPLOYMENT.md (not from upstream's
code): the ``hatrac`` schema in a real PostgreSQL database (current or an
older generation), bytes in upstream's filesystem layout or in a versioned S3
bucket (moto) with S3 VersionIds as version ids, hex digests in ``metadata``,
tombstones, rename records in ``aux``, open upload jobs. It also records what
upstream would answer for each version URL, for request-by-request checks.
"""

from __future__ import annotations

import base64
import hashlib
import json
import random
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import psycopg2

ACL_COLUMNS = (
    "owner",
    "create",
    "update",
    "read",
    "subtree-owner",
    "subtree-create",
    "subtree-update",
    "subtree-read",
)


def ddl(generation: str) -> list[str]:
    """Upstream's tables in one of its schema generations."""
    old = generation == "2015"
    acl_columns = ", ".join(f'"{c}" text[]' for c in ACL_COLUMNS)
    name = (
        "CREATE TABLE hatrac.name (id bigserial PRIMARY KEY, "
        + ("" if old else "pid int8 REFERENCES hatrac.name(id), ancestors int8[], ")
        + "name text NOT NULL UNIQUE, subtype int NOT NULL, is_deleted bool NOT NULL, "
        + f"{acl_columns})"
    )
    content = "content_type text, content_md5 text" if old else "metadata jsonb"
    version = (
        "CREATE TABLE hatrac.version (id bigserial PRIMARY KEY, "
        "nameid int8 NOT NULL REFERENCES hatrac.name(id), version text, nbytes int8, "
        f"{content}, is_deleted bool NOT NULL, owner text[], read text[]"
        + ("" if old else ", aux json")
        + ", UNIQUE (nameid, version), CHECK (version IS NOT NULL OR is_deleted))"
    )
    upload = (
        "CREATE TABLE hatrac.upload (id bigserial PRIMARY KEY, "
        "nameid int8 NOT NULL REFERENCES hatrac.name(id), job text NOT NULL, "
        "nbytes int8 NOT NULL, chunksize int8 NOT NULL CHECK (chunksize > 0), "
        f"{content}, owner text[]"
        + ("" if old else ", created_on timestamptz DEFAULT now()")
        + ", UNIQUE (nameid, job))"
    )
    chunk = (
        "CREATE TABLE hatrac.chunk (uploadid int8 NOT NULL REFERENCES hatrac.upload(id), "
        "position int8 NOT NULL, aux json, UNIQUE (uploadid, position))"
    )
    return ["CREATE SCHEMA hatrac", name, version, upload, chunk]


def base32_id() -> str:
    """A version id of upstream's filesystem backend: 128 bits, RFC 4648 base32, no padding."""
    raw = random.getrandbits(128).to_bytes(16, "big")
    return base64.b32encode(raw).decode("ascii").rstrip("=")


@dataclass
class Expected:
    """What upstream answers for one version URL (to anonymous or a given role)."""

    name: str
    version: str
    body: bytes
    content_type: Optional[str]
    content_md5: Optional[str]  # base64, only when stored
    readers: set = field(default_factory=set)  # roles (besides owners) that may read
    content_disposition: Optional[str] = None


class Deployment:
    """An upstream deployment under construction."""

    def __init__(
        self,
        postgres,
        root: Path,
        generation: str = "current",
        s3=None,
        bucket: Optional[str] = None,
        method: str = "pref/**/hname",
        root_acls: Optional[dict] = None,
    ):
        self.database = f"up_{uuid.uuid4().hex[:10]}"
        postgres.psql(f"CREATE DATABASE {self.database}")
        self.dsn = postgres.dsn(database=self.database)
        self.connection = psycopg2.connect(self.dsn)
        self.connection.autocommit = True
        self.generation = generation
        self.storage_path = root / "upstream-bytes"
        self.storage_path.mkdir(parents=True)
        self.s3 = s3
        self.bucket = bucket
        self.method = method
        self.expected: dict[tuple[str, str], Expected] = {}
        self.ids: dict[str, int] = {}
        self.renamed_away: set[str] = set()  # objects whose versions were renamed away
        for statement in ddl(generation):
            self.sql(statement)
        self._insert_name("/", 0, root_acls or {"owner": ["admin"]})

    # -- plumbing ---------------------------------------------------------------------
    def sql(self, statement: str, params: tuple = ()) -> list:
        with self.connection.cursor() as cursor:
            cursor.execute(statement, params)
            return cursor.fetchall() if cursor.description else []

    def config(self, **extra) -> dict:
        config = {"database_dsn": self.dsn, "service_prefix": "/hatrac"}
        if self.s3 is None:
            config.update(storage_backend="filesystem", storage_path=str(self.storage_path))
        else:
            settings = self.s3.bucket_settings(self.bucket)
            config["storage_backend"] = "amazons3"
            config["s3_config"] = {
                "buckets": {
                    "": {
                        "bucket_name": self.bucket,
                        "hatrac_s3_method": self.method,
                        "session_config": settings["session_config"],
                        "s3_client_kwargs": {"endpoint_url": self.s3.endpoint_url},
                    }
                }
            }
        config.update(extra)
        return config

    def _insert_name(self, name: str, subtype: int, acls: dict, deleted: bool = False) -> int:
        columns = ["name", "subtype", "is_deleted"] + [f'"{m}"' for m in acls]
        values = [name, subtype, deleted] + [list(r) for r in acls.values()]
        if self.generation != "2015":
            parent = None if name == "/" else self.ids[name.rsplit("/", 1)[0] or "/"]
            ancestors = []
            if parent is not None:
                ancestors = self.sql("SELECT ancestors FROM hatrac.name WHERE id = %s", (parent,))
                ancestors = list(ancestors[0][0]) + [parent]
            columns += ["pid", "ancestors"]
            values += [parent, ancestors]
        marks = ", ".join(["%s"] * len(values))
        row = self.sql(
            f"INSERT INTO hatrac.name ({', '.join(columns)}) VALUES ({marks}) RETURNING id",
            tuple(values),
        )
        self.ids[name] = row[0][0]
        return row[0][0]

    # -- what upstream's REST API would have done ---------------------------------------
    def namespace(self, name: str, **acls) -> None:
        self._insert_name(name, 0, {"owner": ["alice"], **_acls(acls)})

    def object(self, name: str, **acls) -> None:
        self._insert_name(name, 1, {"owner": ["alice"], **_acls(acls)})

    def _store(self, name: str, data: bytes, version: Optional[str]) -> str:
        if self.s3 is None:
            version = version or base32_id()
            path = self.storage_path.joinpath(*name[1:].split("/"))
            path = path.with_name(path.name + ":" + version)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            return version
        key = "hatrac/" + name[1:]
        if self.method == "pref/**/hname:hver":
            version = version or base32_id()
            self.s3.client().put_object(Bucket=self.bucket, Key=key + ":" + version, Body=data)
            return version
        reply = self.s3.client().put_object(Bucket=self.bucket, Key=key, Body=data)
        return reply.get("VersionId") or "null"

    def version(
        self,
        name: str,
        data: bytes,
        content_type: Optional[str] = "application/octet-stream",
        digests: bool = True,
        read: Optional[list] = None,
        owner: Optional[list] = None,
        extra_metadata: Optional[dict] = None,
    ) -> str:
        if name not in self.ids:
            self.object(name)
        version = self._store(name, data, None)
        metadata = {}
        if content_type:
            metadata["content-type"] = content_type
        if digests:
            metadata["content-md5"] = hashlib.md5(data).hexdigest()
            metadata["content-sha256"] = hashlib.sha256(data).hexdigest()
        metadata.update(extra_metadata or {})
        self._insert_version(name, version, len(data), metadata, owner or ["alice"], read or [])
        self.expected[(name, version)] = Expected(
            name,
            version,
            data,
            content_type,
            base64.b64encode(hashlib.md5(data).digest()).decode() if digests else None,
            set(read or []),
            metadata.get("content-disposition"),
        )
        return version

    def _insert_version(
        self, name, version, nbytes, metadata, owner, read, aux=None, deleted=False
    ):
        if self.generation == "2015":
            self.sql(
                "INSERT INTO hatrac.version (nameid, version, nbytes, content_type, content_md5, "
                "is_deleted, owner, read) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                (
                    self.ids[name],
                    version,
                    nbytes,
                    metadata.get("content-type"),
                    metadata.get("content-md5"),
                    deleted,
                    owner,
                    read,
                ),
            )
            return
        self.sql(
            "INSERT INTO hatrac.version (nameid, version, nbytes, metadata, is_deleted, owner, "
            "read, aux) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
            (
                self.ids[name],
                version,
                nbytes,
                json.dumps(metadata),
                deleted,
                owner,
                read,
                json.dumps(aux) if aux is not None else None,
            ),
        )

    def path_of(self, name: str, version: str) -> Path:
        path = self.storage_path.joinpath(*name[1:].split("/"))
        return path.with_name(path.name + ":" + version)

    def delete_version(self, name: str, version: str) -> None:
        self.sql(
            "UPDATE hatrac.version SET is_deleted = true WHERE nameid = %s AND version = %s",
            (self.ids[name], version),
        )
        if self.s3 is None:
            self.path_of(name, version).unlink()
        self.expected.pop((name, version))

    def delete_name(self, name: str) -> None:
        """Tombstone the name, every name below it and all their versions."""
        below = self.sql(
            "SELECT id, name FROM hatrac.name WHERE name = %s OR name LIKE %s",
            (name, name + "/%"),
        )
        for row_id, _ in below:
            self.sql("UPDATE hatrac.name SET is_deleted = true WHERE id = %s", (row_id,))
            self.sql("UPDATE hatrac.version SET is_deleted = true WHERE nameid = %s", (row_id,))
        for key in [k for k in self.expected if k[0] == name or k[0].startswith(name + "/")]:
            if self.s3 is None:
                self.path_of(*key).unlink()
            self.expected.pop(key)

    def rename(self, source: str, target: str) -> list[str]:
        """Upstream's rename_from: same ids, bytes stay under the old name."""
        self.object(target)
        self.renamed_away.add(source)
        rows = self.sql(
            "SELECT version, nbytes, metadata, aux FROM hatrac.version "
            "WHERE nameid = %s AND NOT is_deleted ORDER BY id DESC",
            (self.ids[source],),
        )
        moved = []
        for version, nbytes, metadata, aux in rows:
            aux = dict(aux or {})
            aux.setdefault("hname", source)
            self._insert_version(target, version, nbytes, metadata, ["alice"], [], aux)
            self.sql(
                "UPDATE hatrac.version SET aux = %s WHERE nameid = %s AND version = %s",
                (json.dumps({"rename_to": [target, version]}), self.ids[source], version),
            )
            old = self.expected[(source, version)]
            self.expected[(target, version)] = Expected(
                target, version, old.body, old.content_type, old.content_md5, set()
            )
            moved.append(version)
        return moved

    def upload_job(self, name: str, nbytes: int, chunksize: int) -> str:
        if name not in self.ids:
            self.object(name)
        job = base32_id()
        if self.s3 is None:
            path = self.path_of(name, job)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"")
        self.sql(
            "INSERT INTO hatrac.upload (nameid, job, nbytes, chunksize, owner) "
            "VALUES (%s, %s, %s, %s, %s)",
            (self.ids[name], job, nbytes, chunksize, ["alice"]),
        )
        return job

    def unfinished_version(self, name: str) -> None:
        """A row whose bytes were never completed: NULL version, deleted."""
        self.sql(
            "INSERT INTO hatrac.version (nameid, version, nbytes, is_deleted, owner) "
            "VALUES (%s, NULL, 10, true, %s)",
            (self.ids[name], ["alice"]),
        )

    def close(self) -> None:
        self.connection.close()


def _acls(given: dict) -> dict:
    return {mode.replace("_", "-"): roles for mode, roles in given.items()}
