"""A fresh copy of the checkout running ``scripts/serve.sh``, and a runner of doc shell blocks.

:class:`Checkout` copies what ``scripts/serve.sh`` reads (the script, the
package metadata, README.md) into a temporary directory whose ``.venv/bin``
holds small wrappers around this test run's interpreter and commands, with
the install stamp of the copied metadata. serve.sh then runs unmodified: it
finds an up-to-date install (there is no ``.venv/bin/pip``: a needless
reinstall fails the test), writes ``hatrac_data/hatrac_config.json``,
creates the admin and execs gunicorn, on a free port.

:func:`shell_steps` reads the shell blocks of a Markdown page (``$ command``
lines, their continuation lines, then the output shown) and
:func:`run_steps` runs them in one bash session, so variables and the
working directory carry over as in a terminal.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests
from servers import free_port

ROOT = Path(__file__).resolve().parents[2]
# what serve.sh hashes for its install stamp, in its order
STAMPED = ("pyproject.toml", "setup.py", "hatrac/__init__.py")


class Checkout:
    """A copy of the source tree's entry points, served by its own scripts/serve.sh."""

    def __init__(self, directory: Path):
        self.directory = Path(directory)
        self.port = free_port()
        self.process = None
        self.log_path = self.directory / "serve.log"

    @property
    def url(self) -> str:
        return f"http://localhost:{self.port}"

    def environment(self) -> dict:
        environment = {k: v for k, v in os.environ.items() if not k.startswith("HATRAC_")}
        environment["HOME"] = str(self.directory / "home")
        return environment

    def prepare(self) -> Checkout:
        for name in ("scripts/serve.sh", "README.md", *STAMPED):
            target = self.directory / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, target)
        (self.directory / "home").mkdir()
        bin_directory = self.directory / ".venv" / "bin"
        bin_directory.mkdir(parents=True)
        real = Path(sys.executable).parent
        for command in ("python", "hatrac", "hatrac-client", "gunicorn"):
            wrapper = bin_directory / command
            wrapper.write_text(f'#!/bin/sh\nexec "{real / command}" "$@"\n')
            wrapper.chmod(0o755)
        digest = hashlib.sha256(b"".join((ROOT / name).read_bytes() for name in STAMPED))
        (self.directory / ".venv" / ".hatrac-installed-serve").write_text(digest.hexdigest() + "\n")
        return self

    def start(self) -> Checkout:
        self.process = subprocess.Popen(
            ["bash", "scripts/serve.sh", str(self.port)],
            cwd=self.directory,
            env=self.environment(),
            stdout=open(self.log_path, "wb"),  # noqa: SIM115
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                requests.get(f"http://127.0.0.1:{self.port}/hatrac-health/live", timeout=5)
                return self
            except requests.RequestException:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("serve.sh did not serve:\n" + self.log()) from None
                time.sleep(0.1)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


# -- shell blocks of the docs --------------------------------------------------
@dataclass
class Step:
    """One command of a doc and the output the doc shows for it."""

    command: str
    shown: list[str] = field(default_factory=list)
    where: str = ""


def code_blocks(text: str) -> list[list[str]]:
    """Indented (4 spaces) code blocks of a Markdown page, as lists of lines."""
    blocks: list[list[str]] = []
    current: list[str] = []
    previous_blank = True
    for line in text.splitlines():
        if line.startswith("    ") and (current or previous_blank):
            current.append(line[4:])
        elif current and not line.strip():
            current.append("")
        else:
            if current:
                blocks.append(current)
                current = []
        previous_blank = not line.strip()
    if current:
        blocks.append(current)
    return blocks


def shell_steps(text: str, page: str) -> list[Step]:
    """The ``$ command`` steps of every code block of ``text``, with their shown output."""
    steps: list[Step] = []
    for number, block in enumerate(code_blocks(text)):
        if not any(line.startswith("$ ") for line in block):
            continue
        while block and not block[-1].strip():
            block.pop()
        for line in block:
            if line.startswith("$ "):
                steps.append(Step(line[2:], where=f"{page} block {number}"))
            elif steps and not steps[-1].shown and line.startswith("  "):
                steps[-1].command += "\n" + line  # continuation of the command
            elif steps:
                steps[-1].shown.append(line)
    return steps


def command_lines(text: str, page: str) -> list[Step]:
    """Every command of the prompt-less code blocks (README style: commands only)."""
    steps: list[Step] = []
    for number, block in enumerate(code_blocks(text)):
        if any(line.startswith("$ ") for line in block):
            continue
        pending = ""
        for line in block:
            if not line.strip():
                continue
            pending += ("\n" if pending else "") + line
            if not line.rstrip().endswith("\\"):
                steps.append(Step(pending, where=f"{page} block {number}"))
                pending = ""
    return steps


def pattern(shown: list[str]) -> re.Pattern:
    """Shown output as a regular expression: ``...`` in a line stands for any text, a
    line of just ``...`` for any number of lines."""
    parts = []
    for line in shown:
        if line.strip() == "...":
            parts.append(r"(?:[^\n]*\n)*?")
        else:
            parts.append("[^\n]*".join(re.escape(piece) for piece in line.split("...")) + "\n")
    return re.compile("".join(parts))


def run_steps(steps: list[Step], cwd: Path, environment: dict) -> list[tuple[Step, int, list[str]]]:
    """Run the steps in one bash session; each step's exit status and output lines."""
    marker = "\x1eSTEP-END"
    # curl shows no progress meter when it writes to a terminal, as in the docs; here
    # its output is a pipe, so ~/.curlrc asks for the same display
    home = Path(environment.get("HOME", cwd))
    (home / ".curlrc").write_text("no-progress-meter\n")
    script = []
    for step in steps:
        script.append(step.command)
        script.append(f"printf '\\n{marker} %s\\n' $?")
    result = subprocess.run(
        ["bash", "-c", "\n".join(script)],
        cwd=cwd,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=300,
    )
    chunks = result.stdout.split(marker)
    outcomes = []
    for index, (step, following) in enumerate(zip(steps, chunks[1:])):
        status = int(following.split("\n", 1)[0].strip())
        text = chunks[index] if index == 0 else chunks[index].split("\n", 1)[1]
        lines = text.rstrip("\n").split("\n") if text.strip() else []
        outcomes.append((step, status, lines))
    assert len(outcomes) == len(steps), "the shell session ended early:\n" + result.stdout[-2000:]
    return outcomes


def mismatch(step: Step, status: int, lines: list[str]) -> str:
    """Why a step's actual result differs from the doc ('' when it matches)."""
    if status != 0:
        return f"exit status {status}"
    if not pattern(step.shown).fullmatch("".join(line + "\n" for line in lines)):
        return "the output differs from the doc's"
    return ""
