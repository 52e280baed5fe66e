"""The trusted front-end provider: identity set by the web server.

Apache (mod_auth_openidc, Shibboleth, mod_authn_file, ...) authenticates the
client and passes ``REMOTE_USER`` to the WSGI application; groups come from
a configurable environ variable (``trusted_groups_environ``), split on
``trusted_groups_separator``. Only deploy this where the web server, not the
client, controls those variables.
"""

from __future__ import annotations

from typing import Optional

from ..model.client import Client


class TrustedFrontEnd:
    """Client identity from REMOTE_USER and groups from another environ variable."""

    method = "trusted"

    def __init__(self, groups_variable: str = "HATRAC_GROUPS", separator: str = ";") -> None:
        self.groups_variable = groups_variable
        self.separator = separator

    def identify(self, environ: dict) -> Optional[Client]:
        identity = environ.get("REMOTE_USER")
        if not identity:
            return None
        raw_groups = environ.get(self.groups_variable) or ""
        groups = frozenset(g.strip() for g in raw_groups.split(self.separator) if g.strip())
        return Client(identity=identity, attributes=groups, display_name=identity)
