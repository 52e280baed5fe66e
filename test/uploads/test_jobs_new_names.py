"""An upload job on a new name binds the object at once, with no version (as upstream).

Every reader must then handle an object without a version: GET/HEAD (409),
metadata, listings, ACLs, rename, ``hatrac verify`` and ``hatrac gc``.
"""

from __future__ import annotations

import json

from hatrac.cli import main


def open_job(client, obj, size=4, user="alice"):
    reply = client.post(
        obj + ";upload", user=user, json={"chunk-length": 4, "content-length": size}
    )
    assert reply.status == 201, reply.text
    return reply.headers["Location"]


def test_readers_of_an_object_with_no_version(client, ns):
    obj = ns + "/obj"
    open_job(client, obj)
    assert client.get(ns, user="alice").json() == [obj]
    assert client.get(obj, user="alice").status == 409
    assert client.head(obj, user="alice").status == 409
    assert client.get(obj + ";metadata", user="alice").status == 409
    versions = client.get(obj + ";versions", user="alice")
    assert versions.status == 200 and versions.json() == []
    assert client.get(obj + ":01M8RHTH1BW7GBXM0017NKBX5T", user="alice").status == 404
    # others learn nothing they could not before: 403, not 409
    assert client.put(ns + ";acl/read", user="alice", json=[]).status == 204
    assert client.get(obj, user="bob").status == 403
    assert client.get(obj).status == 401
    # the rename source must have a version
    rename = {"command": "rename_from", "source_name": obj.removeprefix("/hatrac")}
    assert client.post(ns + "/new", user="alice", json=rename).status == 409


def test_acls_before_the_upload_ends_and_a_second_job_sees_the_object(client, ns):
    obj = ns + "/obj"
    job = open_job(client, obj)
    assert client.get(obj + ";acl/owner", user="alice").json() == ["alice"]
    assert client.put(obj + ";acl/update/bob", user="alice").status == 204
    assert client.put(obj + ";acl/subtree-read/carol", user="alice").status == 204
    # bob has no create right in ns: his job works because the object exists
    second = open_job(client, obj, user="bob")
    assert client.put(second + "/0", user="bob", data=b"bob!").status == 204
    assert client.post(second, user="bob").status == 201
    assert client.put(job + "/0", user="alice", data=b"mine").status == 204
    assert client.post(job, user="alice").status == 201
    # the ACLs set before the upload ended hold for its version
    assert client.get(obj, user="carol").body == b"mine"
    assert len(client.get(obj + ";versions", user="alice").json()) == 2


def test_verify_and_gc_with_an_object_with_no_version(client, ns, config, tmp_path, capsys):
    job = open_job(client, ns + "/obj")
    config_file = tmp_path / "hatrac_config.json"
    config_file.write_text(json.dumps(config))
    capsys.readouterr()
    assert main(["--config", str(config_file), "verify", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["checked"] == 0
    assert main(["--config", str(config_file), "verify", "--json", ns + "/obj"]) == 0
    assert json.loads(capsys.readouterr().out)["problems"] == []
    assert main(["--config", str(config_file), "gc", "--delete", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["upload_jobs"]["count"] == 0
    # the open job and its object are untouched
    assert client.get(job, user="alice").status == 200
    assert client.get(ns, user="alice").json() == [ns + "/obj"]


def test_namespaces_have_no_upload_jobs(client, ns):
    assert client.get(ns + ";upload", user="alice").status == 404
    assert client.get(ns + "/missing;upload", user="alice").json() == []
    # under namespaces not made yet (a folder the web uploader is about to make
    # with ?parents): no job either, not a 404 in the browser's console
    listed = client.get(ns + "/nons/deeper/missing;upload", user="alice")
    assert listed.status == 200 and listed.json() == []
    # a job made there with ?parents is listed once it exists
    job = client.post(
        ns + "/nons/deeper/missing;upload?parents=true",
        user="alice",
        json={"chunk-length": 4, "content-length": 4},
    )
    assert job.status == 201, job.text
    assert client.get(ns + "/nons/deeper/missing;upload", user="alice").json() == [
        job.headers["Location"]
    ]
    # an object or a deleted name on the way down is no namespace to make
    assert client.put(ns + "/obj", user="alice", data=b"x").status == 201
    assert client.get(ns + "/obj/missing;upload", user="alice").status == 404
    assert client.mkdir(ns + "/gone").status == 201
    assert client.delete(ns + "/gone", user="alice").status == 204
    assert client.get(ns + "/gone/missing;upload", user="alice").status == 404
    assert client.put(ns + ";acl/read", user="alice", json=[]).status == 204
    assert client.get(ns + "/missing;upload", user="bob").status == 403
    assert client.get(ns + "/nons2/missing;upload", user="bob").status == 403


def _anonymous_drop_box(client, ns):
    """``ns`` where anyone may create objects, and only alice may read or update them."""
    for access, roles in (("create", ["*"]), ("subtree-owner", ["alice"])):
        reply = client.put(f"{ns};acl/{access}", user="alice", json=roles)
        assert reply.status == 204, reply.text


def test_an_anonymous_job_on_a_new_name_is_finalized_with_the_create_right(client, ns):
    _anonymous_drop_box(client, ns)
    obj = ns + "/dropped"
    job = open_job(client, obj, size=6, user=None)
    assert client.put(job + "/0", data=b"drop").status == 204
    assert client.put(job + "/1", data=b"ok").status == 204
    reply = client.post(job)
    assert reply.status == 201, reply.text
    assert client.get(obj, user="alice").body == b"dropok"
    # the object has a version now: another job on it needs update, as a PUT does
    again = client.post(obj + ";upload", json={"chunk-length": 4, "content-length": 4})
    assert again.status == 401, again.text
    assert client.put(obj, data=b"over").status == 401


def test_finalizing_checks_the_create_right_again(client, ns):
    _anonymous_drop_box(client, ns)
    obj = ns + "/dropped"
    job = open_job(client, obj, user=None)
    assert client.put(job + "/0", data=b"drop").status == 204
    assert client.put(ns + ";acl/create", user="alice", json=[]).status == 204
    reply = client.post(job)
    assert reply.status == 401, reply.text
    assert client.get(obj + ";versions", user="alice").json() == []


def test_another_clients_job_on_an_object_bound_by_a_job_needs_update(client, ns):
    _anonymous_drop_box(client, ns)
    obj = ns + "/bound"
    open_job(client, obj, user="alice")  # alice's job binds the object
    # bob may create in ns, but the object exists: his job needs update on it
    reply = client.post(obj + ";upload", user="bob", json={"chunk-length": 4, "content-length": 4})
    assert reply.status == 403, reply.text
