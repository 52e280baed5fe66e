"""The protocol test suites of test/rest, replayed through Apache + mod_wsgi.

Every test of those modules that needs only a protocol ``client`` (and the
``ns`` namespace it makes) runs again here, against the live Apache of
:mod:`deploy.conftest`: users become Basic credentials checked by
mod_authn_file, so every identity the service sees came from Apache. Tests
that build their own app (special configs) or reach into its storage stay
with the in-process suite.
"""

from __future__ import annotations

import importlib
import inspect
import sys
from pathlib import Path

import pytest

SUITES = [
    "rest.test_namespaces",
    "rest.test_objects",
    "rest.test_acls",
    "rest.test_errors",
    "uploads.test_jobs",
]
# the upload suite imports its helpers module from its own directory
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "uploads"))
USABLE_FIXTURES = {"client", "ns"}
# thousands of sequential requests that measure the backend, not the web server;
# they run in-process and over gunicorn (test/uploads)
NOT_REPLAYED = {"uploads.test_jobs.test_many_small_chunks"}


def _parametrized_arguments(function) -> set:
    names: set = set()
    for mark in getattr(function, "pytestmark", []):
        if mark.name == "parametrize":
            names.update(a.strip() for a in str(mark.args[0]).split(","))
    return names


def _replay() -> dict:
    collected = {}
    for suite in SUITES:
        try:
            module = importlib.import_module(suite)
        except ImportError:  # a suite renamed or removed elsewhere: nothing to replay
            continue
        short = suite.split(".")[-1][len("test_") :]
        for name, function in vars(module).items():
            if not name.startswith("test_") or not inspect.isfunction(function):
                continue
            if f"{suite}.{name}" in NOT_REPLAYED:
                continue
            wanted = set(inspect.signature(function).parameters)
            if wanted - _parametrized_arguments(function) <= USABLE_FIXTURES:
                collected[f"test_{short}__{name[len('test_') :]}"] = function
    return collected


globals().update(_replay())


@pytest.fixture
def client(apache_client):
    """The protocol client of the replayed tests: HTTP through Apache."""
    return apache_client
