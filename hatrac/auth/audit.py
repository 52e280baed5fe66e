"""The audit log: one JSON line per security event, on the ``hatrac.audit`` logger.

Each line has the common ``time`` (ISO 8601, UTC) and ``"kind": "audit"``
(:mod:`hatrac.logs`), then ``event`` and its fields.

Route it where the site wants it with ordinary :mod:`logging` configuration
(a file, syslog, journald). Events and their fields:

* ``login.success`` / ``login.failure`` / ``login.throttled``: ``user``, ``client_address``
  (and ``reason`` for failures; never the password);
* ``session.create`` / ``session.extend`` / ``session.end``: ``user``, ``client_address``;
* ``authn.failure``: a presented credential was refused (``provider``, ``reason``);
* ``csrf.refused``: a cookie request from another site's page (``origin``);
* ``token.issue`` / ``token.revoke``: API tokens managed over HTTP (``token_id``);
* ``access.denied``: every 401/403 (``status``, ``method``, ``resource``, ``user``);
* ``acl.change``: ``resource``, ``access``, ``method``, ``role`` or ``roles``, ``user``.

Passwords, session ids, tokens and cookies are never written.
"""

from __future__ import annotations

import logging
from typing import Any

from ..logs import json_line

logger = logging.getLogger("hatrac.audit")
# written whatever the service's log_level (a WARNING service log must not
# silence the audit); a logging configuration that sets this logger's level
# explicitly still wins
if logger.level == logging.NOTSET:
    logger.setLevel(logging.INFO)


def audit(event: str, **fields: Any) -> None:
    """Write one audit line: ``{"time", "kind": "audit", "event", ...fields}`` as compact JSON."""
    if not logger.isEnabledFor(logging.INFO):
        return
    logger.info(json_line("audit", {"event": event, **fields}), extra={"hatrac_json": True})
