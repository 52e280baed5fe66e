"""Protocol clients for tests: one interface over the Flask test client or live HTTP.

Tests call ``client.get(path, user=..., headers=..., data=...)`` and get a
:class:`Reply`. :class:`FlaskProtocolClient` passes ``user`` as REMOTE_USER
(the trusted front-end provider); :class:`LiveProtocolClient` talks real HTTP
to a server, mapping ``user`` to credentials it was given.
"""

from __future__ import annotations

import json as jsonlib
from dataclasses import dataclass
from typing import Any, Callable, Optional

import requests


@dataclass
class Reply:
    status: int
    headers: Any
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    def json(self) -> Any:
        return jsonlib.loads(self.body)


class ProtocolClient:
    def request(self, method: str, path: str, **kwargs) -> Reply:
        raise NotImplementedError

    def get(self, path: str, **kwargs) -> Reply:
        return self.request("GET", path, **kwargs)

    def head(self, path: str, **kwargs) -> Reply:
        return self.request("HEAD", path, **kwargs)

    def put(self, path: str, **kwargs) -> Reply:
        return self.request("PUT", path, **kwargs)

    def post(self, path: str, **kwargs) -> Reply:
        return self.request("POST", path, **kwargs)

    def delete(self, path: str, **kwargs) -> Reply:
        return self.request("DELETE", path, **kwargs)

    def mkdir(self, path: str, user: Optional[str] = "alice", parents: bool = False) -> Reply:
        suffix = "?parents=true" if parents else ""
        return self.put(
            path + suffix,
            user=user,
            headers={"Content-Type": "application/x-hatrac-namespace"},
        )


class FlaskProtocolClient(ProtocolClient):
    def __init__(self, app, groups_variable: str = "HATRAC_GROUPS"):
        self.app = app
        self.test_client = app.test_client()
        self.groups_variable = groups_variable

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
        environ = {}
        if user is not None:
            environ["REMOTE_USER"] = user
        if groups:
            environ[self.groups_variable] = ";".join(groups)
        headers = dict(headers or {})
        if json is not None:
            data = jsonlib.dumps(json)
            headers.setdefault("Content-Type", "application/json")
        response = self.test_client.open(
            path, method=method, headers=headers, data=data, environ_base=environ
        )
        body = response.get_data()
        response.close()
        return Reply(response.status_code, response.headers, body)


class LiveProtocolClient(ProtocolClient):
    """Real HTTP; ``credentials`` maps a user name to a function adding its credentials."""

    def __init__(self, base_url: str, credentials: Optional[dict[str, Callable]] = None):
        self.base_url = base_url.rstrip("/")
        self.session = requests.Session()
        self.credentials = credentials or {}

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
            self.credentials[user](kwargs)
        response = self.session.request(method, self.base_url + path, timeout=60, **kwargs)
        return Reply(response.status_code, response.headers, response.content)
