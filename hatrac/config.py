"""Loading and validating ``hatrac_config.json``.

All settings are declared once, in :data:`SETTINGS` (name, expected type,
default, help). The configuration reference in ``docs/configuration.md`` is
checked against this table by the test suite, unknown keys are an error, and
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
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Union


class ConfigError(Exception):
    """The configuration is unusable; the message names the field and the fix."""


class StartupError(ConfigError):
    """The configured database or storage cannot be used; the message says what to fix."""


@dataclass(frozen=True)
class Setting:
    """One configuration field: its JSON type(s), default and meaning."""

    name: str
    types: tuple
    default: Any
    help: str


_FIREWALL_ACCESS = ("create", "delete", "manage_acls", "manage_metadata")

SETTINGS: tuple[Setting, ...] = (
    Setting("service_prefix", (str,), "/hatrac", "URL path under which the protocol is served."),
    Setting(
        "data_directory",
        (str,),
        "hatrac_data",
        "Directory for the embedded defaults (SQLite file, stored bytes); relative paths are "
        "taken from the config file's directory, or the working directory without a file.",
    ),
    Setting(
        "database_dsn",
        (str, type(None)),
        None,
        "PostgreSQL DSN (e.g. 'dbname=hatrac' or 'postgresql://...'), or 'sqlite:PATH'. "
        "Default: sqlite:DATA_DIRECTORY/hatrac.sqlite3.",
    ),
    Setting("database_pool_size", (int,), 8, "Most PostgreSQL connections kept per process."),
    Setting(
        "database_max_retries",
        (int,),
        8,
        "How often a transaction is retried after a serialization failure or deadlock.",
    ),
    Setting(
        "database_prepared_statements",
        (bool,),
        True,
        "Prepare hot statements once per PostgreSQL connection; false behind PgBouncer's "
        "transaction pooling.",
    ),
    Setting(
        "storage_backend",
        (str,),
        "filesystem",
        "Where bytes live: 'filesystem', 'amazons3' or 'overlay'.",
    ),
    Setting(
        "storage_path",
        (str, type(None)),
        None,
        "Root directory of the filesystem backend. Default: DATA_DIRECTORY/storage.",
    ),
    Setting("s3_config", (dict, type(None)), None, "Settings of the amazons3 backend."),
    Setting(
        "inline_max_size",
        (int,),
        65536,
        "Bodies of a PUT up to this many bytes are kept in the database with their version "
        "(one commit, no file); larger ones go to the storage backend. 0: never.",
    ),
    Setting(
        "overlay_backends",
        (list, type(None)),
        None,
        "For 'overlay': an ordered list of backend configs; writes go to the first.",
    ),
    Setting(
        "allowed_url_char_class",
        (str,),
        "A-Za-z0-9_.~-",
        "Characters allowed bare (unencoded) in names, as a regular-expression class body.",
    ),
    Setting(
        "legacy_names",
        (bool,),
        False,
        "Also accept name segments that are not UTF-8, hold control characters or spell "
        "'.'/'..' percent-encoded (names imported from upstream Hatrac; set by import-upstream).",
    ),
    Setting("max_segment_length", (int,), 255, "Longest name segment, in decoded characters."),
    Setting("max_name_length", (int,), 4096, "Longest full name, in decoded characters."),
    Setting(
        "max_request_payload_size",
        (int,),
        134217728,
        "Largest body of a single PUT, in bytes (never below 100 MiB).",
    ),
    Setting(
        "firewall_acls",
        (dict,),
        {},
        "Service-wide ACLs checked besides resource ACLs: create, delete, manage_acls, "
        "manage_metadata (each a list of roles; default ['*'], or [] when read_only).",
    ),
    Setting("read_only", (bool,), False, "Refuse every change (firewall ACL defaults become [])."),
    Setting(
        "root_acls",
        (dict,),
        {},
        "ACLs given to the root namespace when the database is first created, e.g. "
        '{"owner": ["admin"], "read": ["*"]}. Later changes go through the ;acl API or '
        "'hatrac root-acl'.",
    ),
    Setting(
        "trusted_remote_user",
        (bool,),
        True,
        "Take the client identity from REMOTE_USER set by the web server (Apache).",
    ),
    Setting(
        "trusted_groups_environ",
        (str,),
        "HATRAC_GROUPS",
        "WSGI environ variable (set by the web server) holding the client's groups.",
    ),
    Setting(
        "trusted_groups_separator",
        (str,),
        ";",
        "Separator of group names in the groups variable.",
    ),
    Setting(
        "error_templates",
        (dict,),
        {},
        "Per-status (or 'default') HTML templates for errors; $status, $title and $message "
        "are substituted (HTML-escaped).",
    ),
    Setting(
        "web_interface",
        (bool,),
        True,
        "Serve the web interface (HTML pages for browsers on namespace and ;versions URLs, "
        "and its files under SERVICE_PREFIX/;web/); false for API-only sites.",
    ),
    Setting(
        "web_page_size",
        (int,),
        500,
        "Children per page of a namespace's HTML page (at most 5000).",
    ),
    Setting(
        "upload_job_expiry_secs",
        (int,),
        7 * 24 * 3600,
        "Unfinished upload jobs idle longer than this are garbage-collected.",
    ),
    Setting("log_level", (str,), "INFO", "Level of the service log."),
    Setting(
        "health_prefix",
        (str,),
        "/hatrac-health",
        "URL path of the operational endpoints, outside service_prefix: PREFIX/live "
        "(liveness), PREFIX/ready (readiness: database and storage) and PREFIX/metrics.",
    ),
    Setting(
        "metrics_enabled",
        (bool,),
        False,
        "Serve Prometheus metrics at HEALTH_PREFIX/metrics (set PROMETHEUS_MULTIPROC_DIR "
        "when several worker processes serve the app).",
    ),
    Setting(
        "access_log",
        (bool,),
        True,
        "Write one JSON line per request to the 'hatrac.access' logger.",
    ),
    Setting(
        "orphan_grace_secs",
        (int,),
        24 * 3600,
        "'hatrac gc' leaves unreferenced stored bytes younger than this alone (they may "
        "belong to an upload that is still committing).",
    ),
    # browsers (see docs/browsers.md)
    Setting(
        "attachment_content_types",
        (list,),
        [],
        "Media types served as downloads (Content-Disposition: attachment) besides the "
        "built-in active types (HTML, SVG, XML, JavaScript, ...), e.g. ['text/markdown'].",
    ),
    Setting(
        "download_origin",
        (str, type(None)),
        None,
        "Origin (scheme://host[:port]) of a second host name serving the same service, where "
        "objects are read anonymously and rendered inline (user HTML displays there) under a "
        "script sandbox; it must never receive the service's session cookie.",
    ),
    Setting(
        "cors_allowed_origins",
        (list,),
        [],
        "Origins (exact scheme://host[:port]) of browser apps on other sites that may call "
        "the API with credentials (cookie or bearer token); '*' lets any site make "
        "credential-less calls. Default: none (same-origin apps only).",
    ),
    Setting(
        "cors_max_age_secs",
        (int,),
        600,
        "Seconds a browser may cache a CORS preflight answer (Access-Control-Max-Age).",
    ),
    # authentication (hatrac.auth; see docs/authentication.md)
    Setting(
        "authn_providers",
        (list,),
        ["trusted", "token", "jwt", "basic", "session"],
        "Authentication providers tried in order: 'trusted' (REMOTE_USER, also needs "
        "trusted_remote_user), 'token' (API tokens and session ids as Bearer), 'jwt' (when "
        "jwt_issuers is set), 'basic' and 'session' (the cookie); or 'webauthn2' (the site's "
        "webauthn2 service, also needs webauthn2_session_url).",
    ),
    Setting(
        "version_import_roles",
        (list,),
        [],
        "Roles that may create a version with a given id (PUT /name:VERSION), for migrations "
        "that keep upstream's version URLs. Default: nobody.",
    ),
    Setting(
        "webauthn2_session_url",
        (str, type(None)),
        None,
        "URL of the site's webauthn2 session resource (e.g. 'https://HOST/authn/session'), "
        "asked by the 'webauthn2' provider with the request's cookie or bearer token.",
    ),
    Setting(
        "webauthn2_cache_secs",
        (int, float),
        5,
        "Seconds a process reuses a webauthn2 answer for one credential (a logout at webauthn2 "
        "is seen within this time; 0: ask on every request).",
    ),
    Setting(
        "webauthn2_timeout_secs",
        (int, float),
        5,
        "Seconds to wait for webauthn2 before answering 503.",
    ),
    Setting(
        "webauthn2_ca_file",
        (str, type(None)),
        None,
        "CA bundle for an https webauthn2_session_url with a private certificate authority.",
    ),
    Setting(
        "session_cookie_name",
        (str,),
        "webauthn",
        "Name of the session cookie (DERIVA clients expect 'webauthn').",
    ),
    Setting(
        "session_expiry_secs",
        (int,),
        28800,
        "Lifetime of a login session; PUT /authn/session extends it by as much.",
    ),
    Setting(
        "session_cache_secs",
        (int,),
        0,
        "PostgreSQL only: seconds a process may reuse a session or token lookup; logouts, "
        "revocations, password and group changes clear every server's cache by LISTEN/NOTIFY "
        "within milliseconds. 0 (default): ask the database on every request, so a logout "
        "is effective at once everywhere.",
    ),
    Setting(
        "password_hash_rounds",
        (int,),
        600000,
        "PBKDF2-SHA256 iterations of new password hashes.",
    ),
    Setting(
        "basic_cache_secs",
        (int,),
        60,
        "Seconds a process remembers a verified HTTP Basic credential (0: hash every request).",
    ),
    Setting(
        "login_failure_window_secs",
        (int,),
        900,
        "Window over which failed logins (session and Basic) are counted for rate limiting.",
    ),
    Setting(
        "login_max_failures_per_account",
        (int,),
        10,
        "Failed logins of one user name within the window before further tries get 429.",
    ),
    Setting(
        "login_max_failures_per_address",
        (int,),
        50,
        "Failed logins from one client address within the window before further tries get 429.",
    ),
    Setting(
        "jwt_issuers",
        (list,),
        [],
        "Accepted JWT (OIDC) issuers: objects with issuer, jwks_file and optionally audience, "
        "algorithms, identity_claim, identity_prefix, groups_claim, group_prefix, leeway_secs.",
    ),
    Setting(
        "trust_forwarded_headers",
        (bool,),
        False,
        "Take the client address from X-Forwarded-For and HTTPS from X-Forwarded-Proto "
        "(only behind a proxy that sets them).",
    ),
)

_BY_NAME = {setting.name: setting for setting in SETTINGS}

MINIMUM_PAYLOAD_LIMIT = 100 * 1024 * 1024
MAXIMUM_INLINE_SIZE = 1024 * 1024


class Config:
    """A validated configuration; settings are attributes (``config.storage_path``)."""

    def __init__(self, values: dict, base_directory: Path):
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
        if access not in _FIREWALL_ACCESS:
            raise ConfigError(
                f"config field 'firewall_acls' has unknown access {access!r}; "
                f"known: {', '.join(_FIREWALL_ACCESS)}"
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
