"""The web interface's server side: pages by content negotiation, escaping, paging,
filtering, the CSP, the login redirect and the switch that turns it all off.

These run on the Flask test client; test_web_browser.py drives the same pages
in Chromium.
"""

from __future__ import annotations

import re
from urllib.parse import quote

import pytest
from clients import FlaskProtocolClient

import hatrac

NS = {"Content-Type": "application/x-hatrac-namespace"}
HTML = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}  # what a browser sends


def rows(page: str) -> list[str]:
    """The data-name of every child row of a namespace page, in order."""
    return re.findall(r'<tr data-name="([^"]*)"', page)


def test_namespace_page_by_negotiation_and_api_listings_unchanged(client, ns):
    client.put(ns + "/sub", user="alice", headers=NS)
    plain = {"Content-Type": "text/plain"}
    client.put(ns + "/file.txt", user="alice", data=b"hello", headers=plain)
    page = client.get(ns, user="alice", headers=HTML)
    assert page.status == 200 and page.headers["Content-Type"].startswith("text/html")
    csp = page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "default-src 'none'" in csp and "unsafe" not in csp
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    assert "Accept" in page.headers["Vary"]
    text = page.text
    assert rows(text) == [ns[len("/hatrac") :] + "/file.txt", ns[len("/hatrac") :] + "/sub"]
    assert f'href="{ns}/file.txt;versions"' in text and f'href="{ns}/sub"' in text
    assert "5 B" in text and "text/plain" in text
    # no inline script, no inline style: every script is an external module
    assert re.findall(r"<script[^>]*>", text) == [
        '<script type="module" src="/hatrac/;web/static/app.js">'
    ]
    assert "style=" not in text and "<style" not in text
    # breadcrumbs to the root and the namespace
    assert '<a href="/hatrac/">hatrac</a>' in text
    # API clients still get their listings
    assert client.get(ns, user="alice").json() == [ns + "/file.txt", ns + "/sub"]
    uris = client.get(ns, user="alice", headers={"Accept": "text/uri-list"})
    assert uris.text == f"{ns}/file.txt\n{ns}/sub\n"
    # a browser following a link to an object gets the bytes, not a page
    assert client.get(ns + "/file.txt", user="alice", headers=HTML).body == b"hello"


def test_hostile_names_are_escaped_and_linked(client, ns):
    sent = "%3Cscript%3Ealert(1)%3C%2Fscript%3E%22%26"
    hostile = "%3Cscript%3Ealert%281%29%3C%2Fscript%3E%22%26"  # its canonical form
    assert client.put(ns + "/" + sent, user="alice", data=b"x").status == 201
    assert client.put(ns + "/a%2Fb", user="alice", headers=NS).status == 201
    assert client.put(ns + "/caf%C3%A9", user="alice", data=b"y").status == 201
    text = client.get(ns, user="alice", headers=HTML).text
    assert "<script>alert" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;&#34;&amp;" in text
    assert f'href="{ns}/{hostile};versions"' in text
    assert f'href="{ns}/a%2Fb"' in text and ">a/b</a>" in text
    assert ">café</a>" in text
    page = client.get(f"{ns}/{hostile};versions", user="alice", headers=HTML)
    assert page.status == 200 and "<script>alert" not in page.text
    assert f'href="{ns}/{hostile}:' in page.text
    inner = client.get(ns + "/a%2Fb", user="alice", headers=HTML).text
    assert '<a href="' + ns + '/a%2Fb">a/b</a>' in inner


def test_paging_and_filter(make_config):
    app = hatrac.create_app(make_config(web_page_size=3))
    client = FlaskProtocolClient(app)
    client.mkdir("/hatrac/p", user="alice")
    names = [f"item{i:02d}" for i in range(8)] + ["other_1", "other%251"]
    for name in names:
        assert client.put("/hatrac/p/" + name, user="alice", data=b"z").status == 201
    first = client.get("/hatrac/p", user="alice", headers=HTML).text
    assert rows(first) == ["/p/item00", "/p/item01", "/p/item02"]
    next_url = re.search(r'<a href="([^"]*)" rel="next">', first).group(1)
    assert next_url == "?after=%2Fp%2Fitem02"
    second = client.get("/hatrac/p" + next_url, user="alice", headers=HTML).text
    assert rows(second) == ["/p/item03", "/p/item04", "/p/item05"]
    last = client.get("/hatrac/p?after=%2Fp%2Fitem07", user="alice", headers=HTML).text
    assert rows(last) == ["/p/other%251", "/p/other_1"] and 'rel="next"' not in last
    # the filter matches the decoded name; LIKE wildcards in it are literal
    found = client.get("/hatrac/p?filter=ITEM0&limit=100", user="alice", headers=HTML).text
    assert rows(found) == [f"/p/item{i:02d}" for i in range(8)]
    assert rows(client.get("/hatrac/p?filter=r_", user="alice", headers=HTML).text) == [
        "/p/other_1"
    ]
    assert rows(client.get("/hatrac/p?filter=r%25", user="alice", headers=HTML).text) == [
        "/p/other%251"
    ]
    nothing = client.get("/hatrac/p?filter=zzz", user="alice", headers=HTML).text
    assert rows(nothing) == [] and "Nothing matches" in nothing
    bad = client.get("/hatrac/p?limit=0", user="alice", headers=HTML)
    assert bad.status == 400 and "limit must be" in bad.text
    app.extensions["hatrac"].close()


