"""Helpers for upload-job tests: digests and the job-id parsing rule DERIVA uses."""

from __future__ import annotations

import base64
import hashlib


def b64md5(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode()


def b64sha256(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def deriva_job_id(body: str) -> str:
    """What DERIVA's HatracStore does: text after the last '/', minus the final character."""
    return body[body.rfind("/") + 1 : -1]


def chunks_of(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


def job_files(app):
    """Job files left in filesystem storage; None on other backends (not inspected)."""
    storage = app.extensions["hatrac"].storage
    jobs = getattr(storage, "jobs", None)
    return None if jobs is None else sorted(p.name for p in jobs.iterdir())


def object_files(app):
    """Stored object files (filesystem storage); None on other backends."""
    storage = app.extensions["hatrac"].storage
    objects = getattr(storage, "objects", None)
    return None if objects is None else sorted(p.name for p in objects.glob("*/*/*"))
