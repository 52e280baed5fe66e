"""docs/openapi.yaml: a valid OpenAPI 3.1 document that agrees with the live service.

The document is checked by openapi-spec-validator; then a real gunicorn
server answers one request of (nearly) every operation, and each answer
must be one the document lists for that path and method: its status, its
media type, the headers it marks required, and a JSON body that validates
against the operation's schema.
"""

from __future__ import annotations

import io
import json
import re
import sys
from pathlib import Path

import jsonschema
import pytest
import requests
import yaml
from openapi_spec_validator import validate
from servers import GunicornServer

from hatrac.cli import main

SPEC_PATH = Path(__file__).resolve().parents[2] / "docs" / "openapi.yaml"
METHODS = ("get", "head", "put", "post", "delete", "options", "patch")
# operations no request of this test reaches, and why
NOT_EXERCISED = {
    ("put", "/hatrac/{name}:{version}"): "answered 405 here; 201 needs version_import_roles",
}
# what each template parameter may match in a raw request path
APP_ORIGIN = "https://app.example.org"
SEGMENT = {"name": r"[^;:]+", "version": r"[^;:/]+"}


@pytest.fixture(scope="module")
def spec() -> dict:
    return yaml.safe_load(SPEC_PATH.read_text())


def test_the_document_is_valid_openapi_3_1(spec):
    assert spec["openapi"].startswith("3.1")
    validate(spec)  # raises on any violation of the OpenAPI 3.1 schema
    for needed in (";acl", ";metadata", ";versions", ";upload", ":{version}"):
        assert any(needed in path for path in spec["paths"]), needed


def resolve(node, spec):
    """``node`` with every local ``$ref`` replaced by what it points to."""
    if isinstance(node, dict):
        if "$ref" in node:
            target = spec
            for part in node["$ref"].lstrip("#/").split("/"):
                target = target[part]
            return resolve(target, spec)
        return {key: resolve(value, spec) for key, value in node.items()}
    if isinstance(node, list):
        return [resolve(item, spec) for item in node]
    return node


class Checker:
    """Matches live answers to the document's operations."""

    def __init__(self, spec: dict):
        self.spec = spec
        self.templates = []
        for template in spec["paths"]:
            regex = re.escape(template)
            for parameter in re.findall(r"\{(\w+)\}", template):
                regex = regex.replace(
                    re.escape("{" + parameter + "}"), SEGMENT.get(parameter, r"[^/;:]+")
                )
            self.templates.append((template, re.compile(regex + "$")))
        self.seen: set[tuple[str, str]] = set()
        self.problems: list[str] = []

    def template_of(self, path: str) -> str:
        matches = [template for template, regex in self.templates if regex.match(path)]
        assert len(matches) == 1, f"{path} matches {matches or 'no path'} of the document"
        return matches[0]

    def check(self, response: requests.Response) -> requests.Response:
        method = response.request.method.lower()
        path = response.request.path_url.split("?", 1)[0]
        template = self.template_of(path)
        where = f"{method.upper()} {path} ({template}) -> {response.status_code}"
        operation = self.spec["paths"][template].get(method)
        if operation is None:
            self.problems.append(f"{where}: method not in the document")
            return response
        self.seen.add((method, template))
        answer = operation["responses"].get(str(response.status_code))
        if answer is None:
            self.problems.append(f"{where}: status not listed")
            return response
        answer = resolve(answer, self.spec)
        for name, header in (answer.get("headers") or {}).items():
            if header.get("required") and name not in response.headers:
                self.problems.append(f"{where}: required header {name} missing")
        has_body = method != "head" and response.status_code not in (204, 304) and response.content
        if not has_body:
            return response
        media = response.headers.get("Content-Type", "").split(";")[0].strip()
        content = answer.get("content") or {}
        if media not in content and "*/*" not in content:
            self.problems.append(f"{where}: media type {media} not listed ({sorted(content)})")
            return response
        schema = (content.get(media) or content.get("*/*") or {}).get("schema")
        if schema and media in ("application/json", "application/problem+json"):
            try:
                jsonschema.Draft202012Validator(schema).validate(json.loads(response.content))
            except jsonschema.ValidationError as error:
                self.problems.append(f"{where}: body does not match its schema: {error.message}")
        return response


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    directory = tmp_path_factory.mktemp("openapi")
    config = {
        "data_directory": str(directory / "data"),
        "root_acls": {"owner": ["admin"]},
        "cors_allowed_origins": [APP_ORIGIN],
    }
    config_path = directory / "setup.json"
    config_path.write_text(json.dumps(config))
    for user in ("admin", "bob"):
        stdin, sys.stdin = sys.stdin, io.StringIO(f"{user}-pw\n")
        try:
            assert (
                main(["--config", str(config_path), "user", "add", user, "--password-stdin"]) == 0
            )
        finally:
            sys.stdin = stdin
    server = GunicornServer(config, directory, workers=1, threads=4).start()
    yield server
    server.stop()


