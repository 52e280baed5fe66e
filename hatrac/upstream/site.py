"""An upstream deployment's configuration: where its bytes are, and ours to match.

:func:`load_site` reads upstream's ``hatrac_config.json`` (every shape its
releases used: the S3 bucket tree, the 2017-2023 ``/segment`` mappings, the
single ``s3_bucket`` of older releases, overlay chains) into a
:class:`Site`. :meth:`Site.address` gives the in-place storage key of a
version from its storage address (name, version id, S3 VersionId), and
:meth:`Site.our_config` writes our configuration serving those bytes where
they are, with upstream's prefix, firewall ACLs and read-only mode.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Union
from urllib.parse import unquote

from ..model.storage.upstream import filesystem_key, s3_key

FIREWALL = {"create": "create", "delete": "delete", "manage_acl": "manage_acls"}
FIREWALL["manage_metadata"] = "manage_metadata"


class SiteError(ValueError):
    """Upstream's configuration cannot be understood; the message says which field."""


@dataclass
class Bucket:
    """One entry of upstream's S3 bucket tree."""

    prefix: str  # a name path without leading/trailing '/'; '' = the whole tree
    name: str
    path_prefix: str
    method: str
    unquote: bool
    settings: dict


@dataclass
class Backend:
    """One upstream storage backend (an overlay has several)."""

    label: str
    kind: str  # "filesystem" or "amazons3"
    storage_path: Optional[str] = None
    buckets: list[Bucket] = field(default_factory=list)
    legacy_mapping: bool = False

    def bucket_for(self, name: str) -> Optional[Bucket]:
        """The deepest configured prefix containing the name's parent path."""
        parent = name.strip("/").rpartition("/")[0]
        best = None
        for bucket in self.buckets:
            prefix = bucket.prefix.split("/")[0] if self.legacy_mapping else bucket.prefix
            if self.legacy_mapping:
                fits = prefix == "" or parent.split("/")[0] == prefix
            else:
                fits = prefix == "" or parent == prefix or parent.startswith(prefix + "/")
            if fits and (best is None or len(prefix) > len(best[0])):
                best = (prefix, bucket)
        return best[1] if best else None

    def address(
        self, hname: str, hversion: str, s3_version: Optional[str]
    ) -> tuple[str, Optional[str]]:
        """(storage key, problem) of the bytes stored for (hname, hversion)."""
        if self.kind == "filesystem":
            relative = hname[1:] + ":" + hversion
            problem = None
            if any(part in ("", ".", "..") for part in relative.split("/")):
                problem = f"{hname!r}:{hversion!r} does not map to a safe file path"
            return filesystem_key(self.label, relative), problem
        bucket = self.bucket_for(hname)
        if bucket is None:
            return filesystem_key(self.label, "unmapped"), f"no S3 bucket maps {hname!r}"
        key = hname[1:]
        if bucket.method == "pref/**/hname:hver":
            key += ":" + hversion
            version_id = s3_version
        else:
            version_id = s3_version or hversion
        if bucket.path_prefix:
            key = bucket.path_prefix + "/" + key
        key = key.lstrip("/")
        if bucket.unquote:
            key = unquote(key)
        return s3_key(self.label, bucket.name, key, version_id), None

    def in_place_entry(self) -> dict:
        """Our overlay entry reading this backend's bytes where they are."""
        if self.kind == "filesystem":
            return {
                "storage_backend": "upstream",
                "label": self.label,
                "storage_path": self.storage_path,
            }
        buckets: dict[str, dict] = {}
        for bucket in self.buckets:
            buckets.setdefault(bucket.name, bucket.settings)
        return {"storage_backend": "upstream", "label": self.label, "upstream_s3": buckets}


def _buckets(s3_config: Any, top: dict) -> tuple[list[Bucket], bool]:
    if s3_config is None and "s3_bucket" in top:  # releases before December 2017
        s3_config = {
            "buckets": {
                "": {
                    "bucket_name": top["s3_bucket"],
                    "bucket_path_prefix": top.get("s3_object_prefix", "hatrac"),
                }
            },
            "legacy_mapping": True,
        }
    if not isinstance(s3_config, dict):
        raise SiteError("storage_backend is amazons3 but s3_config is not an object")
    default_session = s3_config.get("default_session", s3_config.get("session", {})) or {}
    tree = s3_config.get("buckets", s3_config.get("bucket_mappings"))
    if not isinstance(tree, dict) or not tree:
        raise SiteError("s3_config.buckets must map name prefixes to bucket settings")
    result = []
    for prefix, entry in tree.items():
        if not isinstance(entry, dict) or not isinstance(entry.get("bucket_name"), str):
            raise SiteError(f"s3_config.buckets[{prefix!r}] needs a bucket_name")
        method = entry.get("hatrac_s3_method", "pref/**/hname")
        if method not in ("pref/**/hname", "pref/**/hname:hver"):
            raise SiteError(f"s3_config.buckets[{prefix!r}]: unknown hatrac_s3_method {method!r}")
        threshold = entry.get("presigned_url_threshold", entry.get("presigned_url_size_threshold"))
        settings = {
            "session_config": entry.get("session_config", default_session),
            "s3_client_kwargs": entry.get("s3_client_kwargs", {}),
            "region_name": entry.get("region_name"),
            "presigned_url_threshold": threshold,
            "presigned_url_expiration_secs": entry.get("presigned_url_expiration_secs", 300),
        }
        result.append(
            Bucket(
                prefix=prefix.strip("/"),
                name=entry["bucket_name"],
                path_prefix=str(entry.get("bucket_path_prefix", "hatrac")).strip("/"),
                method=method,
                unquote=bool(entry.get("unquote_object_keys", False)),
                settings=settings,
            )
        )
    return result, bool(s3_config.get("legacy_mapping", False))