def pages_of(client, url: str) -> list[list[str]]:
    """The children of every page of a listing, following its Next page links."""
    found = []
    while url is not None:
        text = client.get(url, user="alice", headers=HTML).text
        found.append([name.rsplit("/", 1)[1] for name in rows(text)])
        link = re.search(r'<a href="([^"]*)" rel="next">', text)
        url = url.split("?")[0] + link.group(1).replace("&amp;", "&") if link else None
    return found


def test_sorting_the_whole_namespace_with_paging(client, ns):
    client.put(ns + "/dir", user="alice", headers=NS)
    for name, body, kind in (
        ("c", b"cc", "application/json"),
        ("a", b"aaa", "text/plain"),
        ("b", b"b", "application/octet-stream"),
    ):
        reply = client.put(f"{ns}/{name}", user="alice", data=body, headers={"Content-Type": kind})
        assert reply.status == 201
    listing = ns + "?limit=2"
    assert pages_of(client, listing) == [["a", "b"], ["c", "dir"]]
    # every order runs over the whole namespace, two children a page
    assert pages_of(client, listing + "&order=desc") == [["dir", "c"], ["b", "a"]]
    assert pages_of(client, listing + "&sort=size") == [["dir", "b"], ["c", "a"]]
    assert pages_of(client, listing + "&sort=size&order=desc") == [["a", "c"], ["b", "dir"]]
    assert pages_of(client, listing + "&sort=kind") == [["dir", "a"], ["b", "c"]]
    assert pages_of(client, listing + "&sort=kind&order=desc") == [["c", "b"], ["a", "dir"]]
    assert pages_of(client, listing + "&sort=type") == [["dir", "c"], ["b", "a"]]
    assert pages_of(client, listing + "&sort=modified") == [["dir", "c"], ["a", "b"]]
    assert pages_of(client, listing + "&sort=modified&order=desc") == [["b", "a"], ["c", "dir"]]
    # the headers: the current order marked, its link the other direction; a
    # page past the first links back to the first page of the same order
    text = client.get(listing + "&sort=size&offset=2", user="alice", headers=HTML).text
    assert '<th scope="col" data-sort="size" class="sortable num" aria-sort="ascending">' in text
    assert f'<a href="{ns}?limit=2&amp;sort=size&amp;order=desc">Size</a>' in text
    assert f'<a href="{ns}?limit=2&amp;sort=name">Name</a>' in text
    assert f'<a href="{ns}?limit=2&amp;sort=size">First page</a>' in text
    assert '<input type="hidden" name="sort" value="size">' in text  # the filter keeps it
    # with a filter, in another order
    filtered = pages_of(client, ns + "?filter=i&sort=size&order=desc")
    assert filtered == [["dir"]]
    for query, reason in (
        ("sort=owner", "sort must be one of name, kind, size, type, modified"),
        ("order=up", "order must be asc or desc"),
        ("sort=size&offset=-1", "offset must be a whole number"),
        # digits that int() refuses, or too many of them for it, were a 500
        ("sort=size&offset=%C2%B2", "offset must be a whole number"),
        ("limit=%C2%B2", "limit must be a whole number"),
        ("limit=" + "9" * 5000, "limit must be a whole number"),
        ("sort=size&offset=" + "9" * 30, "offset must be a whole number"),
        ("offset=2", "offset pages the orders other than by name"),
        ("sort=size&after=a", "after pages the order by name"),
    ):
        bad = client.get(f"{ns}?{query}", user="alice", headers=HTML)
        assert bad.status == 400 and reason in bad.text, query


