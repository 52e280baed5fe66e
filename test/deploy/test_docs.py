"""The documentation stays true to the code: every setting documented, no stale ones,
and the README's and the tutorial's commands do what they show on a fresh server."""

from __future__ import annotations

import re
from pathlib import Path

import requests

from hatrac.settings import SETTINGS

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"


def documented_fields() -> list[str]:
    text = (DOCS / "configuration.md").read_text()
    return re.findall(r"^### `([A-Za-z0-9_]+)`", text, flags=re.MULTILINE)


def test_configuration_reference_covers_every_setting():
    documented = documented_fields()
    names = [setting.name for setting in SETTINGS]
    assert sorted(set(names) - set(documented)) == [], "settings missing from the docs"
    assert sorted(set(documented) - set(names)) == [], "docs describe unknown settings"
    assert len(documented) == len(set(documented)), "a setting is documented twice"


def test_configuration_reference_gives_each_default():
    text = (DOCS / "configuration.md").read_text()
    sections = re.split(r"^### `", text, flags=re.MULTILINE)[1:]
    by_name = {section.split("`", 1)[0]: section for section in sections}
    for setting in SETTINGS:
        section = by_name[setting.name]
        assert "default" in section.lower(), setting.name
        assert "Example" in section, setting.name


def test_documents_link_to_existing_files():
    for page in DOCS.glob("*.md"):
        for target in re.findall(r"\]\(([a-z0-9_-]+\.md)(?:#[^)]*)?\)", page.read_text()):
            assert (DOCS / target).exists() or target in {
                "authentication.md",
                "uploads.md",
                "s3.md",
                "scale-out.md",
                "benchmark.md",
            }, f"{page.name} links to missing {target}"


# -- the README and the tutorial, run against a fresh server ------------------
# The commands each page shows run in one bash session in a fresh copy of the
# checkout served by its own scripts/serve.sh (test/deploy/checkout.py); the
# output the tutorial shows must match ('...' stands for any text). Commands
# that start the server, the suite or the benchmark are not run again.
NOT_RUN = ("scripts/serve.sh", "scripts/test.sh", "scripts/bench.sh")


def _served_copy(tmp_path_factory, name):
    from deploy.checkout import Checkout

    checkout = Checkout(tmp_path_factory.mktemp(name)).prepare()
    try:
        checkout.start()
    except Exception:
        checkout.stop()
        raise
    return checkout


def _port_of(checkout, text: str) -> str:
    return text.replace("8080", str(checkout.port))


def _run_page(checkout, steps):
    from deploy.checkout import run_steps

    steps = [step for step in steps if not step.command.startswith(NOT_RUN)]
    for step in steps:
        step.command = _port_of(checkout, step.command)
        step.shown = [_port_of(checkout, line) for line in step.shown]
    return run_steps(steps, checkout.directory, checkout.environment())


def test_install_section_a_and_tutorial_run_as_shown(tmp_path_factory):
    from deploy.checkout import mismatch, shell_steps

    checkout = _served_copy(tmp_path_factory, "tutorial")
    try:
        install = (DOCS / "install.md").read_text()
        section_a = install[install.index("## A. ") : install.index("## B. ")]
        steps = shell_steps(section_a, "install.md (A)")
        assert len(steps) >= 4
        steps += shell_steps((DOCS / "tutorial.md").read_text(), "tutorial.md")
        assert len(steps) > 30
        outcomes = _run_page(checkout, steps)
    finally:
        checkout.stop()
    problems = [
        f"{step.where}: $ {step.command}\n  {why}\n  got: {lines}"
        for step, status, lines in outcomes
        if (why := mismatch(step, status, lines))
    ]
    assert not problems, "\n".join(problems)


def test_readme_commands_work_on_a_fresh_checkout(tmp_path_factory):
    from deploy.checkout import command_lines

    checkout = _served_copy(tmp_path_factory, "readme")
    try:
        log = checkout.log()
        password = (checkout.directory / "hatrac_data" / "admin-password").read_text()
        # serve.sh's first run: the admin's password, the config file and its export line
        assert password in log
        config = checkout.directory / "hatrac_data" / "hatrac_config.json"
        assert f"export HATRAC_CONFIG={config}" in log
        assert "localhost" in log and "127.0.0.1" in log
        steps = command_lines((ROOT / "README.md").read_text(), "README.md")
        outcomes = _run_page(checkout, steps)
        readme = checkout.directory / "README.md"
        reply = requests.get(f"{checkout.url}/hatrac/readme", auth=("admin", password))
        # a restart keeps the store, the admin and its password; no second admin
        checkout.stop()
        checkout.start()
        again = requests.get(f"{checkout.url}/hatrac/readme", auth=("admin", password))
    finally:
        checkout.stop()
    failed = [(step.where, step.command, lines) for step, status, lines in outcomes if status]
    assert not failed, failed
    ran = [step.command for step, _, _ in outcomes]
    assert any("--data-binary @README.md" in command for command in ran)
    assert reply.status_code == 200 and reply.content == readme.read_bytes()
    assert reply.headers["Content-Type"].startswith("text/markdown")
    assert again.status_code == 200
    assert checkout.log().count("Created user 'admin'") == 0
