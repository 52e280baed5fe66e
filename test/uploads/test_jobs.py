"""Upload jobs over the Flask test client: the protocol and every bad input."""

from __future__ import annotations

import json
import os
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from helpers import b64md5, b64sha256, chunks_of, deriva_job_id, job_files, object_files


def new_job(client, obj, data=None, user="alice", chunk=4, query="", **fields):
    spec = {"chunk-length": chunk, "content-length": len(data) if data is not None else 0}
    spec.update(fields)
    return client.post(obj + ";upload" + query, user=user, json=spec)


def open_job(client, obj, data, chunk=4, user="alice", **fields) -> str:
    reply = new_job(client, obj, data, user=user, chunk=chunk, **fields)
    assert reply.status == 201, reply.text
    return reply.headers["Location"]


def send_all(client, job, data, chunk, user="alice"):
    for index, part in enumerate(chunks_of(data, chunk)):
        reply = client.put(f"{job}/{index}", user=user, data=part)
        assert reply.status == 204, reply.text


def test_full_flow_and_job_id_rule(client, ns):
    data = os.urandom(10)
    reply = new_job(
        client,
        ns + "/obj",
        data,
        **{
            "content-type": "text/plain",
            "content-md5": b64md5(data),
            "content-sha256": b64sha256(data),
            "content-disposition": "filename*=UTF-8''x.txt",
        },
    )
    assert reply.status == 201
    job_url = reply.headers["Location"]
    assert reply.text == job_url + "\n"
    assert job_url.startswith(ns + "/obj;upload/")
    job_id = deriva_job_id(reply.text)
    assert job_url.endswith("/" + job_id) and job_id.isalnum()
    status = client.get(job_url, user="alice")
    assert status.status == 200
    info = status.json()
    assert info["url"] == job_url
    assert info["target"] == ns + "/obj"
    assert info["chunk-length"] == 4 and info["content-length"] == 10
    assert info["content-md5"] == b64md5(data)
    assert info["content-type"] == "text/plain"
    # any order, resends allowed
    assert info["chunk-count"] == 3 and info["chunks-received"] == []
    parts = chunks_of(data, 4)
    received = []
    for index in (2, 0, 1, 0):
        assert client.put(f"{job_url}/{index}", user="alice", data=parts[index]).status == 204
        received.append(client.get(job_url, user="alice").json()["chunks-received"])
    # the numbers of the chunks stored so far, ascending
    assert received == [[2], [0, 2], [0, 1, 2], [0, 1, 2]]
    done = client.post(job_url, user="alice")
    assert done.status == 201, done.text
    version = done.text.strip()
    assert done.text == version + "\n"
    assert version.startswith(ns + "/obj:")
    got = client.get(ns + "/obj", user="alice")
    assert got.body == data
    assert got.headers["Content-MD5"] == b64md5(data)
    assert got.headers["Content-SHA256"] == b64sha256(data)
    assert got.headers["Content-Type"] == "text/plain"
    assert got.headers["Content-Disposition"] == "filename*=UTF-8''x.txt"
    assert got.headers["Content-Location"] == version
    # the job is gone
    assert client.get(job_url, user="alice").status == 404
    assert client.post(job_url, user="alice").status == 404
    assert client.put(job_url + "/0", user="alice", data=parts[0]).status == 404


def test_legacy_aliases_and_parents(client, ns):
    data = b"abcdefgh"
    reply = client.post(
        ns + "/a/b/obj;upload?parents=true",
        user="alice",
        json={"chunk_bytes": 3, "total_bytes": 8, "content_md5": b64md5(data)},
    )
    assert reply.status == 201, reply.text
    job = reply.headers["Location"]
    send_all(client, job, data, 3)
    assert client.post(job, user="alice").status == 201
    assert client.get(ns + "/a/b/obj", user="alice").body == data
    # without parents: 404
    assert new_job(client, ns + "/c/obj", data).status == 404


def test_job_binds_parents_and_object_at_creation(client, ns):
    job = client.post(
        ns + "/p/q;upload?parents=true",
        user="alice",
        json={"chunk-length": 2, "content-length": 2},
    ).headers["Location"]
    # as upstream: the object exists from job creation on, with no version yet
    assert client.get(ns + "/p", user="alice").json() == [ns + "/p/q"]
    assert client.get(ns + "/p/q", user="alice").status == 409
    client.put(job + "/0", user="alice", data=b"xy")
    assert client.post(job, user="alice").status == 201
    assert client.get(ns + "/p/q", user="alice").body == b"xy"


