"""Benchmark of ``hatrac import-upstream``: a large upstream deployment imported in place.

Generates an upstream-format deployment by SQL in a private, durable
PostgreSQL (``--versions`` versions, ``--per-object`` per object, 100 objects
per namespace; tombstones and ACLs included), creates its files in
upstream's layout (zero-byte, so the disk is not the subject), then runs the
real command line (``hatrac import-upstream``, filesystem, no copy, our
database PostgreSQL) as a child process and samples its resident memory
every half second. Prints one JSON object with the figures::

    python -m bench.import_upstream --versions 1000000

``--versions 2000`` is a smoke run (the test suite runs that, never the 1M).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Optional

from .servers import PROJECT, PostgresServer

EMPTY_MD5 = "d41d8cd98f00b204e9800998ecf8427e"
EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
ACLS = ", ".join(
    f'"{c}" text[]'
    for c in (
        "owner",
        "create",
        "update",
        "read",
        "subtree-owner",
        "subtree-create",
        "subtree-update",
        "subtree-read",
    )
)
SCHEMA = [
    "CREATE SCHEMA hatrac",
    "CREATE TABLE hatrac.name (id bigserial PRIMARY KEY, pid int8 REFERENCES hatrac.name(id), "
    f"ancestors int8[], name text NOT NULL UNIQUE, subtype int NOT NULL, "
    f"is_deleted bool NOT NULL, {ACLS})",
    "CREATE TABLE hatrac.version (id bigserial PRIMARY KEY, nameid int8 NOT NULL "
    "REFERENCES hatrac.name(id), version text, nbytes int8, metadata jsonb, "
    "is_deleted bool NOT NULL, owner text[], read text[], aux json, "
    "UNIQUE (nameid, version), CHECK (version IS NOT NULL OR is_deleted))",
    "CREATE TABLE hatrac.upload (id bigserial PRIMARY KEY, nameid int8 NOT NULL "
    "REFERENCES hatrac.name(id), job text NOT NULL, nbytes int8 NOT NULL, "
    "chunksize int8 NOT NULL, metadata jsonb, owner text[], created_on timestamptz "
    "DEFAULT now(), UNIQUE (nameid, job))",
    "CREATE TABLE hatrac.chunk (uploadid int8 NOT NULL REFERENCES hatrac.upload(id), "
    "position int8 NOT NULL, aux json, UNIQUE (uploadid, position))",
]


def generate(postgres: PostgresServer, versions: int, per_object: int) -> dict:
    """The upstream rows, all by SQL; returns the counts."""
    objects = max(1, versions // per_object)
    namespaces = max(1, objects // 100)
    statements = SCHEMA + [
        "INSERT INTO hatrac.name (id, name, subtype, is_deleted, owner, ancestors) "
        "VALUES (1, '/', 0, false, '{admin}', '{}')",
        'INSERT INTO hatrac.name (id, pid, name, subtype, is_deleted, owner, "subtree-read", '
        "ancestors) VALUES (2, 1, '/bench', 0, false, '{alice}', "
        "'{https://auth.globus.org/0000-group}', '{1}')",
        # namespaces /bench/nsN, every 50th one a tombstone
        "INSERT INTO hatrac.name (id, pid, name, subtype, is_deleted, owner, ancestors) "
        f"SELECT 2 + n, 2, '/bench/ns' || n, 0, n % 50 = 0, '{{alice}}', '{{1,2}}' "
        f"FROM generate_series(1, {namespaces}) n",
        "SELECT setval('hatrac.name_id_seq', (SELECT max(id) FROM hatrac.name))",
        # objects /bench/nsN/objM (some names percent-encoded)
        "INSERT INTO hatrac.name (pid, name, subtype, is_deleted, owner, ancestors) "
        f"SELECT 2 + 1 + (o % {namespaces}), '/bench/ns' || (1 + o % {namespaces}) || "
        "'/obj' || o || CASE WHEN o % 7 = 0 THEN '%C3%A9' ELSE '' END, 1, "
        f"(1 + o % {namespaces}) % 50 = 0, '{{alice}}', ARRAY[1, 2, 2 + 1 + (o % {namespaces})] "
        f"FROM generate_series(0, {objects - 1}) o",
        # versions: ids of upstream's shape, hex digests, every 10th deleted
        "INSERT INTO hatrac.version (nameid, version, nbytes, metadata, is_deleted, owner) "
        "SELECT n.id, translate(upper(substr(md5(n.id::text || ':' || k), 1, 26)), "
        "'0189', 'QRST'), 0, jsonb_build_object('content-type', 'application/octet-stream', "
        f"'content-md5', '{EMPTY_MD5}', 'content-sha256', '{EMPTY_SHA256}'), "
        "n.is_deleted OR k % 10 = 9, '{alice}' "
        f"FROM hatrac.name n, generate_series(0, {per_object - 1}) k WHERE n.subtype = 1 "
        "ORDER BY n.id, k",
        "ANALYZE",
    ]
    for statement in statements:
        postgres.psql(statement, database="upstream")
    counts = postgres.psql(
        "SELECT (SELECT count(*) FROM hatrac.name), (SELECT count(*) FROM hatrac.version)",
        database="upstream",
    ).split("|")
    return {"names": int(counts[0]), "versions": int(counts[1])}


def make_files(postgres: PostgresServer, root: Path) -> int:
    """Zero-byte files of the live versions, in upstream's layout."""
    import psycopg2

    made = 0
    connection = psycopg2.connect(postgres.dsn("upstream"))
    try:
        cursor = connection.cursor(name="files")
        cursor.itersize = 10000
        cursor.execute(
            "SELECT n.name, v.version FROM hatrac.version v JOIN hatrac.name n "
            "ON n.id = v.nameid WHERE NOT v.is_deleted ORDER BY n.name"
        )
        directory = None
        for name, version in cursor:
            parent, _, last = name[1:].rpartition("/")
            if parent != directory:
                (root / parent).mkdir(parents=True, exist_ok=True)
                directory = parent
            os.close(os.open(root / parent / f"{last}:{version}", os.O_CREAT | os.O_WRONLY, 0o644))
            made += 1
    finally:
        connection.close()
    return made


