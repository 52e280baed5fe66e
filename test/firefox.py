"""A second real browser for the tests: Debian's Firefox ESR through WebDriver BiDi.

Playwright's usual Firefox needs Playwright's own patched build, which cannot
be downloaded here. Recent Playwright also drives a stock Firefox over the
standard WebDriver BiDi protocol that Firefox has built in (the ``moz-firefox``
channel), and that is what these tests use, with ``/usr/bin/firefox-esr``
(installed by ``scripts/test.sh``).

One gap remains: this Playwright sends ``emulation.setMediaFeaturesOverride``
(to emulate ``prefers-color-scheme``) when it opens a context, a BiDi command
that Firefox ESR 153 does not implement yet, so a new context fails. Between
Playwright and Firefox therefore sits a small WebSocket relay (:func:`relay`,
this file run as a program): Playwright starts it as the "browser executable";
it starts Firefox with the same arguments, passes every BiDi message through
unchanged in both directions, and answers only the commands listed in
:data:`NOT_IN_FIREFOX` itself with an empty success (the tests never emulate
a color scheme, so nothing is lost). Everything else, pages, scripts, input,
file choosers, downloads and network events, is Firefox's own.

The fixtures mirror those of ``test/browser.py``: a module-scoped
:func:`firefox` and a per-test :func:`firefox_context`.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shlex
import sys
from pathlib import Path
from typing import Iterator

import pytest

FIREFOX = os.environ.get("HATRAC_TEST_FIREFOX", "/usr/bin/firefox-esr")

# BiDi commands this Playwright sends that the Firefox under test lacks; the
# relay acknowledges them (they only emulate media features)
NOT_IN_FIREFOX = frozenset({"emulation.setMediaFeaturesOverride"})

LISTENING = re.compile(r"WebDriver BiDi listening on (ws://\S+)")


def launch_firefox(playwright, scratch: Path):
    """Debian's Firefox ESR, headless, through a started Playwright and the relay.

    ``scratch`` is a directory for the relay's small start script (Playwright
    wants one executable file to start). Playwright gives Firefox a fresh
    temporary profile of its own.
    """
    if not os.access(FIREFOX, os.X_OK):
        raise RuntimeError(
            f"{FIREFOX} not found; install Debian's 'firefox-esr' package (scripts/test.sh does)"
        )
    starter = scratch / "firefox-relay"
    starter.write_text(
        "#!/bin/sh\n"
        f"exec {shlex.quote(sys.executable)} {shlex.quote(str(Path(__file__).resolve()))}"
        ' "$@"\n'
    )
    starter.chmod(0o755)
    return playwright.firefox.launch(
        channel="moz-firefox",
        executable_path=str(starter),
        headless=True,
        timeout=60_000,
        env={**os.environ, "HATRAC_TEST_FIREFOX": FIREFOX},
    )


async def relay(arguments: list[str]) -> int:
    """Start Firefox with ``arguments`` and relay its BiDi socket; Firefox's exit status."""
    import websockets

    firefox = await asyncio.create_subprocess_exec(
        FIREFOX, *arguments, stderr=asyncio.subprocess.PIPE
    )
    upstream = None
    listener = None

    async def connection(client) -> None:
        async with websockets.connect(upstream + client.request.path, max_size=None) as server:

            async def to_client() -> None:
                async for message in server:
                    await client.send(message)

            async def to_firefox() -> None:
                async for message in client:
                    command = json.loads(message)
                    if command.get("method") in NOT_IN_FIREFOX:
                        answer = {"type": "success", "id": command["id"], "result": {}}
                        await client.send(json.dumps(answer))
                    else:
                        await server.send(message)

            tasks = [asyncio.create_task(to_client()), asyncio.create_task(to_firefox())]
            done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in pending:
                task.cancel()

    # Firefox names its socket on stderr; Playwright reads the same line, so
    # it is passed on with the relay's own address in its place
    while line := await firefox.stderr.readline():
        text = line.decode(errors="replace")
        found = LISTENING.search(text)
        if found and listener is None:
            upstream = found.group(1)
            listener = await websockets.serve(connection, "127.0.0.1", 0, max_size=None)
            port = listener.sockets[0].getsockname()[1]
            text = f"WebDriver BiDi listening on ws://127.0.0.1:{port}\n"
        sys.stderr.write(text)
        sys.stderr.flush()
    status = await firefox.wait()
    if listener is not None:
        listener.close()
    return status


@pytest.fixture(scope="module")
def firefox(playwright_driver, tmp_path_factory) -> Iterator[object]:
    """One headless Firefox for the whole test module."""
    browser = launch_firefox(playwright_driver, tmp_path_factory.mktemp("firefox"))
    try:
        yield browser
    finally:
        browser.close()


@pytest.fixture
def firefox_context(firefox) -> Iterator[object]:
    """A fresh Firefox context (no cookies, no cache) for one test."""
    context = firefox.new_context()
    context.set_default_timeout(15_000)
    try:
        yield context
    finally:
        context.close()


if __name__ == "__main__":
    sys.exit(asyncio.run(relay(sys.argv[1:])))