def test_zero_length_job(client, ns):
    job = open_job(client, ns + "/empty", b"", content_md5=None)
    assert client.get(job, user="alice").json()["content-length"] == 0
    assert client.put(job + "/0", user="alice", data=b"").status == 409
    done = client.post(job, user="alice")
    assert done.status == 201, done.text
    got = client.get(ns + "/empty", user="alice")
    assert got.status == 200 and got.body == b""
    assert got.headers["Content-MD5"] == b64md5(b"")


def test_new_version_of_existing_object(client, ns):
    assert client.put(ns + "/obj", user="alice", data=b"old").status == 201
    job = open_job(client, ns + "/obj", b"new!", chunk=100)
    client.put(job + "/0", user="alice", data=b"new!")
    assert client.post(job, user="alice").status == 201
    assert client.get(ns + "/obj", user="alice").body == b"new!"
    assert len(client.get(ns + "/obj;versions", user="alice").json()) == 2


def test_cancel(client, ns, app):
    job = open_job(client, ns + "/obj", b"12345678")
    client.put(job + "/0", user="alice", data=b"1234")
    files = job_files(app)
    assert files is None or deriva_job_id(job + "\n") in files
    assert client.delete(job, user="alice").status == 204
    assert job_files(app) in (None, [])
    assert client.get(job, user="alice").status == 404
    assert client.put(job + "/1", user="alice", data=b"5678").status == 404
    assert client.post(job, user="alice").status == 404
    assert client.delete(job, user="alice").status == 404
    # the object the job bound stays, with no version (as upstream)
    assert client.get(ns + "/obj", user="alice").status == 409


def test_listing_pending_jobs(client, ns):
    first = open_job(client, ns + "/obj", b"1234")
    second = open_job(client, ns + "/obj", b"1234")
    # the first job bound the object: a second client needs update rights on it
    assert client.put(ns + "/obj;acl/update", user="alice", json=["bob"]).status == 204
    open_job(client, ns + "/obj", b"1234", user="bob")
    listed = client.get(ns + "/obj;upload", user="alice")
    assert listed.status == 200
    assert listed.json() == [first, second]
    uris = client.get(ns + "/obj;upload", user="alice", headers={"Accept": "text/uri-list"})
    assert uris.text == first + "\n" + second + "\n"
    page = client.get(ns + "/obj;upload", user="alice", headers={"Accept": "text/html"})
    assert page.headers["Content-Type"].startswith("text/html") and first in page.text
    assert client.get(ns + "/obj;upload", user="bob").json() != [first, second]


def test_other_clients_cannot_use_a_job(client, ns):
    job = open_job(client, ns + "/obj", b"1234")
    # someone else's job is answered as if it did not exist
    assert client.get(job, user="bob").status == 404
    assert client.get(job).status == 404
    assert client.put(job + "/0", user="bob", data=b"1234").status == 404
    assert client.post(job, user="bob").status == 404
    assert client.delete(job, user="bob").status == 404
    assert client.get(job, user="alice").status == 200


def test_rights_checked_at_creation_and_finalization(client, ns):
    # bob may not create in alice's namespace
    assert new_job(client, ns + "/obj", b"1234", user="bob").status == 403
    assert new_job(client, ns + "/obj", b"1234", user=None).status == 401
    # grant bob create: his job binds the object, which he then owns
    acl = ns + ";acl/create"
    assert client.put(acl, user="alice", json=["bob"]).status == 204
    open_job(client, ns + "/obj", b"1234", user="bob")
    assert client.get(ns + "/obj;acl/owner", user="bob").json() == ["bob"]
    # update rights on an existing object; granted, a job opened, revoked: refused
    assert client.put(ns + "/obj2", user="alice", data=b"x").status == 201
    assert new_job(client, ns + "/obj2", b"1234", user="bob").status == 403
    update = ns + "/obj2;acl/update"
    assert client.put(update, user="alice", json=["bob"]).status == 204
    job = open_job(client, ns + "/obj2", b"1234", user="bob")
    client.put(job + "/0", user="bob", data=b"1234")
    assert client.put(update, user="alice", json=[]).status == 204
    assert client.post(job, user="bob").status == 403
    assert client.get(ns + "/obj2", user="alice").body == b"x"


@pytest.mark.parametrize(
    "number,status",
    [
        ("-1", 400),
        ("x", 400),
        ("1.5", 400),
        ("%2B1", 400),
        ("3", 409),
        ("99999999999", 409),
        # past what the database holds: past the end all the same, not a 500
        (str(2**63 - 1), 409),
        (str(2**63), 409),
        ("99999999999999999999", 409),
        ("9" * 400, 409),
    ],
)
def test_bad_chunk_numbers(client, ns, number, status):
    job = open_job(client, ns + "/obj", b"12345678")
    assert client.put(f"{job}/{number}", user="alice", data=b"1234").status == status


