"""What a new admin meets first: --version, --json listings, the store a command opens,
``hatrac serve``, extras named in errors, and the packaging metadata.

The listings and warnings run in-process on a SQLite store; ``hatrac serve``
and the no-config cases run the installed ``hatrac`` command as a subprocess
in an empty directory with an empty HOME, as a user in another shell would.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from servers import free_port, wait_for_port

import hatrac
from hatrac.cli import main
from hatrac.config import ConfigError, load_config

ROOT = Path(__file__).resolve().parents[2]
HATRAC = str(Path(sys.executable).parent / "hatrac")


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def config_file(tmp_path) -> Path:
    path = tmp_path / "hatrac_config.json"
    path.write_text(json.dumps({"data_directory": "store", "root_acls": {"owner": ["admin"]}}))
    return path


def bare_environment(home: Path) -> dict:
    """No HATRAC_CONFIG and a HOME without ~/hatrac_config.json."""
    environment = {k: v for k, v in os.environ.items() if k != "HATRAC_CONFIG"}
    environment["HOME"] = str(home)
    return environment


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"hatrac {hatrac.__version__}"


def test_listings_are_tab_separated_or_json(capsys, config_file):
    config = ["--config", str(config_file)]
    assert main([*config, "user", "add", "ann", "--display-name", "Ann A."]) == 0
    assert main([*config, "group", "add", "lab"]) == 0
    assert main([*config, "group", "add-member", "lab", "ann"]) == 0
    assert main([*config, "token", "issue", "ann", "--description", "ci"]) == 0
    capsys.readouterr()

    code, out, _ = run(capsys, *config, "user", "list")
    assert code == 0 and out.splitlines() == ["ann\tenabled (no password)\tAnn A."]
    code, out, _ = run(capsys, *config, "user", "list", "--json")
    assert json.loads(out) == [
        {"name": "ann", "state": "enabled", "password": False, "display_name": "Ann A."}
    ]

    code, out, _ = run(capsys, *config, "group", "list")
    assert out.splitlines() == ["lab\tann\t"]
    code, out, _ = run(capsys, *config, "group", "list", "--json")
    assert json.loads(out) == [{"group": "lab", "role": "g:lab", "users": ["ann"], "groups": []}]

    code, out, _ = run(capsys, *config, "token", "list")
    fields = out.rstrip("\n").split("\t")
    assert fields[1:3] == ["ann", "live"] and fields[-1] == "ci"
    code, out, _ = run(capsys, *config, "token", "list", "--json")
    (token,) = json.loads(out)
    assert token["user"] == "ann" and token["state"] == "live" and token["expires"] is None
    assert token["created"].endswith("Z") and token["description"] == "ci"
    assert "value" not in token and "hatrac_" not in out
    # a lifetime past a century is refused, and no token is made
    for lifetime in ("0", str(10**23)):
        code, _, err = run(capsys, *config, "token", "issue", "ann", "--expires-in", lifetime)
        assert code == 2 and "--expires-in must be from 1 to" in err
    code, out, _ = run(capsys, *config, "token", "list", "--json")
    assert len(json.loads(out)) == 1

    code, out, _ = run(capsys, *config, "root-acl")
    assert code == 0 and "owner\tadmin" in out.splitlines() and "read\t" in out.splitlines()
    code, out, _ = run(capsys, *config, "root-acl", "--json")
    acls = json.loads(out)
    assert acls["owner"] == ["admin"] and acls["read"] == [] and "subtree-read" in acls
    code, out, _ = run(capsys, *config, "root-acl", "owner", "--json")
    assert json.loads(out) == ["admin"]
    code, _, err = run(capsys, *config, "root-acl", "--set")
    assert code == 2 and "access mode" in err


def test_a_command_without_config_says_it_makes_a_new_store(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    environment = bare_environment(home)
    first = subprocess.run(
        [HATRAC, "user", "list"], cwd=elsewhere, env=environment, capture_output=True, text=True
    )
    assert first.returncode == 0 and first.stdout == ""
    assert "no config file" in first.stderr and "new, empty store" in first.stderr
    assert str(elsewhere / "hatrac_data") in first.stderr and "HATRAC_CONFIG" in first.stderr
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    for command in (["verify"], ["gc"], ["init-db"]):
        result = subprocess.run(
            [HATRAC, *command], cwd=fresh, env=environment, capture_output=True, text=True
        )
        assert "new, empty store" in result.stderr, command
        shutil.rmtree(fresh / "hatrac_data")
    # the store now exists: no more warning about creating one
    again = subprocess.run(
        [HATRAC, "user", "list"], cwd=elsewhere, env=environment, capture_output=True, text=True
    )
    assert again.returncode == 0 and "new, empty store" not in again.stderr

    checked = subprocess.run(
        [HATRAC, "check-config"], cwd=elsewhere, env=environment, capture_output=True, text=True
    )
    assert checked.returncode == 0
    assert "warning: no config file found" in checked.stderr

    # with a config file there is no warning at all
    config = tmp_path / "hatrac_config.json"
    config.write_text("{}")
    environment["HATRAC_CONFIG"] = str(config)
    quiet = subprocess.run(
        [HATRAC, "user", "list"], cwd=elsewhere, env=environment, capture_output=True, text=True
    )
    assert quiet.returncode == 0 and quiet.stderr == ""
    checked = subprocess.run(
        [HATRAC, "check-config"], cwd=elsewhere, env=environment, capture_output=True, text=True
    )
    assert checked.returncode == 0 and "warning" not in checked.stderr


def test_serve_runs_gunicorn_with_bind_workers_and_threads(tmp_path, config_file):
    port = free_port()
    process = subprocess.Popen(
        [
            HATRAC,
            "--config",
            str(config_file),
            "serve",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "2",
            "--threads",
            "3",
        ],
        cwd=tmp_path,
        env=bare_environment(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        wait_for_port(port, process=process)
        reply = requests.get(f"http://127.0.0.1:{port}/hatrac-health/ready", timeout=10)
        assert reply.status_code == 200 and reply.json()["status"] == "ready"
        # the configured store is the one served: no owner but admin, anonymous refused
        assert requests.get(f"http://127.0.0.1:{port}/hatrac/", timeout=10).status_code == 401
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        _, err = process.communicate(timeout=30)
    lines = [json.loads(line) for line in err.decode().splitlines() if line.strip()]
    booted = [line for line in lines if "Booting worker" in line.get("message", "")]
    assert len(booted) == 2  # --workers 2
    # the packaged config's worker: gthread's subclass that parks slow clients
    assert any(
        "Using worker: hatrac.gunicorn_worker.ParkingThreadWorker" in line.get("message", "")
        for line in lines
    ), lines
    assert (tmp_path / "store" / "hatrac.sqlite3").exists()


def test_serve_refuses_a_bad_config_in_one_line(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"storage_pth": "/x"}')
    result = subprocess.run(
        [HATRAC, "--config", str(bad), "serve"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "storage_pth" in result.stderr


@pytest.mark.parametrize(
    "module,extra,settings",
    [
        ("psycopg2", "postgres", {"database_dsn": "dbname=hatrac"}),
        ("boto3", "s3", {"storage_backend": "amazons3", "s3_config": {"buckets": {}}}),
        (
            "jwt",
            "oidc",
            {"jwt_issuers": [{"issuer": "https://idp.example", "jwks_file": "/nonexistent"}]},
        ),
    ],
)
def test_a_missing_extra_is_named(monkeypatch, tmp_path, module, extra, settings):
    # the package is absent from this interpreter, as after a plain 'pip install hatrac'
    monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(ConfigError) as error:
        load_config({"data_directory": str(tmp_path), **settings})
    assert f"pip install 'hatrac[{extra}]'" in str(error.value)


def test_the_default_install_needs_no_extra(monkeypatch, tmp_path):
    for module in ("psycopg2", "boto3", "jwt"):
        monkeypatch.setitem(sys.modules, module, None)
    app = hatrac.create_app({"data_directory": str(tmp_path)})
    try:
        assert app.test_client().get("/hatrac-health/ready").status_code == 200
    finally:
        app.extensions["hatrac"].close()


def test_upstream_filesystem_layout_needs_no_s3_extra(monkeypatch, tmp_path):
    """An imported filesystem site (overlay: ours, then upstream's directory) without boto3."""
    monkeypatch.setitem(sys.modules, "boto3", None)
    for name in [m for m in sys.modules if m.startswith("hatrac.model.storage.upstream")]:
        monkeypatch.delitem(sys.modules, name)
    upstream = tmp_path / "upstream"
    upstream.mkdir()
    overlay = [
        {"storage_backend": "filesystem", "storage_path": str(tmp_path / "ours")},
        {"storage_backend": "upstream", "label": "upstream", "storage_path": str(upstream)},
    ]
    app = hatrac.create_app(
        {
            "data_directory": str(tmp_path),
            "storage_backend": "overlay",
            "overlay_backends": overlay,
        }
    )
    try:
        assert app.test_client().get("/hatrac-health/ready").status_code == 200
    finally:
        app.extensions["hatrac"].close()
    s3_overlay = [overlay[0], {**overlay[1], "upstream_s3": {"": {}}}]
    with pytest.raises(ConfigError) as error:
        load_config(
            {
                "data_directory": str(tmp_path),
                "storage_backend": "overlay",
                "overlay_backends": s3_overlay,
            }
        )
    assert "pip install 'hatrac[s3]'" in str(error.value)


def test_packaging_metadata():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["authors"] and project["urls"] and project["classifiers"]
    assert "Programming Language :: Python :: 3" in project["classifiers"]
    base = " ".join(project["dependencies"]).lower()
    for heavy in ("boto3", "psycopg2", "pyjwt"):
        assert heavy not in base, f"{heavy} belongs in an extra"
    extras = project["optional-dependencies"]
    assert extras["postgres"][0].startswith("psycopg2")
    assert extras["s3"][0].startswith("boto3")
    assert extras["oidc"][0].startswith("PyJWT[crypto]")
    assert any(entry.startswith("hatrac[") and "postgres" in entry for entry in extras["test"])
    assert all(name in extras["test"][0] for name in ("postgres", "s3", "oidc"))


def test_gitignore_keeps_the_store_and_the_cookie_jar_out():
    paths = ["hatrac_data/hatrac.sqlite3", "hatrac_data/admin-password", "jar"]
    result = subprocess.run(
        ["git", "check-ignore", "--no-index", *paths], cwd=ROOT, capture_output=True, text=True
    )
    assert sorted(result.stdout.split()) == sorted(paths)


def test_tls_with_gunicorn_and_a_self_signed_certificate(tmp_path, config_file):
    """docs/install.md's second way to give deriva-hatrac-cli its https: the documented
    openssl and 'hatrac serve -- --certfile --keyfile' commands, then a requests client
    (what DERIVA uses) that trusts the certificate through REQUESTS_CA_BUNDLE."""
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"]
        + ["-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"]
        + ["-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )
    port = free_port()
    process = subprocess.Popen(
        [HATRAC, "--config", str(config_file), "serve", "--bind", f"127.0.0.1:{port}"]
        + ["--workers", "1", "--", "--certfile", str(cert), "--keyfile", str(key)],
        cwd=tmp_path,
        env=bare_environment(tmp_path),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    probe = (
        "import sys, requests\n"
        "try:\n"
        f"    reply = requests.get('https://localhost:{port}/hatrac-health/ready', timeout=10)\n"
        "    print(reply.status_code, reply.json()['status'])\n"
        "except requests.exceptions.SSLError:\n"
        "    print('untrusted')\n"
    )
    try:
        wait_for_port(port, process=process)
        environment = {k: v for k, v in os.environ.items() if "CA_BUNDLE" not in k}
        trusted = subprocess.run(
            [sys.executable, "-c", probe],
            env={**environment, "REQUESTS_CA_BUNDLE": str(cert)},
            capture_output=True,
            text=True,
        )
        assert trusted.stdout.split() == ["200", "ready"], trusted.stderr
        untrusted = subprocess.run(
            [sys.executable, "-c", probe], env=environment, capture_output=True, text=True
        )
        assert untrusted.stdout.strip() == "untrusted"
        # plain http on the TLS port is not served
        with pytest.raises(requests.RequestException):
            requests.get(f"http://127.0.0.1:{port}/hatrac-health/live", timeout=5).json()
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
