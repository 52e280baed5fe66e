"""S3 faults in the middle of a write: an S3 error, and S3 gone, under gunicorn
(real streaming of request bodies); and the errors S3 faults become."""

from __future__ import annotations

import time

import pytest
import requests
from s3helpers import all_versions, service_config
from servers import GunicornServer, MotoServer

from hatrac.errors import BadGateway, HatracError
from hatrac.model.storage.s3_buckets import PART_SIZE


def gunicorn_on(tmp_path, s3_config: dict) -> GunicornServer:
    """The service under gunicorn (real streaming of request bodies), its bytes in S3."""
    return GunicornServer(
        service_config(tmp_path, s3_config), tmp_path, workers=1, threads=4
    ).start()


@pytest.fixture
def live(moto, tmp_path, bucket):
    """The service under gunicorn on the test bucket (real streaming of request bodies)."""
    server = gunicorn_on(tmp_path, moto.s3_config(bucket))
    yield server
    server.stop()


def test_s3_error_in_the_middle_of_a_put(live, moto, bucket):
    """The multipart upload vanishes mid-body (an S3 error): 502, no version, no upload."""
    s3 = moto.client()
    sabotaged = []

    def body():
        for number in range(4):
            if number == 2:
                time.sleep(1)  # the first part is on its way to S3
                for upload in s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []):
                    s3.abort_multipart_upload(
                        Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"]
                    )
                    sabotaged.append(upload["Key"])
            yield b"q" * PART_SIZE

    reply = requests.put(live.url + "/hatrac/doomed", data=body(), timeout=60)
    assert sabotaged, "the PUT did not use a multipart upload"
    assert reply.status_code == 502, reply.text
    assert "object store" in reply.text
    assert requests.get(live.url + "/hatrac/doomed", timeout=10).status_code == 404
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    assert all_versions(moto, bucket) == []


def test_s3_down_in_the_middle_of_a_put_and_of_a_job(tmp_path):
    """S3 stops answering mid-body: 503 with a reason and no version; the same for
    a chunk and a finalization of a job; the service recovers when S3 is back."""
    private = MotoServer().start()
    server = None
    try:
        bucket = private.create_bucket("fragile")
        server = gunicorn_on(tmp_path, private.s3_config(bucket))
        url = server.url
        job = (
            url
            + requests.post(
                url + "/hatrac/j;upload", json={"chunk-length": 4, "content-length": 8}, timeout=10
            ).headers["Location"]
        )
        assert requests.put(job + "/0", data=b"abcd", timeout=10).status_code == 204

        def body():
            yield b"a" * PART_SIZE
            time.sleep(1)
            private.stop()
            yield b"b" * PART_SIZE
            yield b"c"

        reply = requests.put(url + "/hatrac/obj", data=body(), timeout=60)
        assert reply.status_code in (502, 503), reply.text
        assert "object store" in reply.text
        reply = requests.put(job + "/1", data=b"efgh", timeout=30)
        assert reply.status_code in (502, 503), reply.text
        reply = requests.post(job, timeout=30)
        assert reply.status_code in (409, 502, 503), reply.text  # chunk 1 missing or S3 down
        assert requests.get(url + "/hatrac/obj", timeout=10).status_code == 404
        assert (
            requests.get(url + "/hatrac/j", timeout=10).status_code == 409
        )  # the job bound it; no version

        # S3 comes back (empty: moto keeps nothing); the same service works again
        restarted = MotoServer()
        restarted.port = private.port
        private = restarted.start()
        private.create_bucket("fragile")
        assert requests.put(url + "/hatrac/obj", data=b"fine", timeout=30).status_code == 201
        assert requests.get(url + "/hatrac/obj", timeout=10).content == b"fine"
    finally:
        if server is not None:
            server.stop()
        private.stop()


def test_fault_messages():
    import botocore.exceptions

    from hatrac.model.storage.s3_buckets import fault as _fault

    answer = botocore.exceptions.ClientError(
        {"Error": {"Code": "InternalError", "Message": "boom"}}, "UploadPart"
    )
    error = _fault("store the object", "b", answer)
    assert isinstance(error, BadGateway) and "InternalError" in error.message
    silence = botocore.exceptions.ConnectTimeoutError(endpoint_url="http://x")
    error = _fault("store the object", "b", silence)
    assert isinstance(error, HatracError) and error.status == 503
