"""Optional dependencies, installed as extras: hatrac[postgres], hatrac[s3], hatrac[oidc].

The default install serves SQLite and files. A configuration that needs
PostgreSQL (a ``database_dsn`` that is not ``sqlite:``), S3 storage or JWT
issuers needs the matching extra; :func:`require` imports it or raises a
:class:`~hatrac.config_errors.ConfigError` naming the ``pip install`` that fixes it.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from .config_errors import ConfigError

# module to import -> (extra, distribution that provides it)
EXTRAS = {
    "psycopg2": ("postgres", "psycopg2-binary"),
    "boto3": ("s3", "boto3"),
    "jwt": ("oidc", "PyJWT[crypto]"),
}


def missing_message(module: str, purpose: str) -> str:
    extra, distribution = EXTRAS[module]
    return (
        f"{purpose} needs the optional package {distribution}, which is not installed; "
        f"install it with: pip install 'hatrac[{extra}]'"
    )


def require(module: str, purpose: str) -> ModuleType:
    """Import ``module`` (a key of :data:`EXTRAS`) or raise ConfigError naming its extra."""
    try:
        loaded = importlib.import_module(module)
        if module == "jwt":  # PyJWT without cryptography cannot check RSA or EC signatures
            importlib.import_module("cryptography")
    except ImportError as error:
        raise ConfigError(missing_message(module, purpose)) from error
    return loaded


def check_config_extras(values: dict) -> None:
    """Raise ConfigError when the settings need an extra that is not installed."""
    if not str(values.get("database_dsn") or "sqlite:").startswith("sqlite:"):
        require("psycopg2", "a PostgreSQL database_dsn")
    backends = [values.get("storage_backend")]
    if values.get("storage_backend") == "overlay" and isinstance(
        values.get("overlay_backends"), list
    ):
        backends += [
            e.get("storage_backend") for e in values["overlay_backends"] if isinstance(e, dict)
        ]
    if "amazons3" in backends:
        require("boto3", "storage_backend 'amazons3'")
    if any(
        isinstance(e, dict) and e.get("storage_backend") == "upstream" and e.get("upstream_s3")
        for e in values.get("overlay_backends") or []
    ):
        require("boto3", "upstream's S3 buckets (overlay_backends)")
    if values.get("jwt_issuers") and "jwt" in (values.get("authn_providers") or ()):
        require("jwt", "jwt_issuers (OIDC/JWT bearer tokens)")
