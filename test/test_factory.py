"""The application factory and mounting Hatrac inside another Flask app."""

from __future__ import annotations

import json

import pytest
from flask import Flask

import hatrac
from hatrac.config import ConfigError


def test_factory_from_dict(tmp_path):
    app = hatrac.create_app({"data_directory": str(tmp_path), "root_acls": {"read": ["*"]}})
    assert app.test_client().get("/hatrac/").status_code == 200
    assert (tmp_path / "hatrac.sqlite3").exists()
    assert (tmp_path / "storage" / "objects").is_dir()
    app.extensions["hatrac"].close()


def test_factory_from_environment(tmp_path, monkeypatch):
    path = tmp_path / "hatrac_config.json"
    path.write_text(json.dumps({"service_prefix": "/files", "root_acls": {"read": ["*"]}}))
    monkeypatch.setenv("HATRAC_CONFIG", str(path))
    app = hatrac.create_app()
    client = app.test_client()
    assert client.get("/files/").status_code == 200
    assert client.get("/hatrac/").status_code == 404
    assert client.put("/files/x", data=b"x").status_code == 401
    assert (tmp_path / "hatrac_data" / "hatrac.sqlite3").exists()
    app.extensions["hatrac"].close()


def test_factory_refuses_bad_config(tmp_path):
    with pytest.raises(ConfigError, match="no_such"):
        hatrac.create_app({"no_such": 1, "data_directory": str(tmp_path)})


def test_mounted_in_a_host_app(tmp_path):
    host = Flask("host")

    @host.route("/")
    def home():
        return "host home"

    hatrac.init_app(
        host,
        {"data_directory": str(tmp_path), "root_acls": {"create": ["*"], "subtree-read": ["*"]}},
    )
    client = host.test_client()
    assert client.get("/").data == b"host home"
    created = client.put("/hatrac/obj", data=b"mounted")
    assert created.status_code == 201
    assert client.get("/hatrac/obj").data == b"mounted"
    host.extensions["hatrac"].close()


def test_each_app_has_its_own_state(tmp_path):
    first = hatrac.create_app({"data_directory": str(tmp_path / "one")})
    second = hatrac.create_app({"data_directory": str(tmp_path / "two")})
    assert first.extensions["hatrac"] is not second.extensions["hatrac"]
    assert first.extensions["hatrac"].config.storage_path != (
        second.extensions["hatrac"].config.storage_path
    )
    first.extensions["hatrac"].close()
    second.extensions["hatrac"].close()
