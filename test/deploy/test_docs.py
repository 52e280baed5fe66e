"""The documentation stays true to the code: every setting documented, no stale ones."""

from __future__ import annotations

import re
from pathlib import Path

from hatrac.config import SETTINGS

DOCS = Path(__file__).resolve().parents[2] / "docs"


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
