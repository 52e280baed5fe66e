"""The web interface: pages for people with only a browser, served by the service itself.

Layout (above :mod:`hatrac.rest`, as ``rest`` is above ``model``):

* :mod:`.pages`     the server-rendered pages: a namespace (content negotiation
  on the namespace URL itself), an object (its ``;versions`` URL), the account
  page and error pages, with a strict Content-Security-Policy;
* :mod:`.present`   how names, sizes and times are shown;
* ``templates/web/`` Jinja templates (autoescaped: every name is escaped);
* ``static/``       CSS and JavaScript ES modules, shipped as they are (no build
  step): they talk to the same HTTP API as every other client.

:func:`init_web` mounts it, unless the config turns it off
(``web_interface: false``). The REST layer knows nothing of this package: it
asks ``state.pages`` (set here) for a page when a browser prefers HTML.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from flask import Blueprint, Flask

if TYPE_CHECKING:
    from ..app import HatracState

STATIC = Path(__file__).parent / "static"
WEB_SEGMENT = ";web"


def web_root(prefix: str) -> str:
    """URL path under which the interface's own resources live."""
    return f"{prefix}/{WEB_SEGMENT}"


def init_web(app: Flask, state: HatracState) -> None:
    """Register the interface's routes and its page hook on ``state``."""
    if not state.config.web_interface:
        return
    from . import pages

    root = web_root(state.config.service_prefix)
    blueprint = Blueprint("hatrac_web", __name__, template_folder="templates")
    blueprint.add_url_rule(root + "/static/<path:filename>", "static", pages.static_file)
    blueprint.add_url_rule(root + "/account", "account", pages.account_page)
    blueprint.add_url_rule(root + "/accounts", "accounts", pages.account_names)
    app.register_blueprint(blueprint)
    state.pages = pages.Pages(state.config)