def test_chunk_sizes_must_be_exact(client, ns):
    job = open_job(client, ns + "/obj", b"1234567890")
    assert client.put(job + "/0", user="alice", data=b"123").status == 400
    assert client.put(job + "/0", user="alice", data=b"12345").status == 400
    assert client.put(job + "/2", user="alice", data=b"9012").status == 400  # last is 2
    assert client.put(job + "/2", user="alice", data=b"90").status == 204
    assert client.get(job, user="alice").json()["chunks-received"] == [2]


def test_chunk_of_wrong_size_after_a_good_one_unrecords_it(client, ns):
    job = open_job(client, ns + "/obj", b"12345678")
    assert client.put(job + "/0", user="alice", data=b"1234").status == 204
    assert client.put(job + "/1", user="alice", data=b"5678").status == 204
    bad = client.put(
        job + "/1", user="alice", data=b"XXXX", headers={"Content-MD5": b64md5(b"5678")}
    )
    assert bad.status == 400
    # a resend that failed leaves the chunk missing, and the status says so
    assert client.get(job, user="alice").json()["chunks-received"] == [0]
    reply = client.post(job, user="alice")
    assert reply.status == 409 and "1" in reply.text
    assert client.put(job + "/1", user="alice", data=b"5678").status == 204
    assert client.post(job, user="alice").status == 201


def test_per_chunk_digests(client, ns):
    job = open_job(client, ns + "/obj", b"12345678")
    good = {"Content-MD5": b64md5(b"1234"), "Content-SHA256": b64sha256(b"1234")}
    assert client.put(job + "/0", user="alice", data=b"1234", headers=good).status == 204
    wrong = {"Content-SHA256": b64sha256(b"nope")}
    assert client.put(job + "/1", user="alice", data=b"5678", headers=wrong).status == 400
    malformed = {"Content-MD5": "not-a-digest"}
    assert client.put(job + "/1", user="alice", data=b"5678", headers=malformed).status == 400


def test_chunk_digests_are_computed_once_and_only_when_claimed(client, ns, app, monkeypatch):
    """The model hashes a chunk only for the digests the client claims, and not at
    all when the backend hashes every chunk anyway (S3): never the same bytes twice."""
    import hatrac.model.uploads as uploads

    made = []

    class Recording(uploads._ChunkHashes):
        def __init__(self, claimed):
            made.append(sorted(claimed))
            super().__init__(claimed)

    monkeypatch.setattr(uploads, "_ChunkHashes", Recording)
    hashes_itself = app.extensions["hatrac"].storage.name == "amazons3"  # spools and hashes parts
    job = open_job(client, ns + "/obj", b"123456789012")
    assert client.put(job + "/0", user="alice", data=b"1234").status == 204
    md5_only = {"Content-MD5": b64md5(b"5678")}
    assert client.put(job + "/1", user="alice", data=b"5678", headers=md5_only).status == 204
    wrong = {"Content-MD5": b64md5(b"nope")}
    reply = client.put(job + "/2", user="alice", data=b"9012", headers=wrong)
    assert reply.status == 400 and "content-md5" in reply.text
    assert made == ([] if hashes_itself else [["content-md5"], ["content-md5"]])
    assert client.get(job, user="alice").json()["chunks-received"] == [0, 1]


def test_get_on_chunk_is_405(client, ns):
    job = open_job(client, ns + "/obj", b"1234")
    reply = client.get(job + "/0", user="alice")
    assert reply.status == 405
    assert "PUT" in reply.headers["Allow"]
    assert client.put(job + "/0/1", user="alice", data=b"1234").status == 400


def test_finalize_with_missing_chunks(client, ns):
    job = open_job(client, ns + "/obj", b"123456789")
    client.put(job + "/1", user="alice", data=b"5678")
    reply = client.post(job, user="alice")
    assert reply.status == 409
    assert "0, 2" in reply.text
    assert client.get(ns + "/obj", user="alice").status == 409  # no version yet
    assert client.get(job, user="alice").status == 200


