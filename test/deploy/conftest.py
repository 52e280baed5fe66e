"""Fixtures of the deployment tests: a live Apache + mod_wsgi + Hatrac per module.

``apache`` starts one Apache instance per test module and backend (SQLite and
PostgreSQL); ``apache_client`` speaks the protocol through it, sending users
as HTTP Basic credentials that Apache checks (so REMOTE_USER comes from
Apache) and ad-hoc groups in a test-only header that the test Apache config
copies into HATRAC_GROUPS.
"""

from __future__ import annotations

import os
import uuid
from typing import Any, Optional

import pytest
from clients import LiveProtocolClient, Reply

from deploy.apache import ApacheServer, apache_unavailable

APACHE_ROOT_ACLS = {"owner": ["admin"], "create": ["*"], "read": ["*"]}
USERS = {
    "alice": "alice-pw",
    "bob": "bob-pw",
    "carol": "carol-pw",
    "dave": "dave-pw",
    "admin": "admin-pw",
}
GROUPS = {"dave": ["lab", "https://example.org/groups/lab"]}


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def apache(request):
    reason = apache_unavailable()
    if reason:
        pytest.skip(reason)
    config: dict[str, Any] = {
        "root_acls": APACHE_ROOT_ACLS,
        "trusted_remote_user": True,
        "trusted_groups_environ": "HATRAC_GROUPS",
    }
    if request.param == "postgres":
        postgres = request.getfixturevalue("postgres")
        config["database_dsn"] = postgres.new_schema(f"apache_{os.getpid()}_{uuid.uuid4().hex[:8]}")
    server = ApacheServer(config, USERS, GROUPS)
    try:
        server.start()
    except Exception:
        server.stop()
        raise
    yield server
    server.stop()


class ApacheProtocolClient(LiveProtocolClient):
    """Users as Basic credentials checked by Apache; groups in the test-only header."""

    def __init__(self, server: ApacheServer):
        super().__init__(server.url)
        self.server = server

    def request(
        self,
        method: str,
        path: str,
        user: Optional[str] = None,
        groups: tuple = (),
        headers: Optional[dict] = None,
        data: Any = None,
        json: Any = None,
    ) -> Reply:
        kwargs: dict = {"headers": dict(headers or {}), "data": data, "allow_redirects": False}
        if json is not None:
            kwargs["json"] = json
        if user is not None:
            if user not in self.server.users:
                self.server.add_user(user, f"{user}-pw")
            kwargs["auth"] = (user, self.server.users[user])
        if groups:
            kwargs["headers"]["X-Test-Groups"] = ";".join(groups)
        response = self.session.request(method, self.base_url + path, timeout=60, **kwargs)
        return Reply(response.status_code, response.headers, response.content)


@pytest.fixture
def apache_client(apache) -> ApacheProtocolClient:
    return ApacheProtocolClient(apache)
