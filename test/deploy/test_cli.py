"""The admin command line: check-config, verify, gc, init-db, root-acl, apache-config.

Commands run in-process through :func:`hatrac.cli.main` on a config file
for this test's backend (SQLite and PostgreSQL); the exit codes are the
documented ones (0 fine, 1 problems or failure, 2 bad usage/config).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

import hatrac
from hatrac.cli import build_parser, main

NS = {"Content-Type": "application/x-hatrac-namespace"}


@pytest.fixture
def config_file(tmp_path, make_config) -> Path:
    path = tmp_path / "hatrac_config.json"
    # bytes in the backend (tampered with on disk below); inline bytes: test/storage/test_inline.py
    path.write_text(json.dumps(make_config(inline_max_size=0)))
    return path


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def populate(config_file: Path, count: int = 3) -> tuple:
    """Objects written through the service; returns the app's state and version URLs."""
    app = hatrac.create_app(str(config_file))
    client = app.test_client()
    env = {"REMOTE_USER": "admin"}
    assert client.put("/hatrac/data", headers=NS, environ_base=env).status_code == 201
    urls = []
    for index in range(count):
        reply = client.put(f"/hatrac/data/o{index}", data=b"x" * (index + 1), environ_base=env)
        assert reply.status_code == 201
        urls.append(reply.get_data(as_text=True).strip())
    return app.extensions["hatrac"], urls


def version_of(state, url: str):
    name, version = url[len("/hatrac") :].rsplit(":", 1)
    return state.directory.run(
        lambda tx: tx.get_version(tx.get_name(name).id, version),
    )


def test_every_subcommand_has_help(capsys):
    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices  # noqa: SLF001
    for expected in ("init-db", "root-acl", "check-config", "verify", "gc", "apache-config"):
        assert expected in commands
    for name in commands:
        with pytest.raises(SystemExit) as exit_info:
            main([name, "--help"])
        assert exit_info.value.code == 0
        assert "usage: hatrac" in capsys.readouterr().out


def test_check_config_ok(capsys, config_file):
    code, out, err = run(capsys, "--config", str(config_file), "check-config")
    assert code == 0, err
    assert "valid" in out and "writable" in out and "database: reachable" in out


def test_check_config_missing_file(capsys, tmp_path):
    code, out, err = run(capsys, "--config", str(tmp_path / "nope.json"), "check-config")
    assert code == 2
    assert len(err.strip().splitlines()) == 1
    assert "does not exist" in err and "HATRAC_CONFIG" in err


def test_check_config_unknown_field_and_wrong_type(capsys, tmp_path):
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"storage_pth": "/x"}))
    code, _, err = run(capsys, "--config", str(path), "check-config")
    assert code == 2 and "storage_pth" in err and len(err.strip().splitlines()) == 1
    path.write_text(json.dumps({"max_name_length": "long"}))
    code, _, err = run(capsys, "--config", str(path), "check-config")
    assert code == 2 and "max_name_length" in err and "an integer" in err
    path.write_text("{not json")
    code, _, err = run(capsys, "--config", str(path), "check-config")
    assert code == 2 and "not valid JSON" in err


def test_check_config_database_unreachable(capsys, tmp_path):
    path = tmp_path / "c.json"
    path.write_text(
        json.dumps(
            {
                "data_directory": str(tmp_path / "d"),
                "database_dsn": "host=127.0.0.1 port=1 dbname=x password=secret",
                "database_max_retries": 1,
            }
        )
    )
    code, _, err = run(capsys, "--config", str(path), "check-config")
    assert code == 1
    assert len(err.strip().splitlines()) == 1
    assert "database" in err and "database_dsn" in err and "secret" not in err


