"""Configuration loading: defaults, validation and clear errors."""

from __future__ import annotations

import json

import pytest

from hatrac.config import ConfigError, build_config, load_config


def test_empty_config_serves_embedded_defaults(tmp_path):
    config = build_config({}, tmp_path)
    assert config.service_prefix == "/hatrac"
    assert config.database_dsn == f"sqlite:{tmp_path}/hatrac_data/hatrac.sqlite3"
    assert config.storage_path == f"{tmp_path}/hatrac_data/storage"
    assert config.firewall("create") == ["*"]


def test_read_only_empties_firewall_defaults(tmp_path):
    config = build_config({"read_only": True}, tmp_path)
    assert config.firewall("create") == []
    config = build_config({"read_only": True, "firewall_acls": {"create": ["a"]}}, tmp_path)
    assert config.firewall("create") == ["a"]


@pytest.mark.parametrize(
    "raw,field",
    [
        ({"no_such_field": 1}, "no_such_field"),
        ({"max_request_payload_size": "big"}, "max_request_payload_size"),
        ({"max_request_payload_size": 1024}, "max_request_payload_size"),
        ({"read_only": "yes"}, "read_only"),
        ({"database_pool_size": True}, "database_pool_size"),
        ({"storage_backend": "tape"}, "storage_backend"),
        ({"service_prefix": "hatrac"}, "service_prefix"),
        ({"firewall_acls": {"destroy": ["*"]}}, "firewall_acls"),
        ({"firewall_acls": {"create": "*"}}, "firewall_acls"),
        ({"root_acls": {"owner": "admin"}}, "root_acls"),
    ],
)
def test_bad_fields_are_named(raw, field, tmp_path):
    with pytest.raises(ConfigError) as error:
        build_config(raw, tmp_path)
    assert field in str(error.value)


def test_config_file_errors(tmp_path):
    missing = tmp_path / "missing.json"
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(missing)
    broken = tmp_path / "broken.json"
    broken.write_text("{ not json")
    with pytest.raises(ConfigError, match="not valid JSON"):
        load_config(broken)
    listed = tmp_path / "list.json"
    listed.write_text("[]")
    with pytest.raises(ConfigError, match="JSON object"):
        load_config(listed)


def test_unreadable_config(tmp_path):
    path = tmp_path / "a-directory.json"
    path.mkdir()  # unreadable as a file, even for root
    with pytest.raises(ConfigError, match="cannot be read"):
        load_config(path)


def test_relative_data_directory_follows_the_file(tmp_path, monkeypatch):
    path = tmp_path / "conf" / "hatrac_config.json"
    path.parent.mkdir()
    path.write_text(json.dumps({"data_directory": "data"}))
    monkeypatch.setenv("HATRAC_CONFIG", str(path))
    config = load_config()
    assert config.storage_path == f"{tmp_path}/conf/data/storage"
