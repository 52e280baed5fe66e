"""hatrac-client against a real gunicorn, on every backend pair: recursive
round trips, upload jobs, SIGKILL and resume of put and get, sync, every
command, ``--json``."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import signal
import time

import pytest
import requests
from clienthelpers import PASSWORD

HARD_NAMES = ["a b.txt", "100%.txt", "é ü 日本.txt", "empty", "x;y:z.bin"]


def make_tree(root, big: int = 0) -> None:
    deep = root / "one" / "two" / "three" / "four"
    deep.mkdir(parents=True)
    (root / "emptydir").mkdir()
    for index, name in enumerate(HARD_NAMES):
        data = b"" if name == "empty" else os.urandom(100 + index * 37)
        (root / name).write_bytes(data)
        (deep / name).write_bytes(data[::-1])
    if big:
        (root / "one" / "big.bin").write_bytes(os.urandom(big))


def tree_files(root) -> dict:
    found = {}
    for directory, subdirectories, files in os.walk(root):
        for name in subdirectories:
            found[os.path.relpath(os.path.join(directory, name), root) + "/"] = None
        for name in files:
            path = os.path.join(directory, name)
            found[os.path.relpath(path, root)] = open(path, "rb").read()
    return found


def b64md5(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode()


def job_status(live, hc, target_path: str) -> list:
    """The open jobs on an object path, with status, as alice (from her stored cookie)."""
    credentials = json.loads((hc.config_dir / "credentials.json").read_text())
    cookie = credentials[live.url]["cookie"]
    headers = {"Cookie": cookie, "Accept": "application/json"}
    listed = requests.get(live.url + target_path + ";upload", headers=headers)
    if listed.status_code == 404:  # no job has bound the object yet
        return []
    jobs = listed.json()
    return [requests.get(live.url + job, headers=headers).json() for job in jobs]


def test_recursive_put_get_round_trip(hc, ns, tmp_path):
    source = tmp_path / "source"
    make_tree(source, big=300_000)
    # the big file goes by upload job (threshold 100 KB, 64 KiB chunks, 3 streams)
    lines = hc.json(
        "put",
        "-r",
        source,
        ns + "/up",
        "--threshold",
        "100k",
        "--chunk-size",
        "64k",
        "--streams",
        "3",
    )
    puts = [line for line in lines if line.get("action") == "put"]
    assert len(puts) == 2 * len(HARD_NAMES) + 1
    assert lines[-1]["summary"] == "put" and lines[-1]["errors"] == 0
    big = next(p for p in puts if p["source"].endswith("big.bin"))
    assert big["chunks"] == 5 and big["chunks-sent"] == 5 and not big["resumed"]
    listed = hc.json("ls", "-r", "-l", ns + "/up")
    names = {entry["name"]: entry for entry in listed}
    assert names["emptydir"]["kind"] == "namespace"
    assert names["one/two/three/four/é ü 日本.txt"]["kind"] == "object"
    assert names["100%.txt"]["size"] == (source / "100%.txt").stat().st_size
    dest = tmp_path / "dest"
    lines = hc.json("get", "-r", ns + "/up", dest)
    assert lines[-1]["errors"] == 0
    assert all(line["verified"] == "sha256" for line in lines if line.get("action") == "get")
    assert tree_files(dest) == tree_files(source)


def test_put_get_single_stdin_stdout_and_stat(hc, ns, tmp_path):
    data = os.urandom(5000)
    assert hc("put", "-", ns + "/from-stdin", stdin=data)[0] == 0
    info = hc.json("stat", ns + "/from-stdin")[0]
    assert info["kind"] == "object" and info["size"] == len(data)
    assert info["content-md5"] == b64md5(data)
    local = tmp_path / "f.txt"
    local.write_bytes(b"plain text\n" * 100)
    assert hc("put", local, ns + "/")[0] == 0  # a trailing slash: into the namespace
    code, out, err = hc("get", ns + "/f.txt", "-")
    assert code == 0 and out == "plain text\n" * 100
    fetched = tmp_path / "copy"
    assert hc("get", ns + "/from-stdin", fetched)[0] == 0
    assert fetched.read_bytes() == data
    info = hc.json("stat", ns + "/f.txt")[0]
    assert info["content-type"].startswith("text/plain")


def test_sigkill_mid_upload_then_resume_sends_only_missing_chunks(live, hc, ns, tmp_path):
    data = os.urandom(3 * 1024 * 1024)
    local = tmp_path / "big.bin"
    local.write_bytes(data)
    target = ns + "/big.bin"
    path = ns.replace("t:", "/hatrac") + "/big.bin"
    options = ["--threshold", "256k", "--chunk-size", "128k", "--streams", "2"]
    # a real client, slowed down so that it is surely killed midway
    process = hc.process("put", local, target, *options, "--limit-rate", "1M", "-q")
    deadline = time.monotonic() + 60
    received = []
    while time.monotonic() < deadline:
        jobs = job_status(live, hc, path) if process.poll() is None else []
        if jobs and len(jobs[0]["chunks-received"]) >= 4:
            break
        assert process.poll() is None, process.communicate()
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    (status,) = job_status(live, hc, path)
    received = status["chunks-received"]
    assert received == sorted(received) and 4 <= len(received) < status["chunk-count"] == 24
    assert hc.json("stat", target)[0]["version"] is None  # the job bound it; no version yet
    # run again, even with another --chunk-size: the job's 128 KiB chunks are kept
    # (their Content-MD5s then computed as they are sent, not in the pre-pass)
    options[options.index("128k")] = "96k"
    (result,) = hc.json("put", local, target, *options)
    assert result["resumed"] and result["job"] == status["url"]
    assert result["chunks-sent"] == 24 - len(received)
    assert job_status(live, hc, path) == []
    info = hc.json("stat", target)[0]
    assert info["content-md5"] == b64md5(data) and info["size"] == len(data)


def recorded(sidecar) -> list:
    """Bytes of each part the client's sidecar says are in its partial file."""
    try:
        return json.loads(sidecar.read_text())["received"]
    except (OSError, ValueError, KeyError):  # not there yet
        return []


