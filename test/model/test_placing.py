"""A PUT stored as a file: its bytes are placed (renamed, directory fsynced) while the
version is recorded, and the version commits only once they are durable."""

from __future__ import annotations

import errno
import threading

import pytest

from hatrac.model.directory.sql import Transaction
from hatrac.model.storage.filesystem import FilesystemStorage

FILE_PAIRS = [("sqlite", "filesystem"), ("postgres", "filesystem")]
BODY = b"f" * 70_000  # above the default inline_max_size: a file


@pytest.mark.parametrize("backends", FILE_PAIRS, indirect=True)
def test_placement_overlaps_the_transaction_and_precedes_its_commit(client, app, monkeypatch):
    order = []
    recorded = threading.Event()
    place = FilesystemStorage._place

    def slow_place(self, source, final):
        # runs beside the transaction: wait until the version row was inserted
        assert recorded.wait(10), "the version was not recorded while the bytes were placed"
        order.append("placed")
        place(self, source, final)

    def recording(create):
        def recording_create(self, *args, **kwargs):
            made = create(self, *args, **kwargs)
            if not order:  # SQLite's create_object_version calls create_version
                order.append("recorded")
            recorded.set()
            return made

        return recording_create

    monkeypatch.setattr(FilesystemStorage, "_place", slow_place)
    # a new object's name and version are one statement on PostgreSQL
    for method in ("create_version", "create_object_version"):
        monkeypatch.setattr(Transaction, method, recording(getattr(Transaction, method)))
    reply = client.put("/hatrac/file", user="alice", data=BODY)
    assert reply.status == 201, reply.text
    assert order == ["recorded", "placed"]
    assert client.get("/hatrac/file", user="alice").body == BODY


@pytest.mark.parametrize("backends", FILE_PAIRS, indirect=True)
def test_failed_placement_commits_no_version(client, app, monkeypatch):
    storage = app.extensions["hatrac"].storage

    def full(self, source, final):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(FilesystemStorage, "_place", full)
    reply = client.put("/hatrac/file", user="alice", data=BODY)
    assert reply.status == 507, reply.text
    monkeypatch.undo()
    assert client.get("/hatrac/file", user="alice").status == 404
    assert list(storage.objects.glob("*/*/*")) == [] and list(storage.tmp.iterdir()) == []
