"""The client's files in the user's config directory.

``$HATRAC_CLIENT_CONFIG`` or ``$XDG_CONFIG_HOME/hatrac`` (default
``~/.config/hatrac``) holds:

* ``remotes.conf``: one ``NAME = URL`` a line (``#`` starts a comment), the
  URL being the service's base such as ``https://host/hatrac``;
* ``credentials.json``: per server origin (``scheme://host:port``) a stored
  session cookie or API token; always written with mode 600, atomically;
* ``jobs.json``: the upload jobs this client made and has not finished
  (server origin and object path, size, SHA-256, job URL), so that ``put``
  can resume them even when the server does not list them (an anonymous
  client's jobs are never listed: their URL is their only key). Mode 600,
  as a job URL made anonymously lets anyone send its chunks.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import threading
from pathlib import Path
from typing import Optional

_REMOTE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_.-]*")


def config_dir() -> Path:
    explicit = os.environ.get("HATRAC_CLIENT_CONFIG")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "hatrac"


def valid_remote_name(name: str) -> bool:
    return bool(_REMOTE_NAME.fullmatch(name)) and name not in ("http", "https")


def load_remotes() -> dict[str, str]:
    """``{name: base URL}`` from ``remotes.conf`` (empty when there is none)."""
    path = config_dir() / "remotes.conf"
    remotes: dict[str, str] = {}
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return remotes
    for number, line in enumerate(text.splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        name, equals, url = (part.strip() for part in line.partition("="))
        if not equals or not valid_remote_name(name) or not url.startswith(("http://", "https://")):
            raise ValueError(f"{path}:{number}: expected 'NAME = http(s)://host/prefix'")
        remotes[name] = url.rstrip("/")
    return remotes


def _write_private(path: Path, text: str, mode: int) -> None:
    """Replace ``path`` atomically by a file of that mode (made so before any byte)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix="." + path.name)
    try:
        os.fchmod(handle, mode)
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise


def save_remotes(remotes: dict[str, str]) -> None:
    lines = ["# hatrac-client remotes: NAME = URL"]
    lines += [f"{name} = {url}" for name, url in sorted(remotes.items())]
    _write_private(config_dir() / "remotes.conf", "\n".join(lines) + "\n", 0o644)


def _credentials_path() -> Path:
    return config_dir() / "credentials.json"


def load_credentials() -> dict[str, dict]:
    try:
        text = _credentials_path().read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    data = json.loads(text)
    return data if isinstance(data, dict) else {}


def credential_for(origin: str) -> Optional[dict]:
    """The stored credential of a server: ``{"cookie": "NAME=VALUE"}`` or ``{"token": T}``."""
    return load_credentials().get(origin)


def store_credential(origin: str, credential: Optional[dict]) -> None:
    """Store (or, with None, forget) the credential of a server; mode 600."""
    credentials = load_credentials()
    if credential is None:
        if origin not in credentials:
            return
        del credentials[origin]
    else:
        credentials[origin] = credential
    _write_private(_credentials_path(), json.dumps(credentials, indent=1) + "\n", 0o600)


_jobs_lock = threading.Lock()  # the threads of a recursive put share the file


def _jobs_path() -> Path:
    return config_dir() / "jobs.json"


def _load_jobs() -> list[dict]:
    try:
        data = json.loads(_jobs_path().read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return []
    return [job for job in data if isinstance(job, dict)] if isinstance(data, list) else []


def remembered_jobs(
    origin: str, path: str, size: Optional[int] = None, sha256: Optional[str] = None
) -> list[str]:
    """URLs of the jobs this client made at ``origin`` + ``path`` (for these bytes)."""
    wanted = {"origin": origin, "path": path, "size": size, "sha256": sha256}
    wanted = {key: value for key, value in wanted.items() if value is not None}
    return [
        str(job["job"])
        for job in _load_jobs()
        if all(job.get(key) == value for key, value in wanted.items()) and job.get("job")
    ]


def remember_job(origin: str, path: str, size: int, sha256: str, job: str) -> None:
    record = {"origin": origin, "path": path, "size": size, "sha256": sha256, "job": job}
    with _jobs_lock:
        jobs = [found for found in _load_jobs() if found.get("job") != job] + [record]
        _write_private(_jobs_path(), json.dumps(jobs, indent=1) + "\n", 0o600)


def forget_job(origin: str, path: str, job: str) -> None:
    with _jobs_lock:
        jobs = _load_jobs()
        kept = [found for found in jobs if (found.get("origin"), found.get("job")) != (origin, job)]
        if len(kept) != len(jobs):
            _write_private(_jobs_path(), json.dumps(kept, indent=1) + "\n", 0o600)