@pytest.mark.parametrize("streams", [1, 3])
def test_sigkill_mid_get_then_resume(hc, ns, tmp_path, streams):
    """One stream (one request, resumed from its byte) and three streams of 256 KiB
    ranged parts (resumed part by part): killed midway, run again, only the rest
    is fetched."""
    data = os.urandom(3 * 1024 * 1024)
    (tmp_path / "obj").write_bytes(data)
    assert hc("put", tmp_path / "obj", ns + "/obj")[0] == 0
    dest = tmp_path / "fetched"
    partial = tmp_path / ".fetched.hatrac-part"
    sidecar = tmp_path / ".fetched.hatrac-part.json"
    options = ["--streams", streams, "--part-size", "256k"]
    process = hc.process("get", ns + "/obj", dest, *options, "--limit-rate", "1M", "-q")
    deadline = time.monotonic() + 60
    while sum(recorded(sidecar)) < 700_000:
        assert process.poll() is None and time.monotonic() < deadline
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not dest.exists()  # nothing under the final name before it is complete
    kept = recorded(sidecar)
    assert partial.stat().st_size == len(data)  # made at full size from the start
    assert len(kept) == (1 if streams == 1 else 12) and 0 < sum(kept) < len(data)
    if streams > 1:  # several parts were under way at once
        assert sum(1 for count in kept if count) >= 2
    (result,) = hc.json("get", ns + "/obj", dest, *options)
    assert (result["parts"], result["streams"]) == ((1, 1) if streams == 1 else (12, 3))
    assert result["resumed-from"] >= sum(kept)
    assert dest.read_bytes() == data and not partial.exists() and not sidecar.exists()


def test_a_corrupt_partial_download_is_never_presented_as_complete(hc, ns, tmp_path):
    data = os.urandom(200_000)
    (tmp_path / "obj").write_bytes(data)
    assert hc("put", tmp_path / "obj", ns + "/obj")[0] == 0
    dest = tmp_path / "fetched"
    assert hc("get", ns + "/obj", dest)[0] == 0
    # a partial file from "an interrupted run" whose bytes went bad on disk
    os.rename(dest, tmp_path / ".fetched.hatrac-part")
    identity = {
        "format": 2,
        "source": hc.json("stat", ns + "/obj")[0]["version_url"],
        "size": len(data),
        "digest": ["sha256", base64.b64encode(hashlib.sha256(data).digest()).decode()],
        "part": len(data),
        "received": [100_000],
    }
    (tmp_path / ".fetched.hatrac-part.json").write_text(json.dumps(identity))
    with open(tmp_path / ".fetched.hatrac-part", "r+b") as stream:
        stream.seek(10)
        stream.write(b"XXXX")
    code, out, err = hc("get", ns + "/obj", dest)
    assert code == 1 and "do not match" in err and not dest.exists()
    assert not (tmp_path / ".fetched.hatrac-part").exists()
    assert hc("get", ns + "/obj", dest)[0] == 0 and dest.read_bytes() == data


