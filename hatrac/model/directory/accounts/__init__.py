"""SQL of the built-in accounts: users, nested groups, sessions, API tokens, failures.

Every function takes an open :class:`~hatrac.model.directory.sql.Transaction`
(run it with :meth:`Directory.run`) and uses bound parameters only. Secrets
never reach this package: sessions and tokens are stored and looked up by the
SHA-256 of their value, passwords as PBKDF2 hashes made in
:mod:`hatrac.auth.passwords`.

One module per part: :mod:`.users`, :mod:`.groups` (with the recursive
closure of nested groups), :mod:`.sessions`, :mod:`.tokens`, :mod:`.identity`
(who a session, token or login is, alone or in front of the statement that
resolves a request's name), :mod:`.login_failures` and :mod:`.changes`
(PostgreSQL notifications to the servers' session caches). Their functions
are all importable from here, which is how :mod:`hatrac.auth.accounts` uses
them.
"""

from __future__ import annotations

from .changes import CHANNEL, ChangeListener, notify_change
from .groups import (
    add_group,
    add_group_to_group,
    add_user_to_group,
    group_id,
    groups_of_user,
    list_groups,
    remove_group,
    remove_group_from_group,
    remove_user_from_group,
)
from .identity import (
    IDENTITY_WIDTH,
    UNKNOWN,
    Identity,
    credential_identity,
    identity_of_row,
    session_identity,
    token_identity,
    user_identity,
    with_identity,
)
from .login_failures import clear_failures, count_failures, record_failures
from .sessions import create_session, delete_expired_sessions, delete_session, extend_session
from .tokens import Token, create_token, list_tokens, revoke_token
from .users import (
    User,
    add_user,
    get_user,
    list_users,
    remove_user,
    set_disabled,
    set_display_name,
    set_password,
)

__all__ = [
    "CHANNEL",
    "IDENTITY_WIDTH",
    "UNKNOWN",
    "ChangeListener",
    "Identity",
    "Token",
    "User",
    "add_group",
    "add_group_to_group",
    "add_user",
    "add_user_to_group",
    "clear_failures",
    "count_failures",
    "create_session",
    "create_token",
    "credential_identity",
    "delete_expired_sessions",
    "delete_session",
    "extend_session",
    "get_user",
    "group_id",
    "groups_of_user",
    "identity_of_row",
    "list_groups",
    "list_tokens",
    "list_users",
    "notify_change",
    "record_failures",
    "remove_group",
    "remove_group_from_group",
    "remove_user",
    "remove_user_from_group",
    "revoke_token",
    "session_identity",
    "set_disabled",
    "set_display_name",
    "set_password",
    "token_identity",
    "user_identity",
    "with_identity",
]
