"""The web interface's first paint and listing pages at 10,000 and 100,000 children.

``python -m bench.web [--small N] [--large N] [--rounds R]`` starts a private
PostgreSQL and the service under gunicorn, fills two namespaces through the
model (objects with one version each; the large one mostly namespaces, which
cost no storage), then measures:

* in Chromium (Debian's, through Playwright): the first contentful paint of
  the namespace page (the default page of ``web_page_size`` children, and a
  page of 5,000), median of R loads;
* the same first paint of the page sorted on the server by size, largest first
  (``?sort=size&order=desc``: an order over the whole namespace);
* over HTTP: the server time of the HTML page for the first page, a page from
  the middle (``?after=``), a filtered page, the first page by size
  (descending), a page from the middle by modification time
  (``?sort=modified&offset=``), and the JSON listing of every child for
  comparison.

It prints a table and writes ``bench-web.json``. Figures depend on the
machine's load; docs/web.md gives the latest run.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import requests

from .servers import GunicornServer, PostgresServer

if TYPE_CHECKING:
    from playwright.sync_api import Browser

ROOT_ACLS = {"owner": ["admin"], "create": ["*"], "read": ["*"], "subtree-read": ["*"]}
HTML = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}


def fill(config: dict, namespace: str, objects: int, namespaces: int) -> float:
    """Create the children through the model; returns the seconds it took."""
    import hatrac
    from hatrac.model.client import Client

    app = hatrac.create_app(config)
    model = app.extensions["hatrac"].model
    alice = Client("alice")
    model.create_namespace(alice, namespace)
    started = time.monotonic()

    def one(number: int) -> None:
        if number < objects:
            model.put_object(alice, f"{namespace}/f{number:06d}.dat", [b"x" * (number % 997)], {})
        else:
            model.create_namespace(alice, f"{namespace}/d{number:06d}")

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(one, range(objects + namespaces)))
    app.extensions["hatrac"].close()
    return time.monotonic() - started


def server_ms(url: str, rounds: int, headers: dict) -> float:
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        reply = requests.get(url, headers=headers, timeout=60)
        reply.raise_for_status()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def first_paint_ms(browser: Browser, url: str, rounds: int) -> tuple[float, int]:
    """Median first contentful paint of ``url`` in fresh pages, and the rows shown."""
    paints = []
    rows = 0
    for _ in range(rounds):
        page = browser.new_page()
        page.goto(url)
        page.wait_for_selector("body[data-ready='1']")
        paint = page.evaluate(
            "() => performance.getEntriesByName('first-contentful-paint')[0].startTime"
        )
        paints.append(paint)
        rows = page.locator("#children tbody tr").count()
        page.close()
    return statistics.median(paints), rows


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--large", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=5)
    arguments = parser.parse_args(argv)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "test"))
    from browser import CHROMIUM, CHROMIUM_ARGS
    from playwright.sync_api import sync_playwright

    directory = Path(tempfile.mkdtemp(prefix="hatrac-bench-web-"))
    directory.chmod(0o755)  # PostgreSQL runs as its own user beneath it
    postgres = PostgresServer(directory / "pg").start()
    config = {
        "data_directory": str(directory / "data"),
        "database_dsn": postgres.dsn(),
        "root_acls": ROOT_ACLS,
        "access_log": False,
    }
    results: dict = {"children": {}}
    server = None
    try:
        sizes = {"/w_small": (arguments.small, 0)}
        if arguments.large:
            objects = min(arguments.large, 10_000)
            sizes["/w_large"] = (objects, arguments.large - objects)
        for namespace, (objects, namespaces) in sizes.items():
            seconds = fill(config, namespace, objects, namespaces)
            print(f"filled {namespace}: {objects + namespaces} children in {seconds:.0f} s")
        server = GunicornServer(
            "hatrac:create_app()", directory / "gunicorn", workers=2, threads=4, config=config
        ).start(probe_path="/hatrac/")
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
            )
            for namespace, (objects, namespaces) in sizes.items():
                url = server.url + "/hatrac" + namespace
                middle = (
                    f"{namespace}/{'d' if namespaces else 'f'}{(objects + namespaces) // 2:06d}"
                )
                figures = {
                    "html_first_page_ms": server_ms(url, arguments.rounds, HTML),
                    "html_middle_page_ms": server_ms(
                        url + "?after=" + requests.utils.quote(middle, safe=""),
                        arguments.rounds,
                        HTML,
                    ),
                    "html_filtered_ms": server_ms(url + "?filter=f0099", arguments.rounds, HTML),
                    "html_sorted_size_ms": server_ms(
                        url + "?sort=size&order=desc", arguments.rounds, HTML
                    ),
                    "html_sorted_modified_middle_ms": server_ms(
                        url + f"?sort=modified&offset={(objects + namespaces) // 2}",
                        arguments.rounds,
                        HTML,
                    ),
                    "json_all_children_ms": server_ms(url, arguments.rounds, {}),
                }
                paint, rows = first_paint_ms(browser, url, arguments.rounds)
                figures["first_paint_ms"] = paint
                figures["first_paint_rows"] = rows
                paint, rows = first_paint_ms(browser, url + "?limit=5000", arguments.rounds)
                figures["first_paint_5000_ms"] = paint
                figures["first_paint_5000_rows"] = rows
                paint, rows = first_paint_ms(
                    browser, url + "?sort=size&order=desc", arguments.rounds
                )
                figures["first_paint_sorted_ms"] = paint
                figures["first_paint_sorted_rows"] = rows
                results["children"][str(objects + namespaces)] = figures
            browser.close()
    finally:
        if server is not None:
            server.stop()
        postgres.stop()
    print(json.dumps(results, indent=2))
    Path("bench-web.json").write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
