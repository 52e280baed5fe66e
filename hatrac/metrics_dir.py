"""Prometheus multiprocess mode under gunicorn, set up without the admin's help.

With ``metrics_enabled``, each gunicorn worker counts its own requests; a
scrape adds up all of them only when ``PROMETHEUS_MULTIPROC_DIR`` names a
directory, shared by the workers, that is empty when the service starts.
:func:`prepare` (run by :mod:`hatrac.gunicorn_conf` in the master, before
any worker exists) makes a private directory and exports the variable when
it is unset, or empties the directory an admin chose (its ``*.db`` files
only); :func:`cleanup` removes the private directory when gunicorn exits.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Optional

VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
_created: Optional[str] = None


def metrics_enabled() -> bool:
    """Whether the configuration the service will load turns metrics on."""
    from .config import load_config

    try:
        return bool(load_config().metrics_enabled)
    except Exception:  # the service itself reports a bad config, in one line, at load
        return False


def prepare(enabled: Optional[bool] = None) -> Optional[str]:
    """Make sure the variable names an empty directory; returns it (None: metrics off)."""
    global _created
    if not (metrics_enabled() if enabled is None else enabled):
        return None
    chosen = os.environ.get(VARIABLE)
    if chosen:
        directory = Path(chosen)
        directory.mkdir(parents=True, exist_ok=True)
        for stale in directory.glob("*.db"):  # counts of an earlier run
            stale.unlink()
        return chosen
    _created = tempfile.mkdtemp(prefix="hatrac-metrics-")
    os.environ[VARIABLE] = _created
    return _created


def cleanup() -> None:
    """Remove the private directory :func:`prepare` made, if any."""
    global _created
    if _created is not None:
        shutil.rmtree(_created, ignore_errors=True)
        if os.environ.get(VARIABLE) == _created:
            del os.environ[VARIABLE]
        _created = None
