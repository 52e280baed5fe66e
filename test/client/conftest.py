"""Fixtures of the client tests: a real gunicorn per backend pair (``live``),
and ``hc``, the client logged in as alice (see :mod:`clienthelpers`)."""

from __future__ import annotations

import sys
import uuid
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from clienthelpers import BACKENDS, Runner, logged_in, start_live  # noqa: E402


@pytest.fixture(scope="module", params=BACKENDS, ids=["-".join(p) for p in BACKENDS])
def live(request, tmp_path_factory):
    """The server of this module, once per backend pair."""
    started = start_live(request, tmp_path_factory, request.param)
    yield started
    started.server.stop()
    started.accounts.directory.close()


@pytest.fixture
def hc(live, tmp_path, capsys, monkeypatch) -> Runner:
    """The client, logged in as alice on ``live`` as remote ``t``."""
    monkeypatch.delenv("HATRAC_TOKEN", raising=False)
    return logged_in(live, tmp_path / "config", capsys, monkeypatch)


@pytest.fixture
def ns(hc) -> str:
    """A fresh namespace of alice's, as ``t:/NAME``."""
    name = f"t:/c{uuid.uuid4().hex[:10]}"
    assert hc("mkdir", name)[0] == 0
    return name