def test_get_fsync_gives_a_verified_file_one_object_a_tree_and_sync(hc, ns, tmp_path):
    """``--fsync`` (durable before done; the default syncs nothing) is accepted by
    get, get -r and sync, and still gives verified files under their final names."""
    data = os.urandom(1_000_000)
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "obj").write_bytes(data)
    assert hc("put", "-r", tmp_path / "src", ns + "/fs")[0] == 0
    options = ["--fsync", "--streams", "3", "--part-size", "256k"]
    (result,) = hc.json("get", ns + "/fs/obj", tmp_path / "one", *options)
    assert result["verified"] == "sha256" and result["parts"] == 4
    assert (tmp_path / "one").read_bytes() == data
    assert not (tmp_path / ".one.hatrac-part").exists()
    assert hc("get", "-r", ns + "/fs", tmp_path / "tree", "--fsync")[0] == 0
    assert (tmp_path / "tree" / "obj").read_bytes() == data
    assert hc("sync", ns + "/fs", tmp_path / "mirror", "--fsync")[0] == 0
    assert (tmp_path / "mirror" / "obj").read_bytes() == data


def test_sync_both_ways_twice_sends_nothing(hc, ns, tmp_path):
    source = tmp_path / "source"
    make_tree(source)
    first = hc.json("sync", source, ns + "/mirror")
    assert first[-1]["files"] == 2 * len(HARD_NAMES) and first[-1]["errors"] == 0
    again = hc.json("sync", source, ns + "/mirror")
    assert again == [
        {"summary": "sync", "files": 0, "bytes": 0, "skipped": 10, "deleted": 0, "errors": 0}
    ]
    # a change, a removal, dry run first
    (source / "a b.txt").write_bytes(b"changed")
    os.unlink(source / "empty")
    dry = hc.json("sync", source, ns + "/mirror", "--delete", "--dry-run")
    assert {(d["action"], d["dry-run"]) for d in dry if "action" in d} == {
        ("put", True),
        ("delete", True),
    }
    assert hc.json("sync", source, ns + "/mirror", "--dry-run")[-1]["files"] == 0
    done = hc.json("sync", source, ns + "/mirror", "--delete")
    assert done[-1]["files"] == 1 and done[-1]["deleted"] == 1
    assert hc("stat", ns + "/mirror/empty")[0] == 3
    # namespace -> directory
    down = tmp_path / "down"
    assert hc.json("sync", ns + "/mirror", down)[-1]["files"] == 2 * len(HARD_NAMES) - 1
    assert hc.json("sync", ns + "/mirror", down)[-1]["files"] == 0
    assert tree_files(down) == tree_files(source)
    (down / "stray").write_bytes(b"x")
    assert hc.json("sync", ns + "/mirror", down, "--delete")[-1]["deleted"] == 1
    assert not (down / "stray").exists()


