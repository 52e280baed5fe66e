"""The declared configuration settings of ``hatrac_config.json``: name, type, default, help.

One table, :data:`SETTINGS`, is the whole list of fields. :mod:`hatrac.config`
validates and loads a file against it, and ``docs/configuration.md`` is
checked against it by the test suite.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

FIREWALL_ACCESS = ("create", "delete", "manage_acls", "manage_metadata")
"""The kinds of access a service-wide firewall ACL (``firewall_acls``) can name."""


@dataclass(frozen=True)
class Setting:
    """One configuration field: its JSON type(s), default and meaning."""

    name: str
    types: tuple
    default: Any
    help: str


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
        "storage_drop_behind",
        (bool,),
        True,
        "Filesystem backend: drop a large body's pages from the page cache once they are "
        "durable (a PUT over 32 MiB as it arrives, an upload job's chunks once hashed), so "
        "later writes reuse the freed memory and a bulk upload does not evict hot data; "
        "false keeps them cached for a GET right after the upload.",
    ),
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