def rss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def measured(command: list) -> tuple[float, list[int], bytes, int]:
    """Run a command; (seconds, resident-memory samples in KiB, standard output, exit code)."""
    started = time.monotonic()
    with tempfile.TemporaryFile() as out:
        process = subprocess.Popen(command, cwd=PROJECT, stdout=out, stderr=subprocess.DEVNULL)
        samples = []
        while process.poll() is None:
            samples.append(rss_kib(process.pid))
            time.sleep(0.5)
        seconds = time.monotonic() - started
        out.seek(0)
        return seconds, [kib for kib in samples if kib], out.read(), process.returncode


def run_verify(work: Path) -> dict:
    """``hatrac verify`` over everything imported (re-hashing reads every file)."""
    command = [sys.executable, "-m", "hatrac.cli", "--config", str(work / "ours_config.json")]
    seconds, rss, output, _ = measured(command + ["verify", "--json"])
    report = json.loads(output)
    return {
        "seconds": round(seconds, 1),
        "checked": report["checked"],
        "problems": len(report["problems"]),
        "rss_mib_max": round(max(rss, default=0) / 1024, 1),
    }


def run_import(postgres: PostgresServer, work: Path, storage: Path) -> dict:
    upstream_config = work / "upstream_config.json"
    upstream_config.write_text(
        json.dumps(
            {
                "database_dsn": postgres.dsn("upstream"),
                "storage_backend": "filesystem",
                "storage_path": str(storage),
            }
        )
    )
    postgres.psql("CREATE DATABASE ours")
    command = [
        sys.executable,
        "-m",
        "hatrac.cli",
        "import-upstream",
        str(upstream_config),
        "--database-dsn",
        postgres.dsn("ours"),
        "--data-directory",
        str(work / "ours"),
        "--write-config",
        str(work / "ours_config.json"),
        "--json",
    ]
    seconds, rss, output, code = measured(command)
    report = json.loads(output)
    # memory flat: resident size in the last half of the run vs the first half
    half = len(rss) // 2
    return {
        "exit_code": code,
        "seconds": round(seconds, 1),
        "counts": report["counts"],
        "problems": len(report["problems"]),
        "rss_mib_max": round(max(rss, default=0) / 1024, 1),
        "rss_mib_first_half_max": round(max(rss[:half], default=0) / 1024, 1),
        "rss_mib_second_half_max": round(max(rss[half:], default=0) / 1024, 1),
        "rss_samples": len(rss),
    }


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--versions", type=int, default=1_000_000)
    parser.add_argument("--per-object", type=int, default=10)
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument("--verify", action="store_true", help="also time 'hatrac verify' after")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="hatrac-import-bench-"))
    os.chmod(work, 0o755)
    postgres = PostgresServer(work / "pg").start()
    try:
        postgres.psql("CREATE DATABASE upstream")
        started = time.monotonic()
        counts = generate(postgres, args.versions, args.per_object)
        generated = time.monotonic() - started
        storage = work / "upstream-bytes"
        started = time.monotonic()
        files = make_files(postgres, storage)
        filed = time.monotonic() - started
        result = {
            "upstream": counts,
            "files": files,
            "generate_seconds": round(generated, 1),
            "files_seconds": round(filed, 1),
            "load_average": os.getloadavg(),
            "cpus": os.cpu_count(),
        }
        result["import"] = run_import(postgres, work, storage)
        if args.verify:
            result["verify"] = run_verify(work)
        result["load_average_after"] = os.getloadavg()
        print(json.dumps(result, indent=2))
        return 0 if result["import"]["exit_code"] in (0, 1) else 1
    finally:
        postgres.stop()
        if not args.keep:
            import shutil

            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
