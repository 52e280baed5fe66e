"""The stored-XSS attack of issue 10, in Chromium, against a live server: it fails.

Mallory, who may create objects in her own namespace only, stores an HTML
page and an SVG image whose scripts use the visitor's cookie to create an
object in the victim's namespace and add a stranger to its read ACL. The
victim, logged in, opens them. With the protections of
hatrac/rest/content_safety.py the browser saves them instead of rendering
them, and where a page does render (the download origin) its script runs in
an opaque origin without the victim's session: the victim's namespace and
ACLs stay as they were. Legitimate HTML, SVG, CSV and PNG objects download
or display as docs/browsers.md says.
"""

from __future__ import annotations

import struct
import zlib

import pytest
import requests
from browser import StaticSite, navigate_to_download, start_service, watch_console

USERS = {"mallory": "mallory pw", "victim": "victim pw"}
NS = {"Content-Type": "application/x-hatrac-namespace"}


def attack_script(base: str) -> str:
    """What Mallory's content runs: two writes as whoever opens it, then a mark."""
    return f"""
    (async () => {{
      const outcome = [];
      for (const url of ['{base}/hatrac/victim/pwned', '{base}/hatrac/victim;acl/read/stranger']) {{
        try {{
          const reply = await fetch(url, {{method: 'PUT', body: 'x', credentials: 'include'}});
          outcome.push(reply.status);
        }} catch (error) {{
          outcome.push('blocked');
        }}
      }}
      document.title = 'ran ' + outcome.join(' ');
    }})();
    """


def png_1x1() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00\xff\x00\x00")
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The live service (origin 127.0.0.1, download origin localhost) and its objects."""
    directory = tmp_path_factory.mktemp("xss")
    server = start_service(
        directory,
        USERS,
        settings_for=lambda url: {"download_origin": url.replace("127.0.0.1", "localhost")},
    )
    base = server.url
    download_origin = base.replace("127.0.0.1", "localhost")
    mallory, victim = ("mallory", USERS["mallory"]), ("victim", USERS["victim"])
    assert requests.put(base + "/hatrac/victim", headers=NS, auth=victim).status_code == 201
    assert requests.put(base + "/hatrac/mallory", headers=NS, auth=mallory).status_code == 201
    public = requests.put(base + "/hatrac/mallory;acl/subtree-read/*", auth=mallory)
    assert public.status_code == 204
    script = attack_script(base)
    objects = {
        "page.html": ("text/html", f"<!DOCTYPE html><title>x</title><script>{script}</script>"),
        "pic.svg": (
            "image/svg+xml",
            '<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10">'
            f'<rect width="10" height="10" fill="red"/><script>{script}</script></svg>',
        ),
        "sniff.txt": ("text/plain", f"<html><script>{script}</script></html>"),
        "report.html": ("text/html", "<!DOCTYPE html><title>Report</title><p>results</p>"),
        "table.csv": ("text/csv", "a,b\n1,2\n"),
        "dot.png": ("image/png", png_1x1()),
    }
    for name, (kind, body) in objects.items():
        url = f"{base}/hatrac/mallory/{name}"
        headers = {"Content-Type": kind, "Content-Disposition": f"filename*=UTF-8''{name}"}
        data = body if isinstance(body, bytes) else body.encode()
        assert requests.put(url, data=data, headers=headers, auth=mallory).status_code == 201
    yield {"base": base, "download": download_origin, "objects": objects, "auth": victim}
    server.stop()


def victim_state(site) -> tuple:
    auth = site["auth"]
    listing = requests.get(site["base"] + "/hatrac/victim", auth=auth)
    acl = requests.get(site["base"] + "/hatrac/victim;acl", auth=auth)
    assert listing.status_code == 200 and acl.status_code == 200
    return listing.json(), acl.json()


def logged_in_page(browser_context, site):
    """A page of the victim, logged in on the service's origin (the cookie is live)."""
    base = site["base"]
    login = browser_context.request.post(
        base + "/authn/session", form={"username": "victim", "password": USERS["victim"]}
    )
    assert login.status == 201
    page = browser_context.new_page()
    page.goto(base + "/authn/session")
    assert '"victim"' in page.content()
    return page


def test_the_attack_fails_and_the_victim_is_unchanged(browser_context, site):
    before = victim_state(site)
    page = logged_in_page(browser_context, site)
    base = site["base"]
    # the control: a script that does run on the service's origin could do it
    status = page.evaluate(
        "async url => (await fetch(url, {method: 'PUT', body: 'mine'})).status",
        base + "/hatrac/victim/control",
    )
    assert status == 201
    assert requests.delete(base + "/hatrac/victim/control", auth=site["auth"]).status_code == 204
    assert victim_state(site) == before

    for name in ("page.html", "pic.svg"):
        download = navigate_to_download(page, f"{base}/hatrac/mallory/{name}")
        assert download.suggested_filename == name
        # embedded in a frame of the victim's page, it is no document either
        frame_page = browser_context.new_page()
        frame_page.goto(base + "/authn/session")
        with frame_page.expect_download() as saved:
            frame_page.evaluate(
                "url => { const f = document.createElement('iframe'); f.src = url;"
                " document.body.appendChild(f); }",
                f"{base}/hatrac/mallory/{name}",
            )
        assert saved.value.suggested_filename == name
        frame_page.close()
    # HTML in a text/plain object is shown as text: nosniff, no script
    page.goto(f"{base}/hatrac/mallory/sniff.txt")
    assert page.title() == ""
    assert "<script>" in page.inner_text("body")
    assert victim_state(site) == before


def test_on_the_download_origin_scripts_run_without_the_session(browser_context, site):
    before = victim_state(site)
    page = logged_in_page(browser_context, site)
    for name in ("page.html", "pic.svg"):
        reply = page.goto(f"{site['download']}/hatrac/mallory/{name}")
        assert reply.status == 200  # rendered inline, not saved
        page.wait_for_function("document.title.startsWith('ran')")
        # the script ran, but in an opaque origin: no cookie, CSRF and CORS refuse it
        assert page.title() == "ran blocked blocked"
    assert victim_state(site) == before


def test_legitimate_downloads_behave_as_documented(browser_context, site):
    page = browser_context.new_page()
    errors = watch_console(page)
    base = site["base"]
    objects = site["objects"]
    # HTML: saved under its name, bytes intact
    download = navigate_to_download(page, f"{base}/hatrac/mallory/report.html")
    assert download.suggested_filename == "report.html"
    with open(download.path(), encoding="utf-8") as saved:
        assert saved.read() == objects["report.html"][1]
    # CSV: saved under its name (browsers do not display text/csv)
    download = navigate_to_download(page, f"{base}/hatrac/mallory/table.csv")
    assert download.suggested_filename == "table.csv"
    # PNG: displayed when opened
    reply = page.goto(f"{base}/hatrac/mallory/dot.png")
    assert reply.status == 200 and reply.headers["content-type"] == "image/png"
    # PNG and SVG: displayed as images in another page (the sandbox does not apply there)
    gallery = StaticSite(
        {
            "/gallery.html": (
                "text/html",
                (
                    "<!DOCTYPE html><title>gallery</title>"
                    f'<img src="{base}/hatrac/mallory/dot.png">'
                    f'<img src="{base}/hatrac/mallory/pic.svg">'
                ).encode(),
            )
        }
    )
    try:
        page.goto(gallery.origin + "/gallery.html")
    finally:
        gallery.stop()
    page.wait_for_function("[...document.images].every(i => i.complete)")
    sizes = page.evaluate("[...document.images].map(i => i.naturalWidth)")
    assert sizes == [1, 10]
    assert errors == []