def test_object_page_versions_and_an_object_without_version(client, ns):
    first = client.put(ns + "/obj", user="alice", data=b"one", headers={"Content-Type": "a/b"})
    second = client.put(ns + "/obj", user="alice", data=b"two!")
    v1 = first.headers["Location"].rsplit(":", 1)[1]
    v2 = second.headers["Location"].rsplit(":", 1)[1]
    page = client.get(ns + "/obj;versions", user="alice", headers=HTML)
    assert page.status == 200
    text = page.text
    assert text.index(v2) < text.index(v1)  # newest first
    assert "Current version" in text
    assert client.head(ns + "/obj", user="alice").headers["Content-MD5"] in text
    assert 'data-owner="1"' in text
    # API clients keep the uri-list/JSON listing of ;versions
    assert client.get(ns + "/obj;versions", user="alice").json()[0].endswith(v2)
    # an object whose versions were all deleted (or, made by an upload job, has
    # none yet) is listed and has a page all the same
    only = client.put(ns + "/emptied", user="alice", data=b"gone").headers["Location"]
    assert client.delete(only, user="alice").status == 204
    listing = client.get(ns, user="alice", headers=HTML)
    assert listing.status == 200 and "no version yet" in listing.text
    pending = client.get(ns + "/emptied;versions", user="alice", headers=HTML)
    assert pending.status == 200 and "no version yet" in pending.text
    assert "download>Download current" not in pending.text


def test_rights_decide_the_controls(client, ns):
    client.put(ns + ";acl/read/bob", user="alice")
    page = client.get(ns, user="bob", headers=HTML).text
    assert 'data-owner="0"' in page and 'id="pick-files"' not in page
    own = client.get(ns, user="alice", headers=HTML).text
    assert 'data-owner="1"' in own and 'id="pick-files"' in own and 'id="delete-here"' in own


def test_errors_as_pages_and_anonymous_to_login(client, ns):
    missing = client.get(ns + "/absent", user="alice", headers=HTML)
    assert missing.status == 404
    assert "does not exist" in missing.text and missing.headers["X-Request-Id"] in missing.text
    assert "Content-Security-Policy" in missing.headers
    client.put(ns + "/private", user="alice", headers=NS)
    client.delete("/hatrac" + ";acl/read/*", user="admin")
    denied = client.get(ns + "/private", user="bob", headers=HTML)
    assert denied.status == 403 and "not granted" in denied.text
    anonymous = client.get(ns + "/private?filter=x", headers=HTML)
    assert anonymous.status == 303
    wanted = quote(ns + "/private?filter=x", safe="")
    assert anonymous.headers["Location"] == "/authn/login?referrer=" + wanted
    # API clients keep their 401
    assert client.get(ns + "/private").status == 401


def test_static_files_and_account_names(client, ns):
    script = client.get("/hatrac/;web/static/app.js")
    assert script.status == 200 and "javascript" in script.headers["Content-Type"]
    assert script.headers["X-Content-Type-Options"] == "nosniff"
    assert (
        client.get("/hatrac/;web/static/hatrac.css").headers["Content-Type"].startswith("text/css")
    )
    assert client.get("/hatrac/;web/static/../pages.py").status == 404
    assert client.get("/hatrac/;web/accounts").status == 401
    names = client.get("/hatrac/;web/accounts", user="alice").json()
    assert names == {"users": [], "groups": []}


def test_the_interface_can_be_turned_off(make_config):
    app = hatrac.create_app(make_config(web_interface=False))
    client = FlaskProtocolClient(app)
    client.mkdir("/hatrac/off", user="alice")
    page = client.get("/hatrac/off", user="alice", headers=HTML)
    assert page.status == 200 and "Content-Security-Policy" not in page.headers
    assert "app.js" not in page.text and "<ul>" in page.text  # the plain listing
    assert client.get("/hatrac/;web/static/app.js").status == 400
    app.extensions["hatrac"].close()


@pytest.mark.parametrize("prefix", ["/store", ""])
def test_pages_follow_the_service_prefix(make_config, prefix):
    app = hatrac.create_app(make_config(service_prefix=prefix))
    client = FlaskProtocolClient(app)
    assert client.mkdir(prefix + "/x", user="alice").status == 201
    text = client.get(prefix + "/x", user="alice", headers=HTML).text
    assert f'src="{prefix}/;web/static/app.js"' in text
    assert f'<a href="{prefix}/x">x</a>' in text
    assert client.get(prefix + "/;web/static/app.js").status == 200
    app.extensions["hatrac"].close()
