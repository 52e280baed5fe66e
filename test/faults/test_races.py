"""Races of issue 13 over every backend pair: concurrent finalizations of one
job (defect 4) and concurrent sends of one chunk, with the final state checked."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import pytest


def _job(client, obj, data, chunk):
    reply = client.post(
        obj + ";upload", user="alice", json={"chunk-length": chunk, "content-length": len(data)}
    )
    assert reply.status == 201, reply.text
    return reply.headers["Location"]


def test_racing_finalizes_make_one_version_and_no_5xx(client, ns):
    data = os.urandom(3000)
    job = _job(client, ns + "/raced", data, 1000)
    for index in range(3):
        part = data[index * 1000 : (index + 1) * 1000]
        assert client.put(f"{job}/{index}", user="alice", data=part).status == 204
    with ThreadPoolExecutor(16) as pool:
        replies = list(pool.map(lambda _: client.post(job, user="alice"), range(16)))
    statuses = sorted(r.status for r in replies)
    assert all(s in (201, 404, 409) for s in statuses), [(r.status, r.text) for r in replies]
    winners = [r for r in replies if r.status == 201]
    assert len(winners) == 1
    for loser in replies:
        if loser.status != 201:
            # 409 "finalized by another request", or 404 "does not exist (any more)"
            assert "finalized" in loser.text or "any more" in loser.text, loser.text
    versions = client.get(ns + "/raced;versions", user="alice").json()
    assert versions == [winners[0].headers["Location"]]
    got = client.get(ns + "/raced", user="alice")
    assert got.status == 200, got.text
    assert got.body == data
    assert client.get(job, user="alice").status == 404


@pytest.mark.parametrize("rounds", [3])
def test_concurrent_resends_of_one_chunk(client, ns, rounds):
    """Eight senders of chunk 0, each with its own bytes: the version is made of
    one sender's whole chunk."""
    chunk = 2048
    tail = os.urandom(chunk)
    for attempt in range(rounds):
        copies = [bytes([65 + i]) * chunk for i in range(8)]
        job = _job(client, f"{ns}/resent{attempt}", copies[0] + tail, chunk)
        assert client.put(f"{job}/1", user="alice", data=tail).status == 204
        with ThreadPoolExecutor(8) as pool:
            sends = list(
                pool.map(lambda c, job=job: client.put(f"{job}/0", user="alice", data=c), copies)
            )
        assert all(s.status in (204, 409) for s in sends), [s.text for s in sends]
        reply = client.post(job, user="alice")
        if reply.status == 409:  # a send was cut short by another: resend, finalize
            assert client.put(f"{job}/0", user="alice", data=copies[0]).status == 204
            reply = client.post(job, user="alice")
        assert reply.status == 201, reply.text
        body = client.get(reply.headers["Location"], user="alice").body
        assert body[chunk:] == tail and body[:chunk] in copies