def test_live_answers_agree_with_the_document(spec, server):
    checker = Checker(spec)
    base = server.url
    admin = requests.Session()
    admin.auth = ("admin", "admin-pw")
    anonymous = requests.Session()
    ns = {"Content-Type": "application/x-hatrac-namespace"}

    def call(session, method, path, **kwargs):
        kwargs.setdefault("allow_redirects", False)
        return checker.check(session.request(method, base + path, timeout=30, **kwargs))

    # namespaces
    assert call(admin, "GET", "/hatrac/").status_code == 200
    call(admin, "GET", "/hatrac/", headers={"Accept": "text/uri-list"})
    call(admin, "HEAD", "/hatrac/")
    assert call(anonymous, "GET", "/hatrac/").status_code == 401
    assert call(admin, "PUT", "/hatrac/", headers=ns).status_code == 409
    assert call(admin, "PUT", "/hatrac/lab", headers=ns).status_code == 201
    listing = call(admin, "GET", "/hatrac/lab")
    call(admin, "GET", "/hatrac/lab", headers={"If-None-Match": listing.headers["ETag"]})
    call(admin, "HEAD", "/hatrac/lab")
    assert call(admin, "PUT", "/hatrac/lab", headers=ns).status_code == 409

    # objects and versions
    put = call(
        admin, "PUT", "/hatrac/lab/obj", data=b"a,b\n1,2\n", headers={"Content-Type": "text/csv"}
    )
    assert put.status_code == 201
    version = put.text.strip()
    call(admin, "GET", "/hatrac/lab/obj")
    assert call(admin, "GET", "/hatrac/lab/obj", headers={"Range": "bytes=0-2"}).status_code == 206
    call(admin, "GET", "/hatrac/lab/obj", headers={"Range": "bytes=100-"})
    call(admin, "GET", version)
    call(admin, "HEAD", version)
    call(admin, "HEAD", "/hatrac/lab/obj")
    call(admin, "GET", "/hatrac/lab/obj;versions")
    call(admin, "GET", "/hatrac/lab/obj", headers={"Accept": "application/json"})
    call(
        admin,
        "PUT",
        "/hatrac/lab/obj",
        data=b"x",
        headers={"Content-MD5": "AAAAAAAAAAAAAAAAAAAAAA=="},
    )
    call(admin, "GET", "/hatrac/lab/missing", headers={"Accept": "application/json"})
    call(admin, "GET", "/hatrac/lab/missing")
    call(admin, "PUT", version, data=b"immutable")
    second = call(admin, "PUT", "/hatrac/lab/obj", data=b"second").text.strip()
    assert call(admin, "DELETE", second).status_code == 204

    # ACLs of objects, namespaces and versions
    for resource in ("/hatrac/lab", "/hatrac/lab/obj", version):
        call(admin, "GET", resource + ";acl")
        call(admin, "GET", resource + ";acl/owner")
        assert call(admin, "PUT", resource + ";acl/read/%2A").status_code == 204
        assert call(admin, "GET", resource + ";acl/read/%2A").status_code == 200
        assert call(admin, "DELETE", resource + ";acl/read/%2A").status_code == 204
        call(admin, "GET", resource + ";acl/read/%2A")
        assert call(admin, "PUT", resource + ";acl/read", json=["bob"]).status_code == 204
        call(admin, "PUT", resource + ";acl/read", json="bob")
        assert call(admin, "DELETE", resource + ";acl/read").status_code == 204
    call(admin, "PUT", "/hatrac/lab;acl/owner", json=[])

    # version metadata
    call(admin, "GET", "/hatrac/lab/obj;metadata")
    call(admin, "GET", version + ";metadata")
    call(admin, "GET", version + ";metadata/content-type")
    call(admin, "GET", version + ";metadata/content-disposition")
    disposition = "filename*=UTF-8''data.csv"
    assert call(admin, "PUT", version + ";metadata/content-disposition", data=disposition).ok
    assert call(admin, "DELETE", version + ";metadata/content-disposition").status_code == 204
    call(admin, "PUT", version + ";metadata/content-md5", data="AAAAAAAAAAAAAAAAAAAAAA==")

    # upload jobs
    description = {"chunk-length": 4, "content-length": 6, "content-type": "text/plain"}
    job = call(admin, "POST", "/hatrac/lab/big;upload", json=description).text.strip()
    call(admin, "GET", "/hatrac/lab/big;upload")
    assert call(admin, "PUT", job + "/0", data=b"1234").status_code == 204
    status = call(admin, "GET", job).json()
    assert status["chunks-received"] == [0]
    call(admin, "POST", job)  # chunk 1 missing: 409
    call(admin, "PUT", job + "/5", data=b"12")
    assert call(admin, "PUT", job + "/1", data=b"56").status_code == 204
    assert call(admin, "POST", job).status_code == 201
    other = call(admin, "POST", "/hatrac/lab/big;upload", json=description).text.strip()
    assert call(admin, "DELETE", other).status_code == 204
    call(admin, "GET", other)
    call(admin, "POST", "/hatrac/lab/bad;upload", json={"chunk-length": 0})

    # rename: the old versions stay listed and forward to the new ones
    rename = {"command": "rename_from", "source_name": "/lab/big"}
    moved = call(admin, "POST", "/hatrac/lab/moved", json=rename)
    assert moved.status_code == 201
    assert call(admin, "POST", "/hatrac/lab/moved", json=rename).status_code == 204
    old = call(admin, "GET", "/hatrac/lab/big;versions")
    assert len(old.json()) == 1
    assert (
        call(admin, "GET", "/hatrac/lab/big").headers["Location"].startswith("/hatrac/lab/moved:")
    )

    # deletes, and a deleted name stays deleted
    assert call(admin, "DELETE", "/hatrac/lab/moved").status_code == 204
    call(admin, "PUT", "/hatrac/lab/moved", data=b"again")

    # sessions and tokens
    login = requests.Session()
    call(login, "POST", "/authn/session", data={"username": "bob", "password": "wrong"})
    assert (
        call(
            login, "POST", "/authn/session", data={"username": "bob", "password": "bob-pw"}
        ).status_code
        == 201
    )
    assert call(login, "GET", "/authn/session").status_code == 200
    assert call(login, "PUT", "/authn/session").status_code == 200
    issued = call(login, "POST", "/authn/token", json={"expires_in": 600})
    call(login, "GET", "/authn/token")
    if issued.status_code == 201:
        call(login, "DELETE", f"/authn/token/{issued.json()['id']}")
    call(login, "DELETE", "/authn/token/999999")
    assert call(login, "DELETE", "/authn/session").status_code == 204
    call(login, "GET", "/authn/session")
    call(login, "DELETE", "/authn/session")
    call(anonymous, "GET", "/authn/token")

    # CORS preflights, a refused one, and OPTIONS without a preflight
    preflight = {"Origin": APP_ORIGIN, "Access-Control-Request-Method": "PUT"}
    for path in ("/hatrac/", "/hatrac/lab/obj;acl/read", "/authn/session"):
        assert call(anonymous, "OPTIONS", path, headers=preflight).status_code == 204
    refused = {"Origin": "https://elsewhere.example", "Access-Control-Request-Method": "PUT"}
    assert call(anonymous, "OPTIONS", "/hatrac/lab", headers=refused).status_code == 403
    assert call(anonymous, "OPTIONS", version).status_code == 200

    # the web interface: pages on the API's URLs when a browser asks, and its own resources
    page = {"Accept": "text/html"}
    assert (
        call(admin, "GET", "/hatrac/lab", headers=page)
        .headers["Content-Type"]
        .startswith("text/html")
    )
    call(admin, "GET", "/hatrac/lab/obj;versions", headers=page)
    call(anonymous, "GET", "/hatrac/", headers=page)
    call(admin, "GET", "/hatrac/;web/account")
    call(anonymous, "GET", "/hatrac/;web/account")
    call(admin, "GET", "/hatrac/;web/accounts")
    call(anonymous, "GET", "/hatrac/;web/accounts")
    call(anonymous, "GET", "/hatrac/;web/static/hatrac.css")
    call(anonymous, "GET", "/hatrac/;web/static/app.js")
    call(anonymous, "GET", "/hatrac/;web/static/absent.js")

    # the browser's login and logout pages, and webauthn2's /authn/preauth
    assert call(anonymous, "GET", "/authn/login?referrer=%2Fhatrac%2Flab").status_code == 200
    call(anonymous, "HEAD", "/authn/login")
    call(anonymous, "GET", "/authn/login?referrer=https%3A%2F%2Felsewhere.example%2F")
    call(anonymous, "GET", "/authn/logout")
    call(anonymous, "HEAD", "/authn/logout")
    assert call(anonymous, "GET", "/authn/preauth?referrer=%2Fhatrac%2F").status_code == 200
    call(anonymous, "HEAD", "/authn/preauth")
    call(anonymous, "GET", "/authn/preauth?do_redirect=true")
    call(anonymous, "GET", "/authn/static/login.css")
    call(anonymous, "GET", "/authn/static/login.js")
    call(anonymous, "HEAD", "/authn/static/login.js")
    call(anonymous, "GET", "/authn/static/absent.js")

    # operational endpoints
    call(anonymous, "GET", "/hatrac-health/live")
    call(anonymous, "GET", "/hatrac-health/ready")
    call(anonymous, "GET", "/hatrac-health/metrics")

    # the namespace, its subtree with it
    assert call(admin, "DELETE", "/hatrac/lab").status_code == 204
    call(admin, "DELETE", "/hatrac/lab")

    assert not checker.problems, "\n".join(checker.problems)
    every = {
        (method, path)
        for path, item in spec["paths"].items()
        for method in METHODS
        if method in item
    }
    # the preflight is one operation shared by every path (a YAML alias): a few suffice
    every = {(method, path) for method, path in every if method != "options"}
    assert len({path for method, path in checker.seen if method == "options"}) >= 4
    missing = every - checker.seen - set(NOT_EXERCISED)
    assert not missing, f"operations of the document no request reached: {sorted(missing)}"