def test_namespace_version_acl_meta_mv_rm_jobs_commands(live, hc, ns, tmp_path):
    assert hc("mkdir", "-p", ns + "/a/b/c")[0] == 0
    assert hc("mkdir", "-p", ns + "/a/b/c")[0] == 0  # -p: fine if it is there
    assert hc("mkdir", ns + "/a/b/c")[0] == 6  # without: a conflict
    local = tmp_path / "v"
    versions = []
    for text in (b"one", b"two"):
        local.write_bytes(text)
        versions.append(hc.json("put", local, ns + "/a/obj")[0]["version"])
    listed = [line["version-url"] for line in hc.json("versions", ns + "/a/obj")]
    assert sorted(listed) == sorted(versions)
    long = hc.json("ls", "-l", "--versions", ns + "/a")
    assert {e["name"] for e in long if "kind" in e} == {"b", "obj"}
    # acl
    assert hc("acl", "add", ns + "/a/obj", "read", "bob", "g:lab")[0] == 0
    roles = hc.json("acl", "show", ns + "/a/obj", "read")[0]["roles"]
    assert sorted(roles) == ["bob", "g:lab"]
    assert hc("acl", "remove", ns + "/a/obj", "read", "g:lab")[0] == 0
    assert hc("acl", "set", ns + "/a/obj", "update", "bob", "carol")[0] == 0
    acls = {e["access"]: e["roles"] for e in hc.json("acl", "show", ns + "/a/obj")}
    assert acls["read"] == ["bob"] and sorted(acls["update"]) == ["bob", "carol"]
    assert hc("acl", "remove", ns + "/a/obj", "update")[0] == 0
    assert {e["access"]: e["roles"] for e in hc.json("acl", "show", ns + "/a/obj")}["update"] == []
    # metadata of the current version
    assert hc("meta", "set", ns + "/a/obj", "content-type", "text/x-test")[0] == 0
    disposition = "filename*=UTF-8''r%C3%A9sum%C3%A9.txt"
    assert hc("meta", "set", ns + "/a/obj", "content-disposition", disposition)[0] == 0
    meta = hc.json("meta", "show", ns + "/a/obj")[0]
    assert meta["content-type"] == "text/x-test" and meta["content-disposition"] == disposition
    assert hc("meta", "delete", ns + "/a/obj", "content-disposition")[0] == 0
    assert "content-disposition" not in hc.json("meta", "show", ns + "/a/obj")[0]
    assert hc("meta", "set", ns + "/a/obj", "color", "red")[0] == 2
    # mv: a rename on the server
    moved = hc.json("mv", ns + "/a/obj", ns + "/z/renamed", "-p")[0]
    assert len(moved["versions"]) == 2
    assert hc("get", ns + "/z/renamed", tmp_path / "r")[0] == 0
    assert (tmp_path / "r").read_bytes() == b"two"
    # rm: a version, then the object; a namespace needs -r and a confirmation
    current = hc.json("stat", ns + "/z/renamed")[0]["version_url"]
    assert current in moved["versions"]
    assert hc("rm", "--yes", "t:" + current.replace("/hatrac", "", 1))[0] == 0
    assert hc("get", ns + "/z/renamed", tmp_path / "r2")[0] == 0
    assert (tmp_path / "r2").read_bytes() == b"one"
    assert hc("rm", ns + "/z")[0] == 6
    code, out, err = hc("rm", "-r", ns + "/z")  # stdin is not a terminal: refused
    assert code == 2 and "--yes" in err
    assert hc("rm", "-r", "-y", ns + "/z")[0] == 0
    assert hc("ls", ns + "/z")[0] == 3
    # jobs: an abandoned upload job is listed, then cancelled
    spec = {"chunk-length": 10, "content-length": 100}
    cookie = json.loads((hc.config_dir / "credentials.json").read_text())[live.url]["cookie"]
    path = ns.replace("t:", "/hatrac") + "/a/pending"
    reply = requests.post(live.url + path + ";upload", json=spec, headers={"Cookie": cookie})
    assert reply.status_code == 201
    jobs = hc.json("jobs", "ls", ns + "/a/pending")
    assert [j["job"] for j in jobs] == [reply.text.strip()] and jobs[0]["chunks-received"] == []
    assert hc("jobs", "cancel", ns + "/a/pending")[0] == 0
    assert hc.json("jobs", "ls", ns + "/a/pending") == []


def test_whoami_logout_and_remotes(live, hc):
    me = hc.json("whoami", "t")[0]
    assert me["client"] == "alice" and "alice" in me["attributes"]
    mode = os.stat(hc.config_dir / "credentials.json").st_mode & 0o777
    assert mode == 0o600
    assert [r["name"] for r in hc.json("remote", "ls")] == ["t"]
    assert hc("logout", "t")[0] == 0
    assert hc.json("whoami", "t")[0]["client"] is None
    assert live.url not in json.loads((hc.config_dir / "credentials.json").read_text())
    # an URL works in place of a remote name; a bad password is refused
    code, out, err = hc("login", live.url, "--user", "alice", "--password-stdin", stdin=b"nope")
    assert code == 4 and "login" in err and "failed" in err.lower()
    assert hc("login", live.url, "-u", "alice", "--password-stdin", stdin=PASSWORD.encode())[0] == 0
