"""CORS in Chromium: a lab's page on a second loopback origin uses the API.

The service lists the lab's origin in ``cors_allowed_origins``. From a page
served by a tiny static server on another port, JavaScript reads public
objects without credentials, logs in and reads with the cookie, writes with
the cookie and with a Bearer token, runs a 3-chunk upload job and reads
ETag, Content-MD5 and Location. The same page on an unlisted origin is
refused (by the browser after the preflight, or by the CSRF check for
requests that need none) and nothing is stored. The console stays clean in
the allowed cases.
"""

from __future__ import annotations

import base64
import hashlib

import pytest
import requests
from browser import StaticSite, start_service, watch_console

USER = ("lab", "lab pw")
NS = {"Content-Type": "application/x-hatrac-namespace"}
PAGE = ("text/html", b"<!DOCTYPE html><title>lab app</title><p>lab</p>")


@pytest.fixture(scope="module")
def sites(tmp_path_factory):
    lab = StaticSite({"/app.html": PAGE})
    stranger = StaticSite({"/app.html": PAGE})
    server = start_service(
        tmp_path_factory.mktemp("cors"),
        {USER[0]: USER[1]},
        cors_allowed_origins=[lab.origin],
    )
    base = server.url
    assert requests.put(base + "/hatrac/pub", headers=NS, auth=USER).status_code == 201
    assert requests.put(base + "/hatrac/pub;acl/subtree-read/*", auth=USER).status_code == 204
    reply = requests.put(
        base + "/hatrac/pub/hello", data=b"hello", headers={"Content-Type": "text/plain"}, auth=USER
    )
    assert reply.status_code == 201
    assert requests.put(base + "/hatrac/lab", headers=NS, auth=USER).status_code == 201
    token = requests.post(base + "/authn/token", json={}, auth=USER).json()["token"]
    yield {"base": base, "lab": lab, "stranger": stranger, "token": token}
    server.stop()
    lab.stop()
    stranger.stop()


def lab_listing(sites) -> list:
    return requests.get(sites["base"] + "/hatrac/lab", auth=USER).json()


APP = """
async ([base, token, password]) => {
  const seen = {};
  const md5 = r => r.headers.get('Content-MD5');
  // a public object, no credentials
  let r = await fetch(base + '/hatrac/pub/hello');
  seen.public = [r.status, await r.text(), r.headers.get('ETag') !== null, md5(r)];
  // log in: the cookie is set for the service's origin
  r = await fetch(base + '/authn/session', {method: 'POST', credentials: 'include',
      body: new URLSearchParams({username: 'lab', password: password})});
  seen.login = r.status;
  r = await fetch(base + '/authn/session', {credentials: 'include'});
  seen.session = [r.status, (await r.json()).client.id];
  r = await fetch(base + '/hatrac/lab', {credentials: 'include'});
  seen.listing = r.status;
  // a PUT with the cookie
  r = await fetch(base + '/hatrac/lab/cookie.txt', {method: 'PUT', credentials: 'include',
      headers: {'Content-Type': 'text/plain'}, body: 'by cookie'});
  seen.cookie_put = [r.status, r.headers.get('Location'), r.headers.get('ETag') !== null];
  // GET and PUT with a bearer token, no cookie
  const bearer = {Authorization: 'Bearer ' + token};
  r = await fetch(base + '/hatrac/lab/cookie.txt', {headers: bearer});
  seen.bearer_get = [r.status, await r.text(), md5(r), r.headers.get('Content-SHA256') !== null];
  r = await fetch(base + '/hatrac/lab/bearer.txt', {method: 'PUT', credentials: 'omit',
      headers: {...bearer, 'Content-Type': 'text/plain', 'If-None-Match': '*'}, body: 'by token'});
  seen.bearer_put = [r.status, r.headers.get('Location')];
  // a 3-chunk upload job with the cookie, as an XHR-style app does
  const chunks = ['aaaa', 'bbbb', 'cc'];
  r = await fetch(base + '/hatrac/lab/big.bin;upload', {method: 'POST', credentials: 'include',
      headers: {'Content-Type': 'application/json', 'X-Requested-With': 'XMLHttpRequest'},
      body: JSON.stringify({'chunk-length': 4, 'content-length': 10,
                            'content-type': 'application/octet-stream'})});
  const job = new URL(r.headers.get('Location'), base).href;
  seen.job = r.status;
  seen.chunks = [];
  for (let i = 0; i < chunks.length; i++) {
    r = await fetch(job + '/' + i, {method: 'PUT', credentials: 'include', body: chunks[i]});
    seen.chunks.push(r.status);
  }
  r = await fetch(job, {method: 'POST', credentials: 'include'});
  seen.finalize = [r.status, r.headers.get('Location'), r.headers.get('ETag') !== null];
  r = await fetch(new URL(seen.finalize[1], base).href, {credentials: 'include'});
  seen.big = [r.status, await r.text(), md5(r), r.headers.get('Content-Location')];
  r = await fetch(base + '/hatrac/lab/big.bin', {headers: {Range: 'bytes=4-7'},
      credentials: 'include'});
  seen.range = [r.status, r.headers.get('Content-Range'), r.headers.get('X-Request-Id') !== null];
  return seen;
}
"""