@pytest.mark.parametrize("field", ["content-md5", "content-sha256"])
def test_checksum_mismatch_at_finalize_keeps_the_job(client, ns, app, field):
    data = b"12345678"
    digest = b64md5(b"other") if field == "content-md5" else b64sha256(b"other")
    job = open_job(client, ns + "/obj", data, **{field: digest})
    send_all(client, job, data, 4)
    reply = client.post(job, user="alice")
    assert reply.status == 409, reply.text
    assert client.get(ns + "/obj", user="alice").status == 409  # no version yet
    assert object_files(app) in (None, [])
    # the job is kept: cancel works, and nothing is left behind
    assert client.get(job, user="alice").status == 200
    assert client.delete(job, user="alice").status == 204
    assert job_files(app) in (None, [])


def test_checksum_mismatch_can_be_fixed_by_resending(client, ns):
    data = b"12345678"
    job = open_job(client, ns + "/obj", data, **{"content-md5": b64md5(data)})
    client.put(job + "/0", user="alice", data=b"1234")
    client.put(job + "/1", user="alice", data=b"XXXX")
    assert client.post(job, user="alice").status == 409
    assert client.put(job + "/1", user="alice", data=b"5678").status == 204
    assert client.post(job, user="alice").status == 201
    assert client.get(ns + "/obj", user="alice").body == data


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[1, 2]",
        b"\xff\xfe",
        b"{}",
        json.dumps({"chunk-length": 4}).encode(),
        json.dumps({"content-length": 4}).encode(),
        json.dumps({"chunk-length": 0, "content-length": 4}).encode(),
        json.dumps({"chunk-length": -4, "content-length": 4}).encode(),
        json.dumps({"chunk-length": 4, "content-length": -1}).encode(),
        json.dumps({"chunk-length": 4, "content-length": 10**30}).encode(),
        json.dumps({"chunk-length": 1, "content-length": 10**9}).encode(),
        json.dumps({"chunk-length": "4", "content-length": 4}).encode(),
        json.dumps({"chunk-length": 4.5, "content-length": 4}).encode(),
        json.dumps({"chunk-length": True, "content-length": 4}).encode(),
        json.dumps({"chunk-length": 4, "content-length": 4, "content-md5": "zz"}).encode(),
        json.dumps({"chunk-length": 4, "content-length": 4, "content-type": 5}).encode(),
        json.dumps(
            {"chunk-length": 4, "content-length": 4, "content-disposition": "attachment"}
        ).encode(),
    ],
)
def test_malformed_job_requests(client, ns, body, app):
    reply = client.post(
        ns + "/obj;upload", user="alice", data=body, headers={"Content-Type": "application/json"}
    )
    assert reply.status == 400, reply.text
    assert job_files(app) in (None, [])


def test_job_on_namespace_deleted_name_or_version(client, ns):
    assert client.mkdir(ns + "/sub").status == 201
    assert new_job(client, ns + "/sub", b"1234").status == 409
    assert client.put(ns + "/gone", user="alice", data=b"x").status == 201
    assert client.delete(ns + "/gone", user="alice").status == 204
    assert new_job(client, ns + "/gone", b"1234").status == 409
    assert client.post("/hatrac/;upload", user="alice", json={}).status in (400, 409)
    reply = client.post(
        ns + "/obj:V1;upload", user="alice", json={"chunk-length": 4, "content-length": 4}
    )
    assert reply.status == 400


def test_jobs_deleted_with_their_object_or_namespace(client, ns, app):
    model = app.extensions["hatrac"].model
    assert client.put(ns + "/obj", user="alice", data=b"x").status == 201
    job = open_job(client, ns + "/obj", b"1234")
    client.mkdir(ns + "/sub")
    deep = client.post(
        ns + "/sub/x/y;upload?parents=true",
        user="alice",
        json={"chunk-length": 4, "content-length": 4},
    ).headers["Location"]
    assert client.delete(ns + "/obj", user="alice").status == 204
    assert client.get(job, user="alice").status == 404
    assert client.delete(ns + "/sub", user="alice").status == 204
    assert client.get(deep, user="alice").status == 404
    assert client.put(deep + "/0", user="alice", data=b"1234").status == 404
    model.sweep_jobs()
    assert job_files(app) in (None, [])


def test_deleting_the_object_of_a_new_job_cancels_it(client, ns):
    # upstream: the job bound the object, so DELETE of the object ends the job
    job = open_job(client, ns + "/obj", b"1234")
    client.put(job + "/0", user="alice", data=b"1234")
    assert client.delete(ns + "/obj", user="alice").status == 204
    assert client.get(job, user="alice").status == 404
    assert client.post(job, user="alice").status == 404
    assert client.get(ns + "/obj", user="alice").status == 404
    assert client.get(ns, user="alice").json() == []