def _backend(label: str, entry: dict, top: dict, storage_path: Optional[str]) -> Backend:
    kind = entry.get("storage_backend", "filesystem")
    if kind == "filesystem":
        path = storage_path or entry.get("storage_path") or "/var/www/hatrac"
        return Backend(label, kind, storage_path=str(Path(path).resolve()))
    if kind == "amazons3":
        buckets, legacy = _buckets(entry.get("s3_config"), entry)
        return Backend(label, kind, buckets=buckets, legacy_mapping=legacy)
    raise SiteError(f"storage_backend {kind!r} is not one upstream has")


@dataclass
class Site:
    """What an upstream deployment's configuration says."""

    dsn: str
    service_prefix: str
    backends: list[Backend]
    firewall: dict[str, list[str]]
    read_only: bool
    notes: list[str] = field(default_factory=list)

    def address(
        self, hname: str, hversion: str, s3_version: Optional[str]
    ) -> list[tuple[str, Optional[str]]]:
        """Candidate (key, problem) per backend, in upstream's read order."""
        return [backend.address(hname, hversion, s3_version) for backend in self.backends]

    def our_config(
        self, database_dsn: str, data_directory: str, storage_path: str, new_prefix: str
    ) -> dict:
        """Our configuration: new bytes in our layout, upstream's read in place."""
        first = self.backends[0]
        if first.kind == "filesystem":
            ours: dict = {"storage_backend": "filesystem", "storage_path": storage_path}
        else:
            buckets = {}
            for bucket in first.buckets:
                kwargs = dict(bucket.settings["s3_client_kwargs"])
                client_config = {k: v for k, v in kwargs.items() if k != "config"}
                if isinstance(kwargs.get("config"), dict):
                    client_config.update(kwargs["config"])
                threshold = bucket.settings["presigned_url_threshold"]
                buckets["/" + bucket.prefix] = {
                    "bucket_name": bucket.name,
                    "bucket_path_prefix": "/".join(
                        p for p in (bucket.path_prefix, new_prefix) if p
                    ),
                    # upstream redirects above the threshold, ours from it on
                    "presigned_url_threshold": threshold + 1 if threshold else None,
                    "presigned_url_expiration_secs": bucket.settings[
                        "presigned_url_expiration_secs"
                    ],
                    "session_config": bucket.settings["session_config"],
                    "client_config": client_config,
                }
            ours = {"storage_backend": "amazons3", "s3_config": {"buckets": buckets}}
        return {
            "service_prefix": self.service_prefix,
            "data_directory": data_directory,
            "database_dsn": database_dsn,
            "storage_backend": "overlay",
            "overlay_backends": [ours] + [b.in_place_entry() for b in self.backends],
            "firewall_acls": self.firewall,
            "read_only": self.read_only,
        }


def load_site(
    source: Union[str, os.PathLike, dict],
    dsn: Optional[str] = None,
    storage_path: Optional[str] = None,
) -> Site:
    """Read upstream's configuration; ``dsn``/``storage_path`` override its fields."""
    if isinstance(source, dict):
        top = source
    else:
        try:
            top = json.loads(Path(source).read_text())
        except OSError as error:
            raise SiteError(f"cannot read {source}: {error.strerror}") from None
        except ValueError as error:
            raise SiteError(f"{source} is not JSON: {error}") from None
    if not isinstance(top, dict):
        raise SiteError("upstream's configuration must be a JSON object")
    notes = []
    kind = top.get("storage_backend", "filesystem")
    if kind == "overlay":
        chain = top.get("overlay_backends")
        if not isinstance(chain, list) or not chain:
            raise SiteError("storage_backend is overlay but overlay_backends is not a list")
        backends = []
        for number, entry in enumerate(chain):
            if not isinstance(entry, dict) or entry.get("storage_backend") == "overlay":
                raise SiteError(f"overlay_backends[{number}] is not a storage backend")
            backends.append(_backend(f"up{number}", entry, top, None))
    else:
        backends = [_backend("up0", top, top, storage_path)]
    read_only = bool(top.get("read_only", False))
    given = top.get("firewall_acls") or {}
    if not isinstance(given, dict):
        raise SiteError("firewall_acls must be an object")
    if "manage_acls" in given:
        notes.append(
            "firewall_acls.manage_acls is ignored by upstream (its code reads manage_acl); "
            "it is ignored here too"
        )
    firewall = {}
    for theirs, mine in FIREWALL.items():
        roles = given.get(theirs, [] if read_only else ["*"])
        if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
            raise SiteError(f"firewall_acls.{theirs} must be a list of role strings")
        firewall[mine] = roles
    if top.get("allowed_url_char_class"):
        notes.append(
            "allowed_url_char_class was set; stored names are re-spelled in our canonical "
            "form, and other spellings (bare characters) are still accepted"
        )
    database_dsn = dsn or top.get("database_dsn")
    if not isinstance(database_dsn, str) or not database_dsn:
        raise SiteError("upstream's database_dsn is missing; give --upstream-dsn")
    return Site(
        dsn=database_dsn,
        service_prefix=str(top.get("service_prefix") or "/hatrac").rstrip("/") or "/hatrac",
        backends=backends,
        firewall=firewall,
        read_only=read_only,
        notes=notes,
    )