def b64md5(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode()


def test_a_listed_origin_uses_the_api(browser_context, sites):
    page = browser_context.new_page()
    errors = watch_console(page)
    page.goto(sites["lab"].origin + "/app.html")
    seen = page.evaluate(APP, [sites["base"], sites["token"], USER[1]])
    assert seen["public"] == [200, "hello", True, b64md5(b"hello")]
    assert seen["login"] == 201
    assert seen["session"] == [200, "lab"]
    assert seen["listing"] == 200
    status, location, has_etag = seen["cookie_put"]
    assert status == 201 and location.startswith("/hatrac/lab/cookie.txt:") and has_etag
    assert seen["bearer_get"] == [200, "by cookie", b64md5(b"by cookie"), True]
    assert seen["bearer_put"][0] == 201
    assert seen["job"] == 201 and seen["chunks"] == [204, 204, 204]
    status, version, has_etag = seen["finalize"]
    assert status == 201 and version.startswith("/hatrac/lab/big.bin:") and has_etag
    assert seen["big"] == [200, "aaaabbbbcc", b64md5(b"aaaabbbbcc"), version]
    assert seen["range"] == [206, "bytes 4-7/10", True]
    assert errors == []
    names = {url.rsplit("/", 1)[1] for url in lab_listing(sites)}
    assert names == {"cookie.txt", "bearer.txt", "big.bin"}


UNLISTED = """
async ([base, token]) => {
  const outcome = {};
  const attempt = async (label, url, options) => {
    try {
      const r = await fetch(url, options);
      outcome[label] = r.status;
    } catch (error) {
      outcome[label] = 'blocked';
    }
  };
  await attempt('put', base + '/hatrac/lab/evil.txt', {method: 'PUT', credentials: 'include',
      headers: {'Content-Type': 'text/plain'}, body: 'evil'});
  await attempt('bearer', base + '/hatrac/lab/evil2.txt', {method: 'PUT',
      headers: {Authorization: 'Bearer ' + token}, body: 'evil'});
  // needs no preflight: the browser sends it, the CSRF check refuses it
  await attempt('simple_post', base + '/hatrac/lab/evil3.bin;upload', {method: 'POST',
      credentials: 'include', headers: {'Content-Type': 'text/plain'},
      body: JSON.stringify({'chunk-length': 4, 'content-length': 4})});
  await attempt('read', base + '/hatrac/lab', {credentials: 'include'});
  return outcome;
}
"""


def test_an_unlisted_origin_is_refused_and_nothing_is_stored(browser_context, sites):
    before = lab_listing(sites)
    base = sites["base"]
    # the cookie is there (same site: another port of the same host)
    login = browser_context.request.post(
        base + "/authn/session", form={"username": USER[0], "password": USER[1]}
    )
    assert login.status == 201
    page = browser_context.new_page()
    page.goto(sites["stranger"].origin + "/app.html")
    outcome = page.evaluate(UNLISTED, [base, sites["token"]])
    assert outcome == {
        "put": "blocked",
        "bearer": "blocked",
        "simple_post": "blocked",
        "read": "blocked",
    }
    assert lab_listing(sites) == before
    uploads = requests.get(base + "/hatrac/lab/evil3.bin;upload", auth=USER)
    assert uploads.status_code in (404, 409) or uploads.json() == []