def test_expiry_sweep(client, ns, app):
    state = app.extensions["hatrac"]
    model = state.model
    old = open_job(client, ns + "/obj", b"1234")
    fresh = open_job(client, ns + "/obj2", b"1234")
    expiry = state.config.upload_job_expiry_secs
    # pretend the expiry time has passed for both
    removed = model.sweep_jobs(now=time.time() + expiry + 10)
    assert len(removed) == 2  # both are idle "in the future"
    assert client.get(old, user="alice").status == 404
    assert client.get(fresh, user="alice").status == 404
    assert job_files(app) in (None, [])
    # a job with recent activity is kept
    recent = open_job(client, ns + "/obj3", b"1234")
    assert model.sweep_jobs() == []
    assert client.get(recent, user="alice").status == 200


def test_concurrent_sweepers_do_not_double_work(client, ns, app):
    model = app.extensions["hatrac"].model
    for i in range(6):
        open_job(client, ns + f"/o{i}", b"1234")
    later = time.time() + model.config.upload_job_expiry_secs + 10
    with ThreadPoolExecutor(3) as pool:
        results = list(pool.map(lambda _: model.sweep_jobs(now=later), range(3)))
    removed = [key for result in results for key in result]
    assert len(removed) == len(set(removed)) == 6


def test_parallel_chunks(client, ns, app):
    data = os.urandom(64 * 1024 + 7)
    job = open_job(client, ns + "/obj", data, chunk=4096, **{"content-sha256": b64sha256(data)})
    parts = chunks_of(data, 4096)

    def send(index):
        return client.put(f"{job}/{index}", user="alice", data=parts[index]).status

    with ThreadPoolExecutor(4) as pool:
        statuses = list(pool.map(send, reversed(range(len(parts)))))
    assert set(statuses) == {204}
    assert client.post(job, user="alice").status == 201
    assert client.get(ns + "/obj", user="alice").body == data


def test_many_small_chunks(client, ns):
    data = os.urandom(3000)
    job = open_job(client, ns + "/obj", data, chunk=1)
    assert client.get(job, user="alice").json()["chunk-count"] == 3000
    send_all(client, job, data, 1)
    assert client.post(job, user="alice").status == 201
    assert client.get(ns + "/obj", user="alice").body == data


def test_large_chunk_length_single_chunk(client, ns):
    data = b"small file"
    job = open_job(client, ns + "/obj", data, chunk=5 * 1024**3)
    assert client.put(job + "/0", user="alice", data=data).status == 204
    assert client.post(job, user="alice").status == 201


def test_sparse_job_file(client, ns, app, storage_backend):
    if storage_backend != "filesystem":
        pytest.skip("sparse job files are a filesystem-backend matter")
    size = 64 * 1024 * 1024
    job = open_job(client, ns + "/big", b"", chunk=1024 * 1024, **{})
    # re-open with a declared size without sending data: only a sparse file
    reply = client.post(
        ns + "/big2;upload",
        user="alice",
        json={"chunk-length": 1024 * 1024, "content-length": size},
    )
    assert reply.status == 201
    storage = app.extensions["hatrac"].storage
    files = [p for p in storage.jobs.iterdir()]
    assert all(p.stat().st_blocks * 512 < 1024 * 1024 for p in files)
    assert max(p.stat().st_size for p in files) == size
    assert client.delete(job, user="alice").status == 204


def test_job_activity_is_refreshed_only_when_due(client, ns, app, monkeypatch):
    """A chunk of a recently active job records itself without rewriting the job's
    row; once the activity is older than the granularity, the chunk refreshes it."""
    from hatrac.model import uploads
    from hatrac.model.directory import sql

    sent = []
    execute = sql.Transaction.execute

    def recording(self, statement, *args, **kwargs):
        sent.append(statement)
        return execute(self, statement, *args, **kwargs)

    monkeypatch.setattr(sql.Transaction, "execute", recording)
    data = b"0123456789ab"
    job = open_job(client, ns + "/obj", data)
    updates = lambda: [s for s in sent if s.startswith("UPDATE upload_jobs SET last_activity")]  # noqa: E731
    assert client.put(f"{job}/0", user="alice", data=data[:4]).status == 204
    assert updates() == []
    # every activity is stale now: the chunk touches the job before it writes, and
    # refreshes it when it is recorded
    monkeypatch.setattr(uploads, "ACTIVITY_GRANULARITY_SECS", -1.0)
    assert client.put(f"{job}/1", user="alice", data=data[4:8]).status == 204
    assert len(updates()) == 2
    monkeypatch.undo()
    send_all(client, job, data, 4)
    assert client.post(job, user="alice").status == 201
    assert client.get(ns + "/obj", user="alice").body == data
