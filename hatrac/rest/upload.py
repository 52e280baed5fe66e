"""Chunked upload jobs: ``/obj;upload``, ``/obj;upload/JOB``, ``/obj;upload/JOB/N``.

* ``POST /obj;upload`` (JSON) opens a job: 201, Location, body ``JOBURL\\n``
  (DERIVA takes the text after the last '/' minus the final newline as the id);
* ``GET /obj;upload`` lists the client's open jobs on that object;
* ``GET /obj;upload/JOB`` is the job's status (JSON);
* ``PUT /obj;upload/JOB/N`` stores chunk N (204);
* ``POST /obj;upload/JOB`` finalizes it (201, body ``/obj:VERSION\\n``);
* ``DELETE /obj;upload/JOB`` cancels it (204).

The model (:mod:`hatrac.model.uploads`) authorizes and does the work.
"""

from __future__ import annotations

import json
import re
from typing import Any, Optional

from flask import Response, request

from ..errors import BadRequest
from ..model.directory.uploads import JobRow
from ..model.storage import read_blocks
from . import Call, by_method, register_family, render
from .bodies import parse_json, read_small_body
from .body import body_stream
from .headers import parse_content_disposition, parse_digest
from .names import request_length
from .query import flag

JOB_BODY_LIMIT = 64 * 1024
# any number of digits: a chunk number past the job's end is a 409 however large
_CHUNK_NUMBER = re.compile(r"[0-9]+")
# a chunk's body is checked against its exact size by the model
_NO_LIMIT = 1 << 62

_FIELDS = {
    # canonical name: accepted spellings (the legacy aliases last)
    "chunk-length": ("chunk-length", "chunk_bytes", "chunk_length"),
    "content-length": ("content-length", "total_bytes", "content_length"),
    "content-md5": ("content-md5", "content_md5"),
    "content-sha256": ("content-sha256", "content_sha256"),
    "content-type": ("content-type", "content_type"),
    "content-disposition": ("content-disposition", "content_disposition"),
}


def job_url(call: Call, job: JobRow) -> str:
    return call.url(job.name) + ";upload/" + job.job


def _field(body: dict, field: str) -> Any:
    spellings = [s for s in _FIELDS[field] if s in body]
    if len(spellings) > 1 and len({json.dumps(body[s]) for s in spellings}) > 1:
        raise BadRequest(f"The job gives {field} twice with different values: {spellings}.")
    return body[spellings[0]] if spellings else None


def _size(body: dict, field: str) -> int:
    value = _field(body, field)
    if value is None:
        raise BadRequest(f"The job description needs {field} (an integer number of bytes).")
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadRequest(f"{field} must be an integer number of bytes, not {json.dumps(value)}.")
    return value


def _text(body: dict, field: str) -> Optional[str]:
    value = _field(body, field)
    if value is None:
        return None
    if not isinstance(value, str):
        raise BadRequest(f"{field} must be a string, not {json.dumps(value)}.")
    return value


def parse_job_request(body: bytes) -> tuple[int, int, dict]:
    """``(chunk_length, content_length, metadata)`` from a job-creation body."""
    spec = parse_json(
        body,
        "The upload job must be described by a JSON object with chunk-length and content-length.",
    )
    if not isinstance(spec, dict):
        raise BadRequest("The upload job description must be a JSON object.")
    chunk_length = _size(spec, "chunk-length")
    content_length = _size(spec, "content-length")
    metadata: dict = {}
    content_type = _text(spec, "content-type")
    if content_type is not None:
        content_type = content_type.strip()
        if len(content_type) > 1024 or any(ord(c) < 0x20 or ord(c) == 0x7F for c in content_type):
            raise BadRequest("content-type must be a short single-line media type.")
        if content_type:
            metadata["content-type"] = content_type
    for field in ("content-md5", "content-sha256"):
        value = _text(spec, field)
        if value is not None:
            metadata[field] = parse_digest(field, value, field)
    disposition = _text(spec, "content-disposition")
    if disposition is not None:
        metadata["content-disposition"] = parse_content_disposition(disposition)
    return chunk_length, content_length, metadata


def chunk_number(text: str) -> int:
    """The number N of a chunk URL ``;upload/JOB/N``: a non-negative decimal integer."""
    if not _CHUNK_NUMBER.fullmatch(text):
        raise BadRequest(f"The chunk number must be a non-negative integer, not {text!r}.")
    try:
        return int(text)
    except ValueError:  # more digits than Python converts (thousands): no chunk is that far
        raise BadRequest("The chunk number has too many digits.") from None


def _no_version(call: Call) -> None:
    if call.path.version is not None:
        raise BadRequest("Upload jobs belong to objects; drop the :VERSION from the URL.")


# -- handlers ------------------------------------------------------------------
def create_job(call: Call) -> Response:
    parents = flag("parents")
    chunk_length, content_length, metadata = parse_job_request(read_small_body(JOB_BODY_LIMIT))
    job = call.model.create_job(
        call.client, call.path.name, chunk_length, content_length, metadata, parents
    )
    return render.created(job_url(call, job))


def list_jobs(call: Call) -> Response:
    jobs = call.model.list_jobs(call.client, call.path.name)
    return render.listing(
        [job_url(call, job) for job in jobs], f"Upload jobs of {call.url(call.path.name)}"
    )


def job_status(call: Call) -> Response:
    job, received = call.model.get_job(call.client, call.path.name, call.path.arguments[0])
    status = {
        "url": job_url(call, job),
        "target": call.url(job.name),
        "owner": [job.owner] if job.owner is not None else [],
        "chunk-length": job.chunk_length,
        "content-length": job.content_length,
        "content-type": job.content_type,
        "content-md5": job.content_md5,
        "content-sha256": job.content_sha256,
        "content-disposition": job.content_disposition,
        "chunk-count": job.chunk_count,
        "chunks-received": received,
    }
    return render.json_response(status)


def finalize_job(call: Call) -> Response:
    version = call.model.finalize_job(call.client, call.path.name, call.path.arguments[0])
    url = call.url(version.name, version.version)
    return render.created(url, {"ETag": version.etag, "Content-Location": url})


def cancel_job(call: Call) -> Response:
    call.model.cancel_job(call.client, call.path.name, call.path.arguments[0])
    return render.no_content()


def put_chunk(call: Call) -> Response:
    job, number = call.path.arguments
    index = chunk_number(number)
    digests = {}
    for field, header in (("content-md5", "Content-MD5"), ("content-sha256", "Content-SHA256")):
        value = request.headers.get(header)
        if value is not None:
            digests[field] = parse_digest(field, value, header)
    length = request_length()
    # a backend that hashes the chunk itself may hash a block in a helper thread
    # while the next is received; the others are done with each block by then
    reuse = not call.model.storage.hashes_chunks
    stream = body_stream(request.environ, length, request.stream, reuse)
    blocks = read_blocks(stream, length, _NO_LIMIT)
    call.model.put_chunk(call.client, call.path.name, job, index, blocks, length, digests or None)
    return render.no_content()


def route_upload(call: Call) -> Response:
    _no_version(call)
    count = len(call.path.arguments)
    if count == 0:
        return by_method(call, {"GET": list_jobs, "POST": create_job})
    if count == 1:
        return by_method(call, {"GET": job_status, "POST": finalize_job, "DELETE": cancel_job})
    if count == 2:
        return by_method(call, {"PUT": put_chunk})
    raise BadRequest("Upload URLs are ;upload, ;upload/JOB or ;upload/JOB/CHUNK.")


register_family("upload", route_upload)
