"""Loading and validating ``hatrac_config.json``.

All settings are declared once, in :data:`hatrac.settings.SETTINGS` (name,
expected type, default, help); the reference in ``docs/configuration.md`` is
checked against that table by the test suite. Unknown keys are an error, and
nothing is read at import time: :func:`load_config` is called by the app
factory and by the command line.

Where the file is found: the ``HATRAC_CONFIG`` environment variable, else
``~/hatrac_config.json`` (the daemon account's home), else built-in defaults,
which serve from SQLite and a local ``hatrac_data`` directory.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any, Optional, Union

from .config_errors import ConfigError, StartupError  # noqa: F401 (both named from here too)
from .settings import FIREWALL_ACCESS, SETTINGS, Setting

_BY_NAME = {setting.name: setting for setting in SETTINGS}

MINIMUM_PAYLOAD_LIMIT = 100 * 1024 * 1024
MAXIMUM_INLINE_SIZE = 1024 * 1024


class Config:
    """A validated configuration; settings are attributes (``config.storage_path``)."""

    def __init__(self, values: dict, base_directory: Path) -> None:
        self._values = values
        self.base_directory = base_directory

    def __getattr__(self, name: str) -> Any:
        try:
            return self._values[name]
        except KeyError:
            raise AttributeError(name) from None

    def as_dict(self) -> dict:
        return dict(self._values)

    def firewall(self, access: str) -> list[str]:
        """The roles a service-wide firewall ACL admits."""
        acls = self._values["firewall_acls"]
        if access in acls:
            return list(acls[access])
        return [] if self._values["read_only"] else ["*"]


def _check_type(setting: Setting, value: Any) -> None:
    types = setting.types
    # bool is an int in Python; do not let true/false pass for a number
    if isinstance(value, bool) and bool not in types:
        raise ConfigError(_type_message(setting, value))
    if not isinstance(value, types):
        raise ConfigError(_type_message(setting, value))


def _type_message(setting: Setting, value: Any) -> str:
    names = {
        str: "a string",
        int: "an integer",
        float: "a number",
        bool: "true or false",
        dict: "an object",
        list: "an array",
        type(None): "null",
    }
    expected = " or ".join(names[t] for t in setting.types)
    return (
        f"config field '{setting.name}' must be {expected}, not {json.dumps(value)}: {setting.help}"
    )


def _validate(values: dict) -> None:
    from .extras import check_config_extras

    check_config_extras(values)  # first: the checks below may import the extras
    if not values["service_prefix"].startswith("/") or values["service_prefix"].endswith("/"):
        if values["service_prefix"] != "":
            raise ConfigError(
                "config field 'service_prefix' must begin with '/' and not end with '/' "
                f"(got {values['service_prefix']!r}); the default is '/hatrac'"
            )
    health = values["health_prefix"]
    if not health.startswith("/") or health.endswith("/") or health == values["service_prefix"]:
        raise ConfigError(
            "config field 'health_prefix' must begin with '/', not end with '/' and differ "
            f"from service_prefix (got {health!r}); the default is '/hatrac-health'"
        )
    if values["max_request_payload_size"] < MINIMUM_PAYLOAD_LIMIT:
        raise ConfigError(
            "config field 'max_request_payload_size' must be at least 104857600 (100 MiB), "
            "the size DERIVA clients send in one PUT"
        )
    if not 0 <= values["inline_max_size"] <= MAXIMUM_INLINE_SIZE:
        raise ConfigError(
            f"config field 'inline_max_size' must be between 0 and {MAXIMUM_INLINE_SIZE} "
            "(1 MiB): inline bodies are held in memory while they are received"
        )
    if not 1 <= values["web_page_size"] <= 5000:
        raise ConfigError("config field 'web_page_size' must be between 1 and 5000")
    for key in ("max_segment_length", "max_name_length", "database_pool_size"):
        if values[key] < 1:
            raise ConfigError(f"config field '{key}' must be a positive integer")
    if values["storage_backend"] not in ("filesystem", "amazons3", "overlay"):
        raise ConfigError(
            "config field 'storage_backend' must be 'filesystem', 'amazons3' or 'overlay', "
            f"not {values['storage_backend']!r}"
        )
    _validate_storage(values)
    for access, roles in values["firewall_acls"].items():
        if access not in FIREWALL_ACCESS:
            raise ConfigError(
                f"config field 'firewall_acls' has unknown access {access!r}; "
                f"known: {', '.join(FIREWALL_ACCESS)}"
            )
        if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
            raise ConfigError(f"config field 'firewall_acls.{access}' must be a list of strings")
    known_providers = ("trusted", "token", "jwt", "basic", "session", "webauthn2")
    for provider in values["authn_providers"]:
        if provider not in known_providers:
            raise ConfigError(
                f"config field 'authn_providers' has unknown provider {provider!r}; "
                f"known: {', '.join(known_providers)}"
            )
    if "webauthn2" in values["authn_providers"]:
        url = values["webauthn2_session_url"] or ""
        if not url.startswith(("http://", "https://")):
            raise ConfigError(
                "authn provider 'webauthn2' needs config field 'webauthn2_session_url', the "
                "http(s) URL of the site's webauthn2 session resource (e.g. "
                "'https://HOST/authn/session')"
            )
    if isinstance(values["webauthn2_timeout_secs"], bool) or values["webauthn2_timeout_secs"] <= 0:
        raise ConfigError("config field 'webauthn2_timeout_secs' must be a positive number")
    for key in ("session_expiry_secs", "password_hash_rounds"):
        if values[key] < 1:
            raise ConfigError(f"config field '{key}' must be a positive integer")
    if values["jwt_issuers"]:
        from .auth.oidc import parse_issuers

        parse_issuers(values["jwt_issuers"])
    roles = values["version_import_roles"]
    if not all(isinstance(role, str) and role for role in roles):
        raise ConfigError("config field 'version_import_roles' must be a list of role strings")
    _validate_browser_settings(values)
    for access, roles in values["root_acls"].items():
        if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
            raise ConfigError(f"config field 'root_acls.{access}' must be a list of strings")


def _validate_browser_settings(values: dict) -> None:
    """Origins in the exact form browsers send; media types as type/subtype."""
    from .origins import origin_problem

    for origin in values["cors_allowed_origins"]:
        if origin == "*":
            continue
        problem = origin_problem(origin)
        if problem:
            raise ConfigError(
                f"config field 'cors_allowed_origins' entry {json.dumps(origin)} {problem}, "
                "e.g. 'https://lab.example.org' or 'http://127.0.0.1:8000' (or '*' for "
                "credential-less calls from anywhere)"
            )
    origin = values["download_origin"]
    if origin is not None:
        problem = origin_problem(origin)
        if problem:
            raise ConfigError(
                f"config field 'download_origin' {json.dumps(origin)} {problem}, e.g. "
                "'https://files.example.org'"
            )
        if origin in values["cors_allowed_origins"]:
            raise ConfigError(
                "config field 'download_origin' must not also be in 'cors_allowed_origins': "
                "pages served there are user content"
            )
    for kind in values["attachment_content_types"]:
        if not isinstance(kind, str) or not re.fullmatch(r"[\w.+-]+/[\w.+-]+", kind):
            raise ConfigError(
                "config field 'attachment_content_types' must list media types such as "
                f"'text/markdown', not {json.dumps(kind)}"
            )
    if values["cors_max_age_secs"] < 0:
        raise ConfigError("config field 'cors_max_age_secs' must not be negative")


def _validate_storage(values: dict) -> None:
    """s3_config and overlay_backends, when the chosen backend uses them."""

    def check_s3(s3_config: Any, where: str) -> None:
        from .model.storage.s3_buckets import S3ConfigError, validate_s3_config

        try:
            validate_s3_config(s3_config, where)
        except S3ConfigError as error:
            raise ConfigError(f"{error}; see docs/s3.md") from None

    if values["storage_backend"] == "amazons3":
        check_s3(values["s3_config"], "s3_config")
    if values["storage_backend"] == "overlay":
        chain = values["overlay_backends"]
        if not chain:
            raise ConfigError(
                "config field 'overlay_backends' must list the overlay's backends, e.g. "
                '[{"storage_backend": "amazons3", "s3_config": {...}}, '
                '{"storage_backend": "filesystem", "storage_path": "/var/www/hatrac"}]'
            )
        for number, entry in enumerate(chain):
            where = f"overlay_backends[{number}]"
            if not isinstance(entry, dict):
                raise ConfigError(f"config field '{where}' must be an object")
            known = {"storage_backend", "storage_path", "s3_config", "comment"}
            if entry.get("storage_backend") == "upstream":  # written by import-upstream
                known = {"storage_backend", "label", "storage_path", "upstream_s3", "comment"}
            unknown = set(entry) - known
            if unknown:
                raise ConfigError(
                    f"config field '{where}' has unknown field(s) {', '.join(sorted(unknown))}; "
                    "known: storage_backend, storage_path, s3_config"
                )
            backend = entry.get("storage_backend")
            if backend == "filesystem":
                if not isinstance(entry.get("storage_path"), str):
                    raise ConfigError(f"config field '{where}.storage_path' must be a string")
            elif backend == "amazons3":
                check_s3(entry.get("s3_config"), f"{where}.s3_config")
            elif backend == "upstream":
                if not isinstance(entry.get("label"), str) or not entry["label"]:
                    raise ConfigError(f"config field '{where}.label' must be a non-empty string")
                if not isinstance(entry.get("storage_path"), str) and not isinstance(
                    entry.get("upstream_s3"), dict
                ):
                    raise ConfigError(
                        f"config field '{where}' needs a storage_path or an upstream_s3 object"
                    )
            else:
                raise ConfigError(
                    f"config field '{where}.storage_backend' must be 'filesystem' or "
                    f"'amazons3', not {json.dumps(backend)}"
                )


def build_config(raw: dict, base_directory: Optional[Path] = None) -> Config:
    """Validate a dict of settings and fill in defaults."""
    if not isinstance(raw, dict):
        raise ConfigError("the configuration must be a JSON object")
    unknown = sorted(set(raw) - set(_BY_NAME) - {"comment", "_comment"})
    if unknown:
        raise ConfigError(
            f"unknown config field(s): {', '.join(unknown)}; see docs/configuration.md "
            "for the fields this service knows"
        )
    values: dict[str, Any] = {}
    for setting in SETTINGS:
        if setting.name in raw:
            _check_type(setting, raw[setting.name])
            values[setting.name] = raw[setting.name]
        else:
            default = setting.default
            values[setting.name] = json.loads(json.dumps(default))  # a private copy
    _validate(values)

    base = Path(base_directory or Path.cwd())
    data_directory = Path(values["data_directory"])
    if not data_directory.is_absolute():
        data_directory = base / data_directory
    values["data_directory"] = str(data_directory)
    if values["storage_path"] is None:
        values["storage_path"] = str(data_directory / "storage")
    if values["database_dsn"] is None:
        values["database_dsn"] = "sqlite:" + str(data_directory / "hatrac.sqlite3")
    return Config(values, base)


def config_path_from_environment() -> Optional[Path]:
    """Where the config file is: HATRAC_CONFIG, else ~/hatrac_config.json if present."""
    explicit = os.environ.get("HATRAC_CONFIG")
    if explicit:
        return Path(explicit)
    home_file = Path.home() / "hatrac_config.json"
    return home_file if home_file.exists() else None


def load_config(source: Union[None, str, os.PathLike, dict, Config] = None) -> Config:
    """Build a Config from a dict, a file path, or the environment (``None``)."""
    if isinstance(source, Config):
        return source
    if isinstance(source, dict):
        return build_config(source)
    path = Path(source) if source is not None else config_path_from_environment()
    if path is None:
        return build_config({})
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"config file {path} does not exist; create it (an empty object {{}} serves "
            "the defaults) or point HATRAC_CONFIG at the right file"
        ) from None
    except OSError as error:
        raise ConfigError(
            f"config file {path} cannot be read ({error.strerror}); fix its permissions"
        ) from None
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as error:
        raise ConfigError(
            f"config file {path} is not valid JSON: {error.msg} at line {error.lineno} "
            f"column {error.colno}"
        ) from None
    return build_config(raw, path.parent.resolve())