def test_check_config_storage_not_writable(capsys, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    path = tmp_path / "c.json"
    path.write_text(
        json.dumps({"data_directory": str(tmp_path / "d"), "storage_path": str(blocker / "s")})
    )
    code, _, err = run(capsys, "--config", str(path), "check-config")
    assert code == 1
    assert "storage" in err and "storage_path" in err
    assert len(err.strip().splitlines()) == 1


def test_init_db_is_idempotent(capsys, config_file):
    assert run(capsys, "--config", str(config_file), "init-db")[0] == 0
    assert run(capsys, "--config", str(config_file), "init-db")[0] == 0
    code, out, _ = run(capsys, "--config", str(config_file), "check-config")
    assert code == 0 and "schema up to date" in out


def test_root_acl_refuses_to_remove_every_owner(capsys, config_file):
    code, out, _ = run(capsys, "--config", str(config_file), "root-acl", "owner")
    assert code == 0 and json.loads(out) == ["admin"]
    code, _, err = run(capsys, "--config", str(config_file), "root-acl", "owner", "--set")
    assert code == 1 and "owner" in err
    code, _, err = run(
        capsys, "--config", str(config_file), "root-acl", "owner", "admin", "--remove"
    )
    assert code == 1
    code, out, _ = run(capsys, "--config", str(config_file), "root-acl", "owner")
    assert json.loads(out) == ["admin"]


def test_verify_all_intact(capsys, config_file):
    state, urls = populate(config_file)
    state.close()
    code, out, err = run(capsys, "--config", str(config_file), "verify", "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["checked"] == 3 and report["ok"] == 3 and report["problems"] == []
    code, out, _ = run(capsys, "--config", str(config_file), "verify")
    assert code == 0 and "3 ok, 0 with problems" in out


def test_verify_finds_missing_and_different_bytes(capsys, config_file, storage_backend):
    if storage_backend != "filesystem":
        pytest.skip("tampers with files on disk; the filesystem backend only")
    state, urls = populate(config_file)
    storage = state.storage
    missing = version_of(state, urls[0])
    changed = version_of(state, urls[1])
    state.close()
    storage.path_of(missing.storage_key).unlink()
    path = storage.path_of(changed.storage_key)
    path.write_bytes(b"y" * len(path.read_bytes()))  # same size, other bytes: bitrot
    code, out, _ = run(capsys, "--config", str(config_file), "verify", "--json")
    assert code == 1
    report = json.loads(out)
    assert report["checked"] == 3 and report["missing"] == 1 and report["different"] == 1
    problems = {p["url"]: p for p in report["problems"]}
    assert problems[urls[0]]["problem"] == "missing"
    assert problems[urls[1]]["problem"] == "different"
    assert "content-md5" in problems[urls[1]]["detail"]
    code, out, _ = run(capsys, "--config", str(config_file), "verify")
    assert code == 1 and "MISSING" in out and "DIFFERENT" in out
    # a subtree that holds only the intact object
    code, out, _ = run(capsys, "--config", str(config_file), "verify", "/hatrac/data/o2")
    assert code == 0
    code, _, err = run(capsys, "--config", str(config_file), "verify", "/hatrac/absent")
    assert code == 1 and "does not exist" in err


def test_gc_reports_then_deletes_only_with_flag(capsys, config_file, storage_backend):
    if storage_backend != "filesystem":
        pytest.skip("plants orphan files on disk; the filesystem backend only")
    state, urls = populate(config_file)
    storage = state.storage
    live_paths = [storage.path_of(version_of(state, url).storage_key) for url in urls]
    state.close()
    old_orphan = storage.path_of("orphanold0000000000000000")
    young_orphan = storage.path_of("orphanyoung00000000000000")
    for orphan in (old_orphan, young_orphan):
        orphan.parent.mkdir(parents=True, exist_ok=True)
        orphan.write_bytes(b"left behind by a crash")
    week_ago = time.time() - 7 * 24 * 3600
    os.utime(old_orphan, (week_ago, week_ago))

    code, out, _ = run(capsys, "--config", str(config_file), "gc", "--json")
    assert code == 0
    report = json.loads(out)
    assert report["deleted"] is False
    assert report["orphans"]["keys"] == ["orphanold0000000000000000"]
    assert old_orphan.exists() and young_orphan.exists()

    code, out, _ = run(capsys, "--config", str(config_file), "gc", "--delete", "--json")
    assert code == 0
    assert "orphanold0000000000000000" in json.loads(out)["orphans"]["keys"]
    assert not old_orphan.exists()
    assert young_orphan.exists()  # inside the grace period
    assert all(path.exists() for path in live_paths)

    code, out, _ = run(capsys, "--config", str(config_file), "gc")
    assert code == 0 and "nothing was deleted" in out


def test_apache_config_names_this_installation(capsys, tmp_path):
    code, out, _ = run(
        capsys, "--config", str(tmp_path / "c.json"), "apache-config", "--user", "www-data"
    )
    assert code == 0
    assert "AllowEncodedSlashes NoDecode" in out
    assert "WSGIPassAuthorization On" in out
    assert "WSGIScriptAlias /hatrac " in out
    assert str(Path(hatrac.__file__).parent / "hatrac.wsgi") in out
    assert f"SetEnv HATRAC_CONFIG {tmp_path / 'c.json'}" in out
    assert "python-path=" in out and "site-packages" in out


def test_repository_wsgi_files_use_the_package_entry_point():
    root = Path(__file__).resolve().parents[2]
    for script in (root / "hatrac.wsgi", root / "hatrac" / "hatrac.wsgi"):
        assert "from hatrac.wsgi import application" in script.read_text()
    conf = (root / "wsgi_hatrac.conf").read_text()
    for directive in (
        "WSGIDaemonProcess",
        "WSGIPassAuthorization On",
        "AllowEncodedSlashes NoDecode",
        "WSGIScriptAlias /hatrac ",
        "WSGIChunkedRequest On",
    ):
        assert directive in conf


def test_verify_shows_progress_on_a_terminal(config_file):
    """On a TTY, verify draws a tqdm bar on standard error; piped, it stays quiet."""
    import fcntl
    import pty
    import struct
    import subprocess
    import sys
    import termios

    state, _ = populate(config_file)
    state.close()
    command = [str(Path(sys.executable).parent / "hatrac"), "--config", str(config_file)]
    primary, secondary = pty.openpty()
    # a real terminal has a size; a fresh pty is 0x0, which tqdm draws as nothing
    fcntl.ioctl(secondary, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    try:
        process = subprocess.Popen([*command, "verify"], stderr=secondary, stdout=subprocess.PIPE)
        os.close(secondary)
        drawn = b""
        while True:  # read while it runs: the terminal's buffer is small
            try:
                data = os.read(primary, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not data:
                break
            drawn += data
        process.communicate(timeout=120)
    finally:
        os.close(primary)
    result = process
    assert result.returncode == 0
    assert b"verify" in drawn and b"%" in drawn  # the bar: description and percentage
    piped = subprocess.run([*command, "verify"], capture_output=True, timeout=120)
    assert piped.returncode == 0 and b"%" not in piped.stderr
